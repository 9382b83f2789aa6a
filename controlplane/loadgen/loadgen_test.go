package loadgen

import (
	"context"
	"testing"
	"time"
)

// TestSmoke runs a tiny load test end to end.
func TestSmoke(t *testing.T) {
	ctx := context.Background()
	l, err := StartLocal(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	cfg := Config{ServerURL: l.URL, Token: l.Token, CAPEM: l.CAPEM, Machines: 20, Workers: 4}
	f, err := Setup(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := f.Drive(ctx, cfg, 200)
	if r.Heartbeats != 200 || r.Errors != 0 || r.P99 <= 0 {
		t.Fatalf("%s (first error: %s)", r, r.FirstError)
	}
	_ = time.Second
}

// BenchmarkHeartbeats measures heartbeats/s and latency over loopback TLS
// with 1000 simulated machines and 64 requests in flight. Run it with
//
//	go test -run '^$' -bench Heartbeats -benchtime 20000x ./controlplane/loadgen
func BenchmarkHeartbeats(b *testing.B) { benchHeartbeats(b, false) }

// BenchmarkHeartbeatsPreSigned is BenchmarkHeartbeats with the machines'
// assertions signed before the timed window (the server still verifies
// each one), so the host's CPU goes to the server.
func BenchmarkHeartbeatsPreSigned(b *testing.B) { benchHeartbeats(b, true) }

func benchHeartbeats(b *testing.B, presign bool) {
	ctx := context.Background()
	l, err := StartLocal(ctx, b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Stop()
	cfg := Config{ServerURL: l.URL, Token: l.Token, CAPEM: l.CAPEM, Machines: 1000, Workers: 64, PreSign: presign}
	f, err := Setup(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	warm := cfg
	warm.PreSign = false
	f.Drive(ctx, warm, 2000) // warm up connections
	b.ResetTimer()
	r := f.Drive(ctx, cfg, b.N)
	b.StopTimer()
	if r.Errors > 0 {
		b.Fatalf("%d errors, first: %s", r.Errors, r.FirstError)
	}
	b.ReportMetric(r.PerSecond, "heartbeats/s")
	b.ReportMetric(float64(r.P50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(r.P99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(r.CPUPerHeartbeat.Microseconds()), "cpu-µs/hb")
}

// BenchmarkHeartbeatsHTTP2 is BenchmarkHeartbeatsPreSigned over HTTP/2.
func BenchmarkHeartbeatsHTTP2(b *testing.B) {
	ctx := context.Background()
	l, err := StartLocal(ctx, b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Stop()
	cfg := Config{ServerURL: l.URL, Token: l.Token, CAPEM: l.CAPEM, Machines: 1000, Workers: 64, PreSign: true, HTTP2: true}
	f, err := Setup(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	r := f.Drive(ctx, cfg, b.N)
	b.StopTimer()
	if r.Errors > 0 {
		b.Fatalf("%d errors, first: %s", r.Errors, r.FirstError)
	}
	b.ReportMetric(r.PerSecond, "heartbeats/s")
	b.ReportMetric(float64(r.P99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(r.CPUPerHeartbeat.Microseconds()), "cpu-µs/hb")
}
