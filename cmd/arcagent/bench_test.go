//go:build !windows

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkAuditProcess runs the whole `arcagent audit` process against
// this machine, as a user would, and reports the median wall time, CPU
// time (user+system) and maximum RSS of a run; `version` is the floor every
// command pays before it does anything (binary pages, package
// initialisation). Wall time depends on the machine's load; RSS does not.
// The binary is built as releases are (releaseBuildArgs): issue 13's
// goals (< 50 ms wall, < 25 MB max RSS) are about that build, and a
// binary with symbol tables, or linked against libc, has another layout
// and another resident size. audit-table is `arcagent audit` as a user
// types it (the table on standard output, here /dev/null).
//
//	go test -run '^$' -bench AuditProcess -benchtime 20x ./cmd/arcagent/
func BenchmarkAuditProcess(b *testing.B) {
	bin := buildReleaseArcagent(b)
	for _, bc := range []struct {
		name string
		args []string
	}{
		{"audit", []string{"audit", "-o", "json=/dev/null"}},
		{"audit-table", []string{"audit"}},
		{"version", []string{"version"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			// Findings exit 1; anything above is a run that did not complete.
			if err := exec.Command(bin, bc.args...).Run(); err != nil {
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
					b.Fatalf("%s: %v", bc.name, err)
				}
			}
			var walls, cpus []time.Duration
			var rss []int64
			for b.Loop() {
				w, c, r := procFigures(b, bin, bc.args...)
				walls, cpus, rss = append(walls, w), append(cpus, c), append(rss, r)
			}
			slices.Sort(walls)
			slices.Sort(cpus)
			slices.Sort(rss)
			b.ReportMetric(float64(walls[len(walls)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(cpus[len(cpus)/2].Microseconds())/1000, "median-cpu-ms")
			b.ReportMetric(float64(rss[len(rss)/2]), "median-maxrss-KiB")
		})
	}
}

// releaseBuildArgs are the go build flags of a release binary (the
// Makefile's dist target, with CGO_ENABLED=0): static, no paths of the
// build machine, no symbol table or DWARF.
var releaseBuildArgs = []string{"build", "-trimpath", "-ldflags", "-s -w"}

// buildReleaseArcagent builds this package as a release binary in the
// benchmark's temporary directory.
func buildReleaseArcagent(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "arcagent")
	cmd := exec.Command("go", append(releaseBuildArgs, "-o", bin, ".")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build the release arcagent: %v\n%s", err, out)
	}
	return bin
}
