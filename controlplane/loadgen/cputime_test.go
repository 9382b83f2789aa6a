//go:build linux

package loadgen

import (
	"crypto/sha256"
	"os"
	"testing"
	"time"
)

// TestProcessCPU: /proc/PID/stat of this process agrees with getrusage
// after some work (both count the same CPU time; /proc in 10 ms ticks).
func TestProcessCPU(t *testing.T) {
	b := make([]byte, 1<<20)
	for cpuTime() < 300*time.Millisecond {
		sha256.Sum256(b)
	}
	p, err := processCPU(os.Getpid())
	r := cpuTime()
	if err != nil {
		t.Fatal(err)
	}
	if p <= 0 || p > r+20*time.Millisecond || r-p > 100*time.Millisecond {
		t.Fatalf("/proc says %s, getrusage %s", p, r)
	}
	if _, err := processCPU(-1); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}
