package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arcagent/arcagent/controlplane/store/storetest"
)

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE a = ? AND b = ?`, `SELECT a FROM t WHERE a = $1 AND b = $2`},
		{`SELECT '?' , ?`, `SELECT '?' , $1`},
		{`SELECT 'it''s ?', ?`, `SELECT 'it''s ?', $1`},
		{`SELECT "we?ird" FROM t WHERE x = ?`, `SELECT "we?ird" FROM t WHERE x = $1`},
		{"SELECT ? -- what?\n, ?", "SELECT $1 -- what?\n, $2"},
		{`SELECT /* ? */ ?`, `SELECT /* ? */ $1`},
		{`SELECT $$ ? $$, ?`, `SELECT $$ ? $$, $1`},
		{`SELECT $q$ it's ? $q$, ?`, `SELECT $q$ it's ? $q$, $1`},
		{`SELECT 'open ?`, `SELECT 'open ?`},
		{`SELECT ? /* open ?`, `SELECT $1 /* open ?`},
		{`UPDATE t SET v = CASE WHEN ? <> '' THEN ? ELSE v END WHERE id = ?`, `UPDATE t SET v = CASE WHEN $1 <> '' THEN $2 ELSE v END WHERE id = $3`},
	} {
		if got := rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzRebind checks that rewriting never loses or invents text outside
// the placeholders: removing every $n the rewrite made gives the input
// without its rewritten ?s.
func FuzzRebind(f *testing.F) {
	for _, s := range []string{`SELECT ?`, `'?'`, `"a?" ?`, "-- ?\n?", `/* ? */ ?`, `$x$ ? $x$ ?`, `$1 ?`, `'''?`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := rebind(q)
		if !strings.Contains(q, "?") && out != q {
			t.Fatalf("rebind changed a query without placeholders: %q -> %q", q, out)
		}
		if strings.Count(out, "?") > strings.Count(q, "?") {
			t.Fatalf("rebind added question marks: %q -> %q", q, out)
		}
	})
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:secret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgresql://u@h/db?password=secret", "postgresql://u@h/db?password=xxxxx"},
		{"/var/lib/arcserver/arcserver.db", "/var/lib/arcserver/arcserver.db"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// A connection failure does not print the password.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://u:hunter2secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2")
	if err == nil || strings.Contains(err.Error(), "hunter2secret") {
		t.Fatalf("error %v", err)
	}
}

// TestPostgresReplicas opens the same PostgreSQL schema twice, as two
// arcserver replicas do: both migrate at once (once only), and a
// one-use credential registers exactly one machine however the
// registrations race.
func TestPostgresReplicas(t *testing.T) {
	dsn := storetest.Postgres(t)
	ctx := context.Background()
	stores := make([]*DB, 4)
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func(i int) { defer wg.Done(); stores[i], errs[i] = Open(ctx, dsn) }(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	var n int
	if err := stores[0].r.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != SchemaVersion() {
		t.Fatalf("%d migrations recorded: %v", n, err)
	}
	a := stores[0]
	now := time.Now()
	if err := a.CreateSubscription(ctx, Subscription{ID: "s1", DisplayName: "prod", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateResourceGroup(ctx, ResourceGroup{SubscriptionID: "s1", Name: "web", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for round := range 10 {
		id, hash := "c"+string(rune('a'+round)), "h"+string(rune('a'+round))
		if err := a.CreateOnboarding(ctx, OnboardingCredential{ID: id, Hash: hash, SubscriptionID: "s1", ResourceGroup: "web", CreatedBy: "o", CreatedAt: now, ExpiresAt: now.Add(time.Hour), UsesTotal: 1, UsesLeft: 1}); err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				name := id + "-" + string(rune('0'+i))
				errs[i] = s.RegisterMachine(ctx, hash, now, &Machine{ID: name, Name: name, PublicKeyPEM: "k", DesiredState: []byte("{}"), DesiredETag: "e", Inventory: []byte("{}"), CreatedAt: now, LastHeartbeat: now})
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if !errors.Is(err, ErrOnboardingUsedUp) {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d registrations with a one-use credential", round, ok)
		}
	}
	ms, err := stores[1].ListMachines(ctx, MachineFilter{})
	if err != nil || len(ms) != 10 {
		t.Fatalf("%d machines %v", len(ms), err)
	}
	// Heartbeat batches from every replica at once, overlapping, in
	// different orders: no deadlock, the latest time wins.
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var hbs []Heartbeat
			for j := range ms {
				m := ms[(j*(i+1))%len(ms)]
				hbs = append(hbs, Heartbeat{MachineID: m.ID, At: now.Add(time.Duration(i+1) * time.Minute)})
			}
			for range 20 {
				if err := s.RecordHeartbeats(ctx, hbs); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	m, err := a.Machine(ctx, ms[0].ID)
	if err != nil || !m.LastHeartbeat.Equal(now.Add(4*time.Minute).Truncate(time.Millisecond)) {
		t.Fatalf("%v %v", m.LastHeartbeat, err)
	}
	if err := a.Backup(ctx, t.TempDir()+"/b.db"); !errors.Is(err, ErrBackupUnsupported) {
		t.Fatalf("backup of PostgreSQL: %v", err)
	}
	if err := a.CreateTenant(ctx, Tenant{ID: "t1", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := stores[2].CreateTenant(ctx, Tenant{ID: "t2", CreatedAt: now}); !errors.Is(err, ErrConflict) {
		t.Fatalf("second tenant: %v", err)
	}
	// A newer schema than the code knows is refused, as on SQLite.
	if _, err := a.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(ctx, dsn); err == nil {
		s.Close()
		t.Fatal("opened a database from the future")
	}
}

// TestCopyAll copies a SQLite store with a row in every table into an
// empty PostgreSQL schema and reads the same content back; a second copy
// into the now non-empty target is refused and changes nothing.
func TestCopyAll(t *testing.T) {
	ctx := context.Background()
	src, _ := open(t)
	mid := registerOne(t, src)
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, err := range []error{
		src.CreateTenant(ctx, Tenant{ID: "t1", CreatedAt: now}),
		src.CreateAPIToken(ctx, APIToken{ID: "a1", Principal: "owner", Hash: "x", CreatedAt: now}),
		src.CreateRoleAssignment(ctx, RoleAssignment{ID: "r1", Principal: "owner", Role: "Owner", Scope: "/", CreatedAt: now}),
		src.AddSigningKey(ctx, SigningKey{KID: "k1", PrivatePEM: []byte("pem"), CreatedAt: now}),
		src.CreatePackage(ctx, Package{Kind: KindGuestConfig, Publisher: "P", Type: "T", Version: "1", SHA256: "aa", Size: 3, PublishedAt: now}),
		src.SetMachineStatus(ctx, mid, []byte(`{"it's":"?"}`), now),
		src.RecordHeartbeats(ctx, []Heartbeat{{MachineID: mid, At: now.Add(time.Minute), AgentVersion: "9"}}),
		src.UpdateGroupAssignments(ctx, "s1", "web", func([]GroupAssignment) ([]GroupAssignment, error) {
			return []GroupAssignment{{Name: "a", Doc: []byte(`{}`), UpdatedAt: now}}, nil
		}, func(MachineRef, DesiredState, []GroupAssignment) (*DesiredState, error) { return nil, nil }),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	dst := openPG(t)
	counts, err := CopyAll(ctx, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, c := range counts {
		total += c.Rows
	}
	if len(counts) < 10 || total < 11 {
		t.Fatalf("copied %+v", counts)
	}
	want, _ := src.Machine(ctx, mid)
	got, err := dst.Machine(ctx, mid)
	if err != nil || got.LastHeartbeat != want.LastHeartbeat || string(got.Status) != string(want.Status) || got.AgentVersion != "9" || got.ResourceID != want.ResourceID {
		t.Fatalf("machine after copy: %+v %v", got, err)
	}
	for _, check := range []func(s *DB) (any, error){
		func(s *DB) (any, error) { return s.Tenant(ctx) },
		func(s *DB) (any, error) { return s.ListAPITokens(ctx) },
		func(s *DB) (any, error) { return s.ListRoleAssignments(ctx) },
		func(s *DB) (any, error) { return s.SigningKeys(ctx) },
		func(s *DB) (any, error) { return s.ListPackages(ctx, "", "", "") },
		func(s *DB) (any, error) { return s.ListOnboarding(ctx) },
		func(s *DB) (any, error) { return s.ListResourceGroups(ctx, "") },
		func(s *DB) (any, error) { return s.ListSubscriptions(ctx) },
		func(s *DB) (any, error) { return s.ListGroupAssignments(ctx, "s1", "web") },
		func(s *DB) (any, error) { return s.ListMachines(ctx, MachineFilter{}) },
	} {
		a, err1 := check(src)
		b, err2 := check(dst)
		if err1 != nil || err2 != nil || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("after copy:\n sqlite   %v %v\n postgres %v %v", a, err1, b, err2)
		}
	}
	if _, err := CopyAll(ctx, src, dst); !errors.Is(err, ErrTargetNotEmpty) {
		t.Fatalf("second copy: %v", err)
	}
	// The copy's rows are ordinary rows: the target keeps working.
	if err := dst.CreateAPIToken(ctx, APIToken{ID: "a2", Principal: "p", Hash: "y", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
}
