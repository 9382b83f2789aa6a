package releases

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchProducts are the extensions of the generated fleet.
var benchProducts = []string{
	"Contoso.Monitoring.StatusReporter", "Contoso.Automation.ScriptRunner", "Fabrikam.Security.Scanner",
	"Fabrikam.Backup.Agent", "Northwind.Logs.Forwarder",
}

// benchSource has 40 four-part agent builds and 20 releases of each
// extension, one a fortnight.
func benchSource() *StaticSource {
	now := time.Now()
	src := &StaticSource{Name: "fake source", ByProduct: map[string][]Release{}}
	for i := 0; i < 40; i++ {
		src.ByProduct[AgentProduct] = append(src.ByProduct[AgentProduct], Release{Version: fmt.Sprintf("1.%d.0%d.%d", 20+i/4, 2000+i*37, 100+i), Published: now.AddDate(0, 0, -14*(40-i))})
	}
	for _, p := range benchProducts {
		for i := 0; i < 20; i++ {
			src.ByProduct[p] = append(src.ByProduct[p], Release{Version: fmt.Sprintf("v2.%d.%d", i/5, i%5), Published: now.AddDate(0, 0, -30*(20-i))})
		}
	}
	return src
}

// writeBenchInventory writes a JSON inventory of n machines with five
// extensions each; one version in 500 cannot be parsed.
func writeBenchInventory(tb testing.TB, path string, n int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	rng := rand.New(rand.NewPCG(1, 2))
	src := benchSource()
	pick := func(p string) string {
		if rng.IntN(500) == 0 {
			return "2.x"
		}
		r := src.ByProduct[p]
		return r[len(r)-1-rng.IntN(len(r))].Version
	}
	w.WriteString("{\"machines\": [\n")
	for i := 0; i < n; i++ {
		if i > 0 {
			w.WriteString(",\n")
		}
		fmt.Fprintf(w, `  {"name": "host-%06d.example.com", "agent": %q, "extensions": [`, i, pick(AgentProduct))
		for j, p := range benchProducts {
			if j > 0 {
				w.WriteString(", ")
			}
			fmt.Fprintf(w, `{"name": %q, "version": %q}`, p, pick(p))
		}
		w.WriteString("]}")
	}
	w.WriteString("\n]}\n")
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
}

var benchFiles sync.Map // machines → path

// TestMain removes the benchmark inventories, which the benchmarks share
// across their runs and so cannot clean up one by one.
func TestMain(m *testing.M) {
	code := m.Run()
	benchFiles.Range(func(_, p any) bool {
		_ = os.RemoveAll(filepath.Dir(p.(string)))
		return true
	})
	os.Exit(code)
}

func benchInventory(b *testing.B, n int) string {
	if p, ok := benchFiles.Load(n); ok {
		return p.(string)
	}
	dir, err := os.MkdirTemp("", "arcagent-bench-")
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(dir, fmt.Sprintf("fleet-%d.json", n))
	writeBenchInventory(b, p, n)
	benchFiles.Store(n, p)
	return p
}

// peakHeap samples the live heap while f runs and returns its peak.
func peakHeap(f func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	return peak.Load()
}

// BenchmarkFleetCurrency checks a generated fleet (machines × 6 products)
// from the inventory file to a report. Run it with
//
//	go test -run XXX -bench FleetCurrency -benchmem ./releases/
//
// ns/machine and B/machine show the cost per machine; peak-heap-MB stays
// flat from 10,000 to 100,000 machines because the inventory is streamed.
func BenchmarkFleetCurrency(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, format := range []string{"table", "json", "sarif"} {
			b.Run(fmt.Sprintf("machines=%d/%s", n, format), func(b *testing.B) {
				path := benchInventory(b, n)
				b.ReportAllocs()
				b.ResetTimer()
				var peak uint64
				for i := 0; i < b.N; i++ {
					f, err := os.Open(path)
					if err != nil {
						b.Fatal(err)
					}
					w, _ := NewWriter(format, io.Discard, WriterOptions{})
					var sum *Summary
					p := peakHeap(func() {
						sum, err = Check(context.Background(), CheckOptions{Inventory: f, Checker: &Checker{Source: benchSource()}, Writers: []RowWriter{w},
							Header: Header{Tool: "arcagent", Inventory: path, Source: "bench"}})
					})
					f.Close()
					if err != nil || sum.Machines != n || sum.Results != 6*n {
						b.Fatalf("%v %+v", err, sum)
					}
					peak = max(peak, p)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/machine")
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			})
		}
	}
}
