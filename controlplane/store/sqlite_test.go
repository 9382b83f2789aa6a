package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T) (*SQLite, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "db.sqlite")
	s, err := OpenSQLite(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, p
}

func TestMigrationsAndModes(t *testing.T) {
	s, p := open(t)
	ctx := context.Background()
	var v int
	if err := s.r.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil || v != SchemaVersion() {
		t.Fatalf("schema version %d %v", v, err)
	}
	var mode string
	if err := s.r.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode %q %v", mode, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database mode %v %v", fi.Mode(), err)
	}
	s.Close()
	// Reopening applies nothing twice.
	s2, err := OpenSQLite(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var n int
	if err := s2.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != SchemaVersion() {
		t.Fatalf("%d migrations recorded: %v", n, err)
	}
	// A newer schema than the code knows is refused.
	if _, err := s2.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if _, err := OpenSQLite(ctx, p); err == nil {
		t.Fatal("opened a database from the future")
	}
}

func TestRegisterMachineRules(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateSubscription(ctx, Subscription{ID: "s1", DisplayName: "prod", CreatedAt: now}))
	must(s.CreateResourceGroup(ctx, ResourceGroup{SubscriptionID: "s1", Name: "Web", CreatedAt: now}))
	if err := s.CreateResourceGroup(ctx, ResourceGroup{SubscriptionID: "s1", Name: "web", CreatedAt: now}); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate group: %v", err)
	}
	if err := s.CreateResourceGroup(ctx, ResourceGroup{SubscriptionID: "nope", Name: "x", CreatedAt: now}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("group in a missing subscription: %v", err)
	}
	must(s.CreateOnboarding(ctx, OnboardingCredential{ID: "c1", Hash: "h1", SubscriptionID: "s1", ResourceGroup: "web", CreatedBy: "o", CreatedAt: now, ExpiresAt: now.Add(time.Hour), UsesTotal: 3, UsesLeft: 3}))
	reg := func(name string, at time.Time) error {
		m := &Machine{ID: name, Name: name, PublicKeyPEM: "k", DesiredState: []byte("{}"), DesiredETag: `"e"`, Inventory: []byte("{}"), CreatedAt: at, LastHeartbeat: at}
		return s.RegisterMachine(ctx, "h1", at, m)
	}
	// Concurrent registrations never exceed the use count.
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func(i int) { defer wg.Done(); errs[i] = reg(string(rune('a'+i)), now) }(i)
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, ErrOnboardingUsedUp) {
			t.Fatalf("unexpected %v", err)
		}
	}
	if ok != 3 {
		t.Fatalf("%d registrations with 3 uses", ok)
	}
	must(s.CreateOnboarding(ctx, OnboardingCredential{ID: "c2", Hash: "h2", SubscriptionID: "s1", ResourceGroup: "web", CreatedBy: "o", CreatedAt: now, ExpiresAt: now.Add(time.Hour), UsesTotal: 1, UsesLeft: 1}))
	m := &Machine{ID: "late", Name: "late", DesiredState: []byte("{}"), Inventory: []byte("{}")}
	if err := s.RegisterMachine(ctx, "h2", now.Add(2*time.Hour), m); !errors.Is(err, ErrOnboardingExpired) {
		t.Fatalf("expired: %v", err)
	}
	must(s.RevokeOnboarding(ctx, "c2", now))
	if err := s.RegisterMachine(ctx, "h2", now, m); !errors.Is(err, ErrOnboardingRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	if err := s.RegisterMachine(ctx, "nope", now, m); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}

	// Heartbeats never move backwards and skip deleted machines.
	ms, err := s.ListMachines(ctx, MachineFilter{SubscriptionID: "S1", ResourceGroup: "WEB"})
	if err != nil || len(ms) != 3 {
		t.Fatalf("%d machines %v", len(ms), err)
	}
	id := ms[0].ID
	must(s.RecordHeartbeats(ctx, []Heartbeat{{MachineID: id, At: now.Add(time.Minute), AgentVersion: "2"}, {MachineID: id, At: now.Add(-time.Hour)}, {MachineID: "gone", At: now}}))
	got, err := s.Machine(ctx, id)
	if err != nil || !got.LastHeartbeat.Equal(now.Add(time.Minute).Truncate(time.Millisecond)) || got.AgentVersion != "2" {
		t.Fatalf("%v %s %v", got.LastHeartbeat, got.AgentVersion, err)
	}
	must(s.DeleteMachine(ctx, id))
	if err := s.DeleteMachine(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestUpgradeFromVersion1 opens a database made by the first schema and
// checks that migration 2 carries every machine's heartbeat over.
func TestUpgradeFromVersion1(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`,
		migrations[0],
		`INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0)`,
		`INSERT INTO machines (id, name, name_key, subscription_id, resource_group, rg_key, resource_id, public_key, key_thumbprint, agent_version, created_at, last_heartbeat, desired_state, desired_etag)
		 VALUES ('m1', 'm1', 'm1', 's1', 'rg', 'rg', '/x', 'k', 't', '0.9', 1000, 123000, '{}', '"e"')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := OpenSQLite(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := s.Machine(ctx, "m1")
	if err != nil || m.LastHeartbeat.UnixMilli() != 123000 || m.AgentVersion != "0.9" {
		t.Fatalf("%+v %v", m, err)
	}
	if err := s.RecordHeartbeats(ctx, []Heartbeat{{MachineID: "m1", At: time.UnixMilli(200000), AgentVersion: "1.0"}}); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Machine(ctx, "m1"); m.LastHeartbeat.UnixMilli() != 200000 || m.AgentVersion != "1.0" {
		t.Fatalf("after heartbeat: %v %s", m.LastHeartbeat, m.AgentVersion)
	}
}
