package handler

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCPULimiter(t *testing.T) {
	// A v1 cpu hierarchy as files: the limit is written and the command's
	// pid lands in the child's cgroup.procs.
	v1 := t.TempDir()
	if err := os.MkdirAll(filepath.Join(v1, "cpu"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v1, "cpu", "cpu.cfs_quota_us"), []byte("-1"), 0o644); err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(v1, "cpu", SliceName, "gcad")
	for _, f := range []string{"cpu.cfs_period_us", "cpu.cfs_quota_us", "cgroup.procs"} {
		if err := os.MkdirAll(child, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(child, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		root     string
		limit    int
		degraded bool
		dir      string
	}{
		{"v1", v1, 7, false, child},
		{"no cgroup", filepath.Join(t.TempDir(), "none"), 7, true, ""},
		{"no limit", v1, 0, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewCPULimiter(tc.root, "gcad", tc.limit)
			defer l.Close()
			if (l.Reason() != "") != tc.degraded || l.Dir() != tc.dir {
				t.Fatalf("reason %q dir %q", l.Reason(), l.Dir())
			}
			cmd := exec.Command("/bin/sh", "-c", "exit 3")
			err := l.Run(cmd)
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
				t.Fatalf("run: %v", err)
			}
			if tc.dir == "" {
				return
			}
			if b, _ := os.ReadFile(filepath.Join(child, "cpu.cfs_quota_us")); strings.TrimSpace(string(b)) != "7000" {
				t.Errorf("quota %q", b)
			}
			if b, _ := os.ReadFile(filepath.Join(child, "cgroup.procs")); strings.TrimSpace(string(b)) != strconv.Itoa(cmd.Process.Pid) {
				t.Errorf("cgroup.procs %q, want %d", b, cmd.Process.Pid)
			}
		})
	}
}
