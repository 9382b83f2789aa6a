//go:build !windows

package handler

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCgroupV2Setup drives the v2 setup on a tree shaped like a cgroup2
// hierarchy (plain files stand in for the kernel's): +cpu is enabled on the
// way down, cpu.max gets the quota, and since a plain directory cannot be
// joined at clone, the command still runs, Degraded saying why.
func TestCgroupV2Setup(t *testing.T) {
	root := t.TempDir()
	child := filepath.Join(root, SliceName, "Test.Handler-1.0")
	for p, content := range map[string]string{
		filepath.Join(root, "cgroup.controllers"):                "cpuset cpu io memory",
		filepath.Join(root, "cgroup.subtree_control"):            "memory",
		filepath.Join(root, SliceName, "cgroup.subtree_control"): "",
		filepath.Join(child, "cpu.max"):                          "max 100000",
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ext := newExt(t, map[string]string{"bin/ok.sh": "#!/bin/sh\necho ran\n"}, map[Op]string{OpEnable: "bin/ok.sh"})
	r := Runner{CPULimit: 7, CgroupRoot: root}
	res, err := r.Run(t.Context(), ext, OpEnable, 0)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		filepath.Join(root, "cgroup.subtree_control"):            "+cpu",
		filepath.Join(root, SliceName, "cgroup.subtree_control"): "+cpu",
		filepath.Join(child, "cpu.max"):                          "7000 100000",
	} {
		got, _ := os.ReadFile(p)
		if string(got) != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if !strings.Contains(res.Degraded, "cgroup v2") || !strings.Contains(res.Degraded, child) || res.Cgroup != "" {
		t.Errorf("Degraded %q, Cgroup %q", res.Degraded, res.Cgroup)
	}
	if res.ExitCode != 0 || !strings.Contains(res.Tail, "ran") {
		t.Errorf("the command did not run: %+v", res)
	}
}

func TestCgroupV2NoCPUController(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("memory pids"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, reason := setupCgroup(root, "Test.Handler-1.0", 5)
	if !strings.Contains(reason, "no cpu controller") || !strings.Contains(reason, "cgroup v1") {
		t.Errorf("reason %q", reason)
	}
}

// TestCgroupV2CloneInto checks, on the host's cgroup2 hierarchy, that a
// command is created inside the cgroup it is given (no cpu controller is
// needed for that).
func TestCgroupV2CloneInto(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	base := ""
	for _, c := range []string{DefaultCgroupRoot, DefaultCgroupRoot + "/unified"} {
		if _, err := os.Stat(filepath.Join(c, "cgroup.controllers")); err == nil {
			base = c
			break
		}
	}
	if base == "" {
		t.Skip("no cgroup2 hierarchy mounted")
	}
	dir := filepath.Join(base, "arcagent-test-clone")
	if err := mkdirCgroup(dir); err != nil {
		t.Skipf("cgroup2 hierarchy not writable: %v", err)
	}
	defer os.Remove(dir)
	fd, err := openDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	cg := &cgroup{version: 2, dir: dir, fd: fd}
	defer cg.release()
	cmd, out, _, err := startCommand(t.TempDir(), "cat /proc/self/cgroup", []string{"PATH=" + DefaultPath}, cg)
	if err != nil {
		t.Skipf("this kernel cannot start a process inside a cgroup: %v", err)
	}
	data, _ := io.ReadAll(out)
	out.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "0::/arcagent-test-clone\n") {
		t.Errorf("the command ran in\n%s\nwant 0::/arcagent-test-clone", data)
	}
}
