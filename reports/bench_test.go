package reports

import (
	"encoding/json"
	"io"
	"runtime"
	"testing"
)

// The writers stream: memory held while writing does not grow with the
// number of results. Each benchmark reports, besides time and allocations,
// peak-live-MB: the most heap that was live (measured after a forced GC
// every 4 MiB of output) beyond the report itself, during one write; and
// out-MB, the size of the output. Compare the 10k and 100k figures:
//
//	go test ./reports/ -run '^$' -bench 'Write|MarshalIndent' -benchtime 3x
func BenchmarkWriteJSON10k(b *testing.B)   { benchWrite(b, "json", 10_000) }
func BenchmarkWriteJSON100k(b *testing.B)  { benchWrite(b, "json", 100_000) }
func BenchmarkWriteSARIF10k(b *testing.B)  { benchWrite(b, "sarif", 10_000) }
func BenchmarkWriteSARIF100k(b *testing.B) { benchWrite(b, "sarif", 100_000) }

// BenchmarkWriteSARIF100kUncapped writes all 100,000 results (the
// default keeps GitHub's 25,000 per run).
func BenchmarkWriteSARIF100kUncapped(b *testing.B) {
	benchWriter(b, SARIFWriter{MaxResults: 1 << 30}, bigReport(100_000))
}
func BenchmarkWriteJUnit100k(b *testing.B) { benchWrite(b, "junit", 100_000) }
func BenchmarkWriteHTML100k(b *testing.B)  { benchWrite(b, "html", 100_000) }

// BenchmarkMarshalIndent100k is what a non-streaming JSON writer would
// cost, for comparison.
func BenchmarkMarshalIndent100k(b *testing.B) {
	r := bigReport(100_000)
	w := WriterFunc(func(out io.Writer, r *Report) error {
		buf, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		_, err = out.Write(buf)
		return err
	})
	benchWriter(b, w, r)
}

func benchWrite(b *testing.B, format string, n int) {
	w, err := New(format, Options{})
	if err != nil {
		b.Fatal(err)
	}
	benchWriter(b, w, bigReport(n))
}

func benchWriter(b *testing.B, w Writer, r *Report) {
	peak, size := peakLiveHeap(b, w, r)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := w.Write(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(peak)/1e6, "peak-live-MB")
	b.ReportMetric(float64(size)/1e6, "out-MB")
}

// peakLiveHeap writes r once and returns the most live heap seen beyond
// what was live before the write, and the bytes written.
func peakLiveHeap(b *testing.B, w Writer, r *Report) (peak int64, written int64) {
	b.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := &heapSampler{base: int64(ms.HeapAlloc), every: 4 << 20}
	if err := w.Write(s, r); err != nil {
		b.Fatal(err)
	}
	s.sample()
	return s.peak, s.n
}

type heapSampler struct {
	base, peak, n, next, every int64
}

func (s *heapSampler) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	if s.n >= s.next {
		s.sample()
		s.next = s.n + s.every
	}
	return len(p), nil
}

func (s *heapSampler) sample() {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if d := int64(ms.HeapAlloc) - s.base; d > s.peak {
		s.peak = d
	}
}
