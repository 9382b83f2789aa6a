//go:build !windows

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkHIMDSDaemonIdleRSS reports the resident memory of a connected
// `arcagent daemon himds` process after it has served one token and sat
// idle for five seconds.
//
//	go test -run '^$' -bench HIMDSDaemonIdleRSS -benchtime 1x ./cmd/arcagent/
func BenchmarkHIMDSDaemonIdleRSS(b *testing.B) {
	bin := buildArcagent(b)
	tmp := worldTraversableTemp(b)
	cp := startControlPlane(b, tmp)
	rg, secret := cp.onboarding(b, 1)
	root := filepath.Join(tmp, "machine")
	caFile := filepath.Join(tmp, "ca.crt")
	if err := os.WriteFile(caFile, cp.ca, 0o644); err != nil {
		b.Fatal(err)
	}
	if out, stderr, code := runBin(b, bin, "connect", "--root", root, "--server", cp.url(), "--onboarding-token", secret,
		"--resource-group", rg, "--ca-file", caFile, "--name", "idle01"); code != 0 {
		b.Fatalf("connect: %d %s %s", code, out, stderr)
	}
	d := startHIMDS(b, bin, root, "--heartbeat-interval", "5m")
	if status, body := d.token(b, "https://management.azure.com/"); status != 200 {
		b.Fatalf("token: %d %v", status, body)
	}
	for i := 0; i < b.N; i++ {
		time.Sleep(5 * time.Second)
		kb := vmRSS(b, d.proc.cmd.Process.Pid)
		b.ReportMetric(float64(kb), "idle-rss-KiB")
		b.Logf("idle RSS of the daemon: %d KiB (%.1f MiB)", kb, float64(kb)/1024)
	}
}

func vmRSS(b testing.TB, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
