//go:build !windows

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// procCPU is the user+system CPU time of pid (/proc/PID/stat, clock ticks
// of 10 ms) and its resident set (/proc/PID/status VmRSS, kB).
func procCPU(b *testing.B, pid int) (time.Duration, int) {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
	ut, _ := strconv.Atoi(f[11])
	stt, _ := strconv.Atoi(f[12])
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	rss := 0
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rss, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return time.Duration(ut+stt) * 10 * time.Millisecond, rss
}

// BenchmarkExtdAssignToSucceeded: from `fleet extensions set` to the
// control plane's view saying Succeeded, on loopback, for a fresh
// assignment (download, verify, extract, install, enable, status). "poll"
// waits for extd's next poll (--interval 1s); "sighup" pokes extd to poll
// at once, which is the pipeline's own latency. Reported: the median of
// the iterations (run with -benchtime 10x).
func BenchmarkExtdAssignToSucceeded(b *testing.B) {
	for _, mode := range []string{"poll-1s", "sighup"} {
		b.Run(mode, func(b *testing.B) {
			w := newExtdWorldTB(b)
			w.publish("../../examples/extensions/status-reporter", srType, "1.0.0")
			extd := startProc(b, w.bin, "daemon", "extd", "--root", w.root, "--interval", "1s", "--cgroup-root", filepath.Join(w.tmp, "no-cgroup"))
			var took []time.Duration
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				w.ok("fleet", "extensions", "set", "--machine", "web01", "--name", "status", "--publisher", srPublisher, "--type", srType, "--version", "1.0.0")
				if mode == "sighup" {
					_ = extd.cmd.Process.Signal(syscall.SIGHUP)
				}
				w.waitFor("Succeeded", extd, reported("status", "1.0.0", apiv1.ExtensionSucceeded, 0))
				took = append(took, time.Since(start))
				b.StopTimer()
				w.ok("fleet", "extensions", "remove", "--machine", "web01", "--name", "status")
				_ = extd.cmd.Process.Signal(syscall.SIGHUP)
				w.waitFor("removed", extd, func(vs []apiv1.ExtensionView) bool { return len(vs) == 0 })
				b.StartTimer()
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-median")
		})
	}
}

// BenchmarkExtdIdle50: extd with 50 assigned extensions, all Succeeded
// and nothing to do, polling every 100 ms: CPU time per poll and the
// daemon's RSS, read from /proc.
func BenchmarkExtdIdle50(b *testing.B) {
	w := newExtdWorldTB(b)
	for i := range 50 {
		typ := fmt.Sprintf("Reporter%02d", i)
		w.publish(w.copyWithNote("../../examples/extensions/status-reporter", typ), typ, "1.0.0")
	}
	extd := startProc(b, w.bin, "daemon", "extd", "--root", w.root, "--interval", "100ms", "--cgroup-root", filepath.Join(w.tmp, "no-cgroup"))
	for i := range 50 {
		typ := fmt.Sprintf("Reporter%02d", i)
		w.ok("fleet", "extensions", "set", "--machine", "web01", "--name", strings.ToLower(typ), "--publisher", srPublisher, "--type", typ, "--version", "1.0.0")
	}
	w.waitFor("50 Succeeded", extd, func(vs []apiv1.ExtensionView) bool {
		n := 0
		for _, v := range vs {
			if v.State == apiv1.ExtensionSucceeded {
				n++
			}
		}
		return n == 50
	})
	time.Sleep(time.Second) // settle
	pid := extd.cmd.Process.Pid
	cpu0, _ := procCPU(b, pid)
	const polls = 100
	b.ResetTimer()
	for range b.N {
		time.Sleep(polls * 100 * time.Millisecond)
	}
	b.StopTimer()
	cpu1, rss := procCPU(b, pid)
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N*polls), "cpu-µs/poll")
	b.ReportMetric(float64(rss)/1024, "RSS-MB")
}
