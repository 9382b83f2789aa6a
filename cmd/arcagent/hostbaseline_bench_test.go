//go:build !windows

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procFigures runs a command to completion and returns its wall time, CPU
// time (user+system) and peak RSS (KiB).
//
// The peak RSS is read through /usr/bin/time when it is installed: a child
// the Go runtime starts shares this (large) test process's memory until it
// executes (CLONE_VM), and Linux carries that memory's high-water mark into
// the child's ru_maxrss, so the child's own figure can never be below this
// process's RSS. /usr/bin/time is small and forks, so its %M is the
// command's own peak. Without it the figure is that inflated one.
func procFigures(b *testing.B, name string, args ...string) (wall, cpu time.Duration, rssKiB int64) {
	b.Helper()
	timeOut := ""
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		timeOut = filepath.Join(b.TempDir(), "maxrss")
		args = append([]string{"-f", "%M", "-o", timeOut, name}, args...)
		name = "/usr/bin/time"
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	start := time.Now()
	err := cmd.Run()
	wall = time.Since(start)
	if cmd.ProcessState == nil {
		b.Fatalf("%s: %v", name, err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	rssKiB = ru.Maxrss
	if timeOut != "" {
		out, err := os.ReadFile(timeOut)
		if err != nil {
			b.Fatalf("read /usr/bin/time's figure: %v", err)
		}
		// The last line is %M; time writes "Command exited with non-zero
		// status N" before it.
		f := strings.Fields(string(out))
		if len(f) == 0 {
			b.Fatalf("/usr/bin/time wrote no figure for %s", args[4])
		}
		if rssKiB, err = strconv.ParseInt(f[len(f)-1], 10, 64); err != nil {
			b.Fatalf("/usr/bin/time's figure %q: %v", out, err)
		}
	}
	return wall, cpu, rssKiB
}

// BenchmarkHostBaselineVsLynis compares one evaluation of the built-in
// Linux baseline of this live host (`arcagent audit --profile host`, a
// whole process) with `lynis audit system --quick` on the same host in
// the same run: wall time, CPU time and peak RSS of each, per run.
//
//	go test -run '^$' -bench HostBaselineVsLynis -benchtime 5x ./cmd/arcagent/
func BenchmarkHostBaselineVsLynis(b *testing.B) {
	lynis, err := exec.LookPath("lynis")
	if err != nil {
		b.Skip("lynis is not installed (apt-get install lynis)")
	}
	bin := buildArcagent(b)
	tmp := b.TempDir()
	var aw, ac, lw, lc time.Duration
	var ar, lr int64
	for i := 0; i < b.N; i++ {
		w, c, r := procFigures(b, bin, "audit", "--profile", "host", "-o", "json="+filepath.Join(tmp, "host.json"))
		aw, ac, ar = aw+w, ac+c, max(ar, r)
		w, c, r = procFigures(b, lynis, "audit", "system", "--quick", "--no-colors", "--logfile", filepath.Join(tmp, "lynis.log"), "--report-file", filepath.Join(tmp, "lynis-report.dat"))
		lw, lc, lr = lw+w, lc+c, max(lr, r)
	}
	n := float64(b.N)
	b.ReportMetric(float64(aw.Milliseconds())/n, "arcagent-wall-ms")
	b.ReportMetric(float64(ac.Milliseconds())/n, "arcagent-cpu-ms")
	b.ReportMetric(float64(ar)/1024, "arcagent-rss-MiB")
	b.ReportMetric(float64(lw.Milliseconds())/n, "lynis-wall-ms")
	b.ReportMetric(float64(lc.Milliseconds())/n, "lynis-cpu-ms")
	b.ReportMetric(float64(lr)/1024, "lynis-rss-MiB")
	if aw > 0 {
		b.ReportMetric(float64(lw)/float64(aw), "lynis/arcagent-wall")
	}
	if _, err := os.Stat(filepath.Join(tmp, "lynis-report.dat")); err != nil {
		b.Logf("lynis wrote no report: %v", err)
	}
}
