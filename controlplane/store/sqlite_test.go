package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arcagent/arcagent/controlplane/store/storetest"
)

// backends runs f on a fresh SQLite store and on a fresh PostgreSQL
// schema (storetest.Postgres: skipped without ARCSERVER_TEST_POSTGRES,
// failed under CI=true), the same test for both engines.
func backends(t *testing.T, f func(t *testing.T, s *DB)) {
	t.Run("sqlite", func(t *testing.T) {
		s, _ := open(t)
		f(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, openPG(t))
	})
}

func openPG(t *testing.T) *DB {
	t.Helper()
	s, err := Open(context.Background(), storetest.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

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

func TestRegisterMachineRules(t *testing.T) { backends(t, testRegisterMachineRules) }

func testRegisterMachineRules(t *testing.T, s *DB) {
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

	// Heartbeats never move backwards (nor does an older one set the agent
	// version) and skip deleted machines.
	ms, err := s.ListMachines(ctx, MachineFilter{SubscriptionID: "S1", ResourceGroup: "WEB"})
	if err != nil || len(ms) != 3 {
		t.Fatalf("%d machines %v", len(ms), err)
	}
	id := ms[0].ID
	must(s.RecordHeartbeats(ctx, []Heartbeat{{MachineID: id, At: now.Add(time.Minute), AgentVersion: "2"}, {MachineID: id, At: now.Add(-time.Hour), AgentVersion: "1"}, {MachineID: "gone", At: now}}))
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

// TestUpgradeFromVersion3 opens a database of schema 3, when every package
// was an extension, and checks that its packages read back as extensions.
func TestUpgradeFromVersion3(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "v3.db")
	db, err := sql.Open("sqlite", "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	qs := []string{`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`}
	qs = append(qs, migrations[:3]...)
	qs = append(qs, `INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0), (2, 0), (3, 0)`,
		`INSERT INTO packages (publisher, type, version, name_key, sha256, size, published_at) VALUES ('P', 'T', '1', 'p.t-1', 'aa', 5, 1000)`)
	for _, q := range qs {
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
	if got, err := s.PackageBySHA256(ctx, "aa"); err != nil || got.Kind != KindExtension || got.Size != 5 {
		t.Fatalf("%+v %v", got, err)
	}
	if ps, err := s.ListPackages(ctx, "", "", KindGuestConfig); err != nil || len(ps) != 0 {
		t.Fatalf("guest configuration packages of a version 3 database: %v %v", ps, err)
	}
}

func TestPackages(t *testing.T) { backends(t, testPackages) }

func testPackages(t *testing.T, s *DB) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	a := Package{Kind: KindExtension, Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0", SHA256: "aa", Size: 10, KeyID: "k1", PublishedAt: now, PublishedBy: "owner"}
	if err := s.CreatePackage(ctx, a); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]Package{
		"same name, other case":   {Publisher: "contoso.monitoring", Type: "statusreporter", Version: "1.0.0", SHA256: "bb", PublishedAt: now},
		"same digest, other name": {Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "2.0.0", SHA256: "aa", PublishedAt: now},
	} {
		if err := s.CreatePackage(ctx, p); !errors.Is(err, ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", name, err)
		}
	}
	b := Package{Kind: KindExtension, Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.1.0", SHA256: "cc", Size: 11, PublishedAt: now.Add(time.Second)}
	if err := s.CreatePackage(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePackage(ctx, Package{Publisher: "Fabrikam", Type: "Agent", Version: "1", SHA256: "dd", PublishedAt: now}); err != nil {
		t.Fatal(err)
	}
	gc := Package{Kind: KindGuestConfig, Publisher: "Contoso.Baseline", Type: "SSH", Version: "1.0", SHA256: "ff", Size: 12, PublishedAt: now}
	if err := s.CreatePackage(ctx, gc); err != nil {
		t.Fatal(err)
	}
	if got, err := s.PackageBySHA256(ctx, "ff"); err != nil || got != gc {
		t.Fatalf("guest configuration package: %+v %v", got, err)
	}
	if got, _ := s.PackageBySHA256(ctx, "dd"); got.Kind != KindExtension {
		t.Fatalf("a package stored without a kind reads back as %q, want %q", got.Kind, KindExtension)
	}
	if got, err := s.PackageByName(ctx, "CONTOSO.monitoring", "statusReporter", "1.0.0"); err != nil || got != a {
		t.Fatalf("by name: %+v %v", got, err)
	}
	if got, err := s.PackageBySHA256(ctx, "cc"); err != nil || got != b {
		t.Fatalf("by digest: %+v %v", got, err)
	}
	if _, err := s.PackageBySHA256(ctx, "ee"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown digest: %v", err)
	}
	if _, err := s.PackageByName(ctx, "Contoso.Monitoring", "StatusReporter", "9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown version: %v", err)
	}
	for _, tc := range []struct {
		pub, typ, kind string
		want           int
	}{
		{"", "", "", 4}, {"contoso.monitoring", "", "", 2}, {"", "agent", "", 1}, {"Contoso.Monitoring", "Agent", "", 0},
		{"", "", KindExtension, 3}, {"", "", KindGuestConfig, 1}, {"contoso.baseline", "", KindExtension, 0}, {"contoso.baseline", "ssh", KindGuestConfig, 1},
	} {
		ps, err := s.ListPackages(ctx, tc.pub, tc.typ, tc.kind)
		if err != nil || len(ps) != tc.want {
			t.Errorf("list %q %q %q: %d %v, want %d", tc.pub, tc.typ, tc.kind, len(ps), err, tc.want)
		}
	}
}

func TestUpdateDesiredStateSerialises(t *testing.T) { backends(t, testUpdateDesiredStateSerialises) }

func testUpdateDesiredStateSerialises(t *testing.T, s *DB) {
	ctx := context.Background()
	m := registerOne(t, s)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.UpdateDesiredState(ctx, m, func(cur DesiredState) (*DesiredState, error) {
				return &DesiredState{Doc: append(cur.Doc, 'x'), ETag: cur.ETag + "x", Private: append(cur.Private, 'x')}, nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := s.Machine(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.DesiredETag) - len("e0"); n != 20 || len(got.DesiredState) != len("{}")+20 {
		t.Fatalf("%d of 20 concurrent updates kept (etag %q, doc %q)", n, got.DesiredETag, got.DesiredState)
	}
	// A nil document changes nothing; an error is returned as it is.
	var priv []byte
	if err := s.UpdateDesiredState(ctx, m, func(cur DesiredState) (*DesiredState, error) { priv = cur.Private; return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if string(priv) != "{}"+strings.Repeat("x", 20) {
		t.Fatalf("private data %q", priv)
	}
	boom := errors.New("boom")
	if err := s.UpdateDesiredState(ctx, m, func(DesiredState) (*DesiredState, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if err := s.UpdateDesiredState(ctx, "nope", func(DesiredState) (*DesiredState, error) { return &DesiredState{Doc: []byte("{}")}, nil }); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

// registerOne registers one machine (desired ETag "e0") and returns its id.
func registerOne(t *testing.T, s *SQLite) string {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	if err := s.CreateSubscription(ctx, Subscription{ID: "s1", DisplayName: "prod", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateResourceGroup(ctx, ResourceGroup{SubscriptionID: "s1", Name: "web", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOnboarding(ctx, OnboardingCredential{ID: "c1", Hash: "h1", SubscriptionID: "s1", ResourceGroup: "web", CreatedBy: "o", CreatedAt: now, ExpiresAt: now.Add(time.Hour), UsesTotal: 1, UsesLeft: 1}); err != nil {
		t.Fatal(err)
	}
	m := &Machine{ID: "m1", Name: "m1", PublicKeyPEM: "k", DesiredState: []byte("{}"), DesiredETag: "e0", Inventory: []byte("{}"), CreatedAt: now, LastHeartbeat: now}
	if err := s.RegisterMachine(ctx, "h1", now, m); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

func TestGroupAssignments(t *testing.T) { backends(t, testGroupAssignments) }

func testGroupAssignments(t *testing.T, s *DB) {
	ctx := context.Background()
	id := registerOne(t, s)
	now := time.Now().UTC().Truncate(time.Millisecond)
	// sync writes the names of the group's assignments as the document.
	var synced []string
	sync := func(m MachineRef, cur DesiredState, group []GroupAssignment) (*DesiredState, error) {
		synced = append(synced, m.ID)
		var names []string
		for _, g := range group {
			names = append(names, g.Name)
		}
		doc := []byte(strings.Join(names, ","))
		if string(doc) == string(cur.Doc) {
			return nil, nil
		}
		return &DesiredState{Doc: doc, ETag: "e-" + string(doc)}, nil
	}
	add := func(name string) func([]GroupAssignment) ([]GroupAssignment, error) {
		return func(cur []GroupAssignment) ([]GroupAssignment, error) {
			return append(cur, GroupAssignment{Name: name, Doc: []byte(`{"name":"` + name + `"}`), UpdatedAt: now}), nil
		}
	}
	if err := s.UpdateGroupAssignments(ctx, "S1", "WEB", add("b"), sync); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateGroupAssignments(ctx, "s1", "web", add("A"), sync); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Machine(ctx, id); string(m.DesiredState) != "A,b" || m.DesiredETag != "e-A,b" || len(synced) != 2 {
		t.Fatalf("machine desired state %q etag %q after %v", m.DesiredState, m.DesiredETag, synced)
	}
	gs, err := s.ListGroupAssignments(ctx, "s1", "Web")
	if err != nil || len(gs) != 2 || gs[0].Name != "A" || string(gs[1].Doc) != `{"name":"b"}` || !gs[1].UpdatedAt.Equal(now) {
		t.Fatalf("%+v %v", gs, err)
	}
	if err := s.UpdateGroupAssignments(ctx, "s1", "web", add("a"), sync); !errors.Is(err, ErrConflict) {
		t.Fatalf("same name, other case: %v", err)
	}
	// A failing sync rolls the group change back.
	boom := errors.New("boom")
	err = s.UpdateGroupAssignments(ctx, "s1", "web", add("c"), func(MachineRef, DesiredState, []GroupAssignment) (*DesiredState, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if gs, _ := s.ListGroupAssignments(ctx, "s1", "web"); len(gs) != 2 {
		t.Fatalf("a failed change was kept: %+v", gs)
	}
	// fn returning nil changes nothing and syncs nobody.
	synced = nil
	if err := s.UpdateGroupAssignments(ctx, "s1", "web", func([]GroupAssignment) ([]GroupAssignment, error) { return nil, nil }, sync); err != nil || synced != nil {
		t.Fatalf("%v %v", err, synced)
	}
	// A machine whose document lost the group's view is brought back.
	if err := s.SetDesiredState(ctx, id, []byte("{}"), "e0"); err != nil {
		t.Fatal(err)
	}
	if err := s.SyncGroupAssignments(ctx, id, sync); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Machine(ctx, id); string(m.DesiredState) != "A,b" {
		t.Fatalf("after sync: %q", m.DesiredState)
	}
	if err := s.SyncGroupAssignments(ctx, "nope", sync); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown machine: %v", err)
	}
	if gs, err := s.ListGroupAssignments(ctx, "s1", "other"); err != nil || len(gs) != 0 {
		t.Fatalf("other group: %+v %v", gs, err)
	}
}
