package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestTrustListTimes: trust list shows when each key was added, in the
// one timestamp format of human output.
func TestTrustListTimes(t *testing.T) {
	t.Setenv("ARCAGENT_KEY_PASSWORD", "")
	work := t.TempDir()
	root := filepath.Join(work, "root")
	mustRun(t, 0, "package", "keygen", "--out", filepath.Join(work, "a"))
	mustRun(t, 0, "--root", root, "trust", "add", "a", "--key", filepath.Join(work, "a.pub"), "--publisher", "P")
	out := mustRun(t, 0, "--root", root, "trust", "list")
	if !strings.Contains(out, "ADDED") || !rfc3339.MatchString(out) {
		t.Errorf("trust list lacks an RFC 3339 ADDED column:\n%s", out)
	}
	// -o json is -j.
	if j, o := mustRun(t, 0, "--root", root, "trust", "list", "-j"), mustRun(t, 0, "--root", root, "trust", "list", "-o", "json"); j != o {
		t.Errorf("-o json %q, -j %q", o, j)
	}
}
