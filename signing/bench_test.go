package signing

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkVerifyPackage verifies a package of 16 MiB and of 256 MiB and,
// in the same iteration, computes a plain sha256 of the same bytes, so the
// two throughputs are measured under the same conditions. It reports:
//
//	verify-MB/s, sha256-MB/s   throughput of each
//	ratio                      verify / sha256 throughput, means (target ≥ 0.9)
//	best-ratio                 the same from the fastest run of each (less noisy)
//	peak-heap-MiB              peak HeapInuse above the baseline during verify
//	alloc-KiB/verify           bytes allocated by one VerifyPackage
//
// The package is generated in a temporary directory; nothing is committed.
// Run it with: go test -run '^$' -bench VerifyPackage -benchtime 3x ./signing
func BenchmarkVerifyPackage(b *testing.B) {
	for _, size := range []int64{16 << 20, 256 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) { benchVerify(b, size) })
	}
}

func benchVerify(b *testing.B, size int64) {
	ctx := context.Background()
	dir := b.TempDir()
	path := filepath.Join(dir, testPkg.FileName())
	writeRandomFile(b, path, size)
	sum, n, err := HashFile(ctx, path) // also warms the page cache
	if err != nil || n != size {
		b.Fatal(err)
	}
	key := newTestKey(b, AlgECDSAP256)
	env, err := signStatement(NewStatement(testPkg, sum, size), key.signer)
	if err != nil {
		b.Fatal(err)
	}
	pub, _, err := ParsePublicKey(key.pubPEM)
	if err != nil {
		b.Fatal(err)
	}
	dk, err := DirectKey(pub)
	if err != nil {
		b.Fatal(err)
	}
	dk.Name, dk.Publishers, dk.anyPublisher = "bench", []string{testPkg.Publisher}, false
	store := &TrustStore{Keys: []*TrustedKey{dk}}
	opts := VerifyOptions{Package: path, Envelope: env, Trust: store, Expect: Expectation{Publisher: testPkg.Publisher, Type: testPkg.Type, Version: testPkg.Version}}
	if _, err := VerifyPackage(ctx, opts); err != nil {
		b.Fatal(err)
	}

	var verifyTime, shaTime time.Duration
	bestVerify, bestSHA := time.Duration(1<<62), time.Duration(1<<62)
	var peak, alloc uint64
	buf := make([]byte, hashBufSize)
	verify := func() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base, allocBefore := ms.HeapInuse, ms.TotalAlloc
		stop := sampleHeap(base)
		t0 := time.Now()
		if _, err := VerifyPackage(ctx, opts); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		verifyTime += d
		bestVerify = min(bestVerify, d)
		p := stop()
		runtime.ReadMemStats(&ms)
		alloc += ms.TotalAlloc - allocBefore
		peak = max(peak, p)
	}
	plain := func() {
		t0 := time.Now()
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.CopyBuffer(h, f, buf); err != nil {
			b.Fatal(err)
		}
		f.Close()
		d := time.Since(t0)
		if fmt.Sprintf("%x", h.Sum(nil)) != sum {
			b.Fatal("sha256 differs")
		}
		shaTime += d
		bestSHA = min(bestSHA, d)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Alternate the order so neither always runs second on a warm CPU.
		if i%2 == 0 {
			verify()
			plain()
		} else {
			plain()
			verify()
		}
	}
	b.StopTimer()
	mb := float64(size) * float64(b.N) / 1e6
	vr, sr := mb/verifyTime.Seconds(), mb/shaTime.Seconds()
	b.ReportMetric(vr, "verify-MB/s")
	b.ReportMetric(sr, "sha256-MB/s")
	b.ReportMetric(vr/sr, "ratio")
	// The fastest run of each is the least disturbed by other load.
	b.ReportMetric(bestSHA.Seconds()/bestVerify.Seconds(), "best-ratio")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(alloc)/float64(b.N)/1024, "alloc-KiB/verify")
}

// sampleHeap records the peak HeapInuse above base until the returned
// function is called.
func sampleHeap(base uint64) func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

func writeRandomFile(b *testing.B, path string, size int64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(1, 2))
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(r.Uint32())
	}
	for written := int64(0); written < size; written += int64(len(block)) {
		block[0]++ // vary each block
		if _, err := f.Write(block[:min(int64(len(block)), size-written)]); err != nil {
			b.Fatal(err)
		}
	}
}
