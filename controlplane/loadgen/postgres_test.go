package loadgen

import (
	"context"
	"testing"

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
