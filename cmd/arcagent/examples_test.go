//go:build !windows

package main

import (
	"strings"
	"testing"
)

// The examples the README points at must keep working.
func TestExamplesLoad(t *testing.T) {
	root := t.TempDir()
	out, stderr, code := runCLI(t, "--root", root, "audit", "--rules", "../../examples/rules", "--waivers", "../../examples/waivers.yaml", "--profile", "org,tier0", "-o", "table")
	if code != 1 || !strings.Contains(out, "ORG-NET-001") {
		t.Errorf("exit %d, stderr %q\n%s", code, stderr, out)
	}
	out, _, code = runCLI(t, "rules", "list", "--rules", "../../examples/rules")
	if code != 0 || !strings.Contains(out, "ORG-EXT-001") {
		t.Errorf("rules list --rules: exit %d\n%s", code, out)
	}
}
