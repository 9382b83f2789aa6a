//go:build !windows

package extensions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/arcagent/arcagent/signing"
)

// BenchmarkCheckInstalled is the cost of the tamper check of one installed
// extension (recorded envelope verified, every file hashed), as the audit
// runs it for each installed extension. "check" is the whole check;
// "hash/alloc-per-file" and "hash/pooled" hash the extension's files the
// way the code did before its buffers were pooled (a fresh 1 MiB buffer
// per file) and the way signing.HashReader does now, in the same run.
// Compare ms/extension (wall clock), cpu-ms/extension (user+system CPU of
// the process, GC included, which the load of other jobs on a shared
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
	perExtension := func(b *testing.B, one func()) {
		b.ReportAllocs()
		cpu0 := cpuTime(b)
		for b.Loop() {
			one()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N), "ms/extension")
		// CPU time is what the shared machine's load does not inflate.
		b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/1e6/float64(b.N), "cpu-ms/extension")
	}
	b.Run("check", func(b *testing.B) {
		perExtension(b, func() {
			if v := CheckInstalled(ctx, f.store, extDir, name, true); !v.Valid {
				b.Fatal(v.Reason)
			}
		})
	})
	var files []string
	for _, e := range res.Record.Files {
		if e.Type != "file" {
			continue
		}
		files = append(files, filepath.Join(extDir, name, filepath.FromSlash(e.Path)))
	}
	for _, c := range []struct {
		name string
		hash func(context.Context, io.Reader) (string, int64, error)
	}{
		{"hash/alloc-per-file", hashAllocPerFile},
		{"hash/pooled", signing.HashReader},
	} {
		b.Run(c.name, func(b *testing.B) {
			perExtension(b, func() {
				for _, p := range files {
					fh, err := os.Open(p)
					if err != nil {
						b.Fatal(err)
					}
					_, _, err = c.hash(ctx, fh)
					fh.Close()
					if err != nil {
						b.Fatal(err)
					}
				}
			})
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
