package extensions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/arcagent/arcagent/signing"
)

// BenchmarkCheckInstalled is the cost of the tamper check of one installed
// extension (recorded envelope verified, every file hashed), as the audit
// runs it for each installed extension. It runs the check twice in the same
// run: "alloc-per-file" hashes with a fresh 1 MiB buffer per file, as the
// code did before its buffers were pooled; "pooled" is the current code.
// Compare their ms/extension (wall clock), cpu-ms/extension (user+system
// CPU of the process, GC included, which the load of other jobs on a shared
// machine does not inflate) and B/op.
//
// Run it with: go test -run '^$' -bench CheckInstalled -benchtime 2000x ./agent/extensions
func BenchmarkCheckInstalled(b *testing.B) {
	ctx := context.Background()
	f := newFixture(b)
	extDir := filepath.Join(f.dir, "var/lib/waagent")
	res, err := Install(ctx, InstallOptions{Package: f.pkgPath, Trust: f.store, ExtensionsDir: extDir,
		Expect: signing.Expectation{Publisher: testPkg.Publisher, Type: testPkg.Type, Version: testPkg.Version}})
	if err != nil {
		b.Fatal(err)
	}
	name := res.Record.Name
	for _, c := range []struct {
		name string
		hash func(context.Context, io.Reader) (string, int64, error)
	}{
		{"alloc-per-file", hashAllocPerFile},
		{"pooled", signing.HashReader},
	} {
		b.Run(c.name, func(b *testing.B) {
			saved := hashFile
			hashFile = c.hash
			defer func() { hashFile = saved }()
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				if v := CheckInstalled(ctx, f.store, extDir, name, true); !v.Valid {
					b.Fatal(v.Reason)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N), "ms/extension")
			// CPU time is what the shared machine's load does not inflate.
			b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/1e6/float64(b.N), "cpu-ms/extension")
		})
	}
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hashAllocPerFile is the hashing of the code before buffers were pooled:
// a 1 MiB buffer allocated for each file.
func hashAllocPerFile(ctx context.Context, f io.Reader) (string, int64, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", n, err
		}
		m, err := io.ReadFull(f, buf)
		h.Write(buf[:m])
		n += int64(m)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return hex.EncodeToString(h.Sum(nil)), n, nil
		}
		if err != nil {
			return "", n, err
		}
	}
}
