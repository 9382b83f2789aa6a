//go:build !windows

package handler

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/arcagent/arcagent/errcode"
)

// TestCPULimit runs a CPU-bound command under CPULimit 5 and 10 in the
// host's cgroups and checks the cgroup's own counters: CPU time over
// elapsed time at most twice the limit, and throttled periods. It needs
// root and a writable cgroup (v2 with the cpu controller, or v1 cpu).
func TestCPULimit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	if testing.Short() {
		t.Skip("runs CPU-bound commands for several seconds")
	}
	for _, limit := range []int{5, 10} {
		ext := newExt(t, map[string]string{"bin/spin.sh": "#!/bin/sh\nwhile :; do :; done\n"}, map[Op]string{OpEnable: "bin/spin.sh"})
		r := Runner{CPULimit: limit, Timeouts: map[Op]time.Duration{OpEnable: 3 * time.Second}}
		res, err := r.Run(t.Context(), ext, OpEnable, 0)
		if res == nil {
			t.Fatalf("no result: %v", err)
		}
		if res.Degraded != "" {
			t.Skipf("no writable cgroup on this host: %s", res.Degraded)
		}
		if !errcode.Is(err, CodeCommandTimeout) {
			t.Fatalf("err = %v, want a timeout", err)
		}
		if res.CPUTime <= 0 || res.Throttled < 0 {
			t.Fatalf("cgroup %s gave no counters (CPU time %v, throttled %d)", res.Cgroup, res.CPUTime, res.Throttled)
		}
		share := float64(res.CPUTime) / float64(res.Duration) * 100
		t.Logf("limit %d%%: cgroup %s, CPU time %v over %v = %.2f%% of one CPU, throttled in %d periods",
			limit, res.Cgroup, res.CPUTime.Round(time.Millisecond), res.Duration.Round(time.Millisecond), share, res.Throttled)
		if share > 2*float64(limit) {
			t.Errorf("limit %d%%: the command used %.2f%% of a CPU", limit, share)
		}
		if res.Throttled == 0 {
			t.Errorf("limit %d%%: never throttled", limit)
		}
		if _, err := os.Stat(res.Cgroup); err == nil {
			t.Errorf("cgroup %s left behind", res.Cgroup)
		}
	}
}

// TestCgroupKeptForDaemon: a daemon an enable command leaves running stays
// in the extension's cgroup, which is kept (and still limits it).
func TestCgroupKeptForDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	ext := newExt(t, map[string]string{
		"bin/daemon.sh": "#!/bin/sh\nsleep 60 </dev/null >/dev/null 2>&1 &\necho $! > daemon.pid\n",
	}, map[Op]string{OpEnable: "bin/daemon.sh"})
	r := Runner{CPULimit: 5}
	res, err := r.Run(t.Context(), ext, OpEnable, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Degraded != "" {
		t.Skipf("no writable cgroup on this host: %s", res.Degraded)
	}
	pid := readPid(t, filepath.Join(ext.Dir, "daemon.pid"))
	cg := &cgroup{dir: res.Cgroup, fd: -1}
	if acct := filepath.Join(DefaultCgroupRoot, "cpuacct", SliceName, ext.FullName()); acct != res.Cgroup {
		if _, err := os.Stat(acct); err == nil {
			cg.acct = acct
		}
	}
	defer func() {
		_ = syscallKill(pid)
		waitGone(t, pid)
		cg.release()
	}()
	if !res.KeptCgroup {
		t.Errorf("the cgroup holding the daemon was not kept")
	}
	if !slices.Contains(cg.pids(), pid) {
		t.Errorf("daemon %d is not in %s (%v)", pid, res.Cgroup, cg.pids())
	}
}
