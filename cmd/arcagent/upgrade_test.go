package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestUpgradeVerb covers what the verb decides before the package does:
// the automatic upgrade is off by default, and a missing catalog is a
// usage error naming the file to write. The upgrade itself is tested in
// agent/upgrade and, with dpkg in a Debian root, by `make e2e`.
func TestUpgradeVerb(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("arcagent upgrade is root only: run as root")
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"auto and off", []string{"upgrade", "--auto"}, 0, "automatic upgrade is off"},
		{"no catalog", []string{"upgrade", "--dry-run"}, 2, "releases.yaml"},
		{"config without catalog", []string{"upgrade", "--release-config", "testdata/upgrade-nocatalog.yaml"}, 2, "no releases.catalog.location"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"--root", t.TempDir()}, tt.args...)
			code := run(args, strings.NewReader(""), &out, &errb)
			if code != tt.code || !strings.Contains(out.String()+errb.String(), tt.out) {
				t.Errorf("exit %d, want %d; output %q %q, want %q", code, tt.code, out.String(), errb.String(), tt.out)
			}
		})
	}
}
