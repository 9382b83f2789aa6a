package loadgen

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/arcagent/arcagent/controlplane/store/storetest"
)

// BenchmarkHeartbeatsBackends is BenchmarkHeartbeatsReconnect's pair of
// figures (keep-alive and a new TLS connection per heartbeat) with the
// store on SQLite and on PostgreSQL, in the same run:
//
//	ARCSERVER_TEST_POSTGRES=postgres://… go test -run '^$' -bench HeartbeatsBackends -benchtime 20000x ./controlplane/loadgen
func BenchmarkHeartbeatsBackends(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			database := ""
			if backend == "postgres" {
				database = storetest.Postgres(b)
			}
			ctx := context.Background()
			l, err := StartLocalOn(ctx, b.TempDir(), database, nil)
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
			b.StopTimer()
			if r.Errors > 0 || kept.Errors > 0 {
				b.Fatalf("errors: %s / %s", r.FirstError, kept.FirstError)
			}
			b.ReportMetric(kept.PerSecond, "keepalive-hb/s")
			b.ReportMetric(float64(kept.P99.Microseconds()), "keepalive-p99-µs")
			b.ReportMetric(r.PerSecond, "reconnect-hb/s")
			b.ReportMetric(float64(r.P99.Microseconds()), "reconnect-p99-µs")
		})
	}
}

// TestSmokePostgres is TestSmoke with the store on PostgreSQL: every
// acknowledged heartbeat is counted.
func TestSmokePostgres(t *testing.T) {
	ctx := context.Background()
	l, err := StartLocalOn(ctx, t.TempDir(), storetest.Postgres(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	cfg := Config{ServerURL: l.URL, Token: l.Token, CAPEM: l.CAPEM, Machines: 20, Workers: 4}
	f, err := Setup(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.Drive(ctx, cfg, 200); r.Heartbeats != 200 || r.Errors != 0 {
		t.Fatalf("%s (first error: %s)", r, r.FirstError)
	}
}

// BenchmarkHeartbeatsReplicas is BenchmarkHeartbeatsBackends' PostgreSQL
// case with two replicas in this process sharing the database: half the
// machines registered and heartbeating through each, at once (32 in
// flight each). The rate is the sum over the longer of the two windows;
// p99 is the worse replica's.
//
//	ARCSERVER_TEST_POSTGRES=postgres://… go test -run '^$' -bench HeartbeatsReplicas -benchtime 20000x ./controlplane/loadgen
func BenchmarkHeartbeatsReplicas(b *testing.B) {
	database := storetest.Postgres(b)
	ctx := context.Background()
	dirA := b.TempDir()
	a, err := StartLocalOn(ctx, dirA, database, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Stop()
	rb, err := StartReplica(ctx, dirA, b.TempDir(), database, a.Token, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer rb.Stop()
	var cfgs [2]Config
	var fleets [2]*Fleet
	for i, l := range []*Local{a, rb} {
		cfgs[i] = Config{ServerURL: l.URL, Token: l.Token, CAPEM: l.CAPEM, Machines: 500, Workers: 32, PreSign: true}
		if fleets[i], err = Setup(ctx, cfgs[i]); err != nil {
			b.Fatal(err)
		}
		fleets[i].Drive(ctx, cfgs[i], 1000)
	}
	drive := func(reconnect bool) (float64, time.Duration) {
		var rs [2]Result
		var wg sync.WaitGroup
		for i := range fleets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := cfgs[i]
				c.Reconnect = reconnect
				rs[i] = fleets[i].Drive(ctx, c, max(b.N/2, 1))
			}()
		}
		wg.Wait()
		for _, r := range rs {
			if r.Errors > 0 {
				b.Fatalf("errors: %s", r.FirstError)
			}
		}
		return float64(rs[0].Heartbeats+rs[1].Heartbeats) / max(rs[0].Elapsed, rs[1].Elapsed).Seconds(), max(rs[0].P99, rs[1].P99)
	}
	b.ResetTimer()
	kps, kp99 := drive(false)
	rps, rp99 := drive(true)
	b.StopTimer()
	b.ReportMetric(kps, "keepalive-hb/s")
	b.ReportMetric(float64(kp99.Microseconds()), "keepalive-p99-µs")
	b.ReportMetric(rps, "reconnect-hb/s")
	b.ReportMetric(float64(rp99.Microseconds()), "reconnect-p99-µs")
}
