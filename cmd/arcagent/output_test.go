//go:build !windows

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

// TestOutputSynonyms: on the commands that write several formats, -o,
// --output and --format name the same flag.
func TestOutputSynonyms(t *testing.T) {
	planned := filepath.Join("..", "..", "examples", "ci", "planned-localconfig.json")
	for _, flag := range []string{"-o", "--output", "--format"} {
		out, stderr, code := runCLI(t, "audit", "--config", planned, flag, "json")
		if code > 1 || !strings.Contains(out, `"schemaVersion"`) {
			t.Errorf("audit %s json: exit %d, stdout %.80q, stderr %s", flag, code, out, stderr)
		}
	}
}
