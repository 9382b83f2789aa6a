package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/arcagent/arcagent/controlplane/store/storetest"
)

// BenchmarkRecordHeartbeats writes batches of 256 heartbeats (the
// server's group commit) over 2000 machines, on each backend; one op is
// one heartbeat.
//
//	ARCSERVER_TEST_POSTGRES=postgres://… go test -run '^$' -bench RecordHeartbeats -benchmem ./controlplane/store
func BenchmarkRecordHeartbeats(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			var s *DB
			if backend == "sqlite" {
				var err error
				s, err = OpenSQLite(context.Background(), b.TempDir()+"/db.sqlite")
				if err != nil {
					b.Fatal(err)
				}
			} else {
				var err error
				s, err = Open(context.Background(), storetest.Postgres(b))
				if err != nil {
					b.Fatal(err)
				}
			}
			defer s.Close()
			benchRecordHeartbeats(b, s)
		})
	}
}

func benchRecordHeartbeats(b *testing.B, s *DB) {
	ctx := context.Background()
	now := time.Now()
	const machines, batch = 2000, 256
	if err := s.CreateSubscription(ctx, Subscription{ID: "s1", DisplayName: "prod", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateResourceGroup(ctx, ResourceGroup{SubscriptionID: "s1", Name: "web", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	if err := s.CreateOnboarding(ctx, OnboardingCredential{ID: "c1", Hash: "h1", SubscriptionID: "s1", ResourceGroup: "web", CreatedBy: "o", CreatedAt: now, ExpiresAt: now.Add(time.Hour), UsesTotal: machines, UsesLeft: machines}); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, machines)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%05d", i)
		m := &Machine{ID: ids[i], Name: ids[i], PublicKeyPEM: "k", DesiredState: []byte("{}"), DesiredETag: "e", Inventory: []byte("{}"), CreatedAt: now, LastHeartbeat: now}
		if err := s.RegisterMachine(ctx, "h1", now, m); err != nil {
			b.Fatal(err)
		}
	}
	hbs := make([]Heartbeat, batch)
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		n := min(batch, b.N-i)
		for j := range n {
			hbs[j] = Heartbeat{MachineID: ids[(i+j*7)%machines], At: now.Add(time.Duration(i+j) * time.Millisecond)}
		}
		if err := s.RecordHeartbeats(ctx, hbs[:n]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "heartbeats/s")
}
