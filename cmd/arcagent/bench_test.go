//go:build !windows

package main

import (
	"os/exec"
	"slices"
	"testing"
	"time"
)

// BenchmarkAuditProcess runs the whole `arcagent audit` process against
// this machine, as a user would, and reports the median wall time.
func BenchmarkAuditProcess(b *testing.B) {
	bin := buildArcagent(b)
	var times []time.Duration
	for b.Loop() {
		start := time.Now()
		cmd := exec.Command(bin, "audit", "-o", "json=/dev/null")
		if err := cmd.Run(); err != nil {
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
				b.Fatalf("audit: %v", err)
			}
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
}
