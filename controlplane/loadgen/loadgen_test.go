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

// BenchmarkHeartbeatsPreSignedReplica is BenchmarkHeartbeatsPreSigned
// against a server serving as a replica (--replica): every assertion's jti
// is remembered in the database and cached machines are re-read every
// second, as replicas sharing one database do.
func BenchmarkHeartbeatsPreSignedReplica(b *testing.B) { benchHeartbeatsMode(b, true, true) }

func benchHeartbeats(b *testing.B, presign bool) { benchHeartbeatsMode(b, presign, false) }

func benchHeartbeatsMode(b *testing.B, presign, replica bool) {
	ctx := context.Background()
	l, err := startLocal(ctx, b.TempDir(), nil, replica)
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

// TestReconnect: with Reconnect every heartbeat opens its own connection
// (a full TLS handshake); with keep-alive the workers' connections are
// reused.
func TestReconnect(t *testing.T) {
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
	f.Drive(ctx, cfg, 50) // the keep-alive connections exist now
	kept := f.Drive(ctx, cfg, 200)
	if kept.Errors != 0 || kept.Connections > int64(cfg.Workers) || kept.Reconnect {
		t.Fatalf("keep-alive: %d connections for %d heartbeats (%s)", kept.Connections, kept.Heartbeats, kept)
	}
	cfg.Reconnect = true
	r := f.Drive(ctx, cfg, 200)
	if r.Errors != 0 || r.Heartbeats != 200 || r.Connections != 200 || !r.Reconnect || r.Resumed != 0 {
		t.Fatalf("reconnect: %d connections (%d resumed) for %d heartbeats, %d errors (%s)", r.Connections, r.Resumed, r.Heartbeats, r.Errors, r.FirstError)
	}
	// Resuming: each of the 20 machines' first connection is a full
	// handshake, every later one resumes the machine's own session.
	cfg.Resume = true
	r = f.Drive(ctx, cfg, 200)
	if r.Errors != 0 || r.Connections != 200 || !r.Resume || r.Resumed != 200-int64(len(f.Machines)) {
		t.Fatalf("resume: %d of %d connections resumed for %d machines, %d errors (%s)", r.Resumed, r.Connections, len(f.Machines), r.Errors, r.FirstError)
	}
}

// BenchmarkHeartbeatsReconnect is BenchmarkHeartbeatsPreSigned with a new
// TLS connection per heartbeat, as real agents heartbeat; the keep-alive
// figure of the same run is reported beside it.
//
//	go test -run '^$' -bench HeartbeatsReconnect -benchtime 20000x ./controlplane/loadgen
func BenchmarkHeartbeatsReconnect(b *testing.B) {
	ctx := context.Background()
	l, err := StartLocal(ctx, b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Stop()
	cfg := Config{ServerURL: l.URL, Token: l.Token, CAPEM: l.CAPEM, Machines: 1000, Workers: 64, PreSign: true}
	f, err := Setup(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	f.Drive(ctx, cfg, 2000)
	b.ResetTimer()
	kept := f.Drive(ctx, cfg, b.N)
	rc := cfg
	rc.Reconnect = true
	r := f.Drive(ctx, rc, b.N)
	rc.Resume = true
	f.Drive(ctx, rc, len(f.Machines)) // every machine holds a ticket now
	rs := f.Drive(ctx, rc, b.N)
	b.StopTimer()
	if r.Errors > 0 || kept.Errors > 0 || rs.Errors > 0 {
		b.Fatalf("errors: %s / %s / %s", r.FirstError, kept.FirstError, rs.FirstError)
	}
	b.ReportMetric(rs.PerSecond, "resume-hb/s")
	b.ReportMetric(float64(rs.P99.Microseconds()), "resume-p99-µs")
	b.ReportMetric(float64(rs.Resumed)/float64(rs.Connections), "resumed-fraction")
	b.ReportMetric(r.PerSecond, "reconnect-hb/s")
	b.ReportMetric(float64(r.P99.Microseconds()), "reconnect-p99-µs")
	b.ReportMetric(kept.PerSecond, "keepalive-hb/s")
	b.ReportMetric(float64(kept.P99.Microseconds()), "keepalive-p99-µs")
	b.ReportMetric(r.PerSecond/kept.PerSecond, "reconnect/keepalive")
}
