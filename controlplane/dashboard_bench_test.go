package controlplane_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/controlplane/store/storetest"
)

// seedFleet inserts n machines, their heartbeats, one uploaded audit
// report each and 10 failing rules each (the rows AddAuditReport writes)
// into the server's real database in one transaction (registering and
// uploading 10,000 times one request at a time would time the setup, not
// the pages). Machine i is in resource group rg(i%2), runs agent
// 1.(i%7).0 and reports one extension and one assignment; rule
// ARC-BEN-k fails on 2,000 machines.
func seedFleet(b *testing.B, db *sql.DB, postgres bool, sub string, n int, now time.Time) {
	b.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	ds, _ := json.Marshal(apiv1.DesiredState{Extensions: []apiv1.ExtensionSpec{{Name: "monitor", Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0"}}, GuestConfigurationAssignments: []apiv1.GuestConfigurationAssignment{}})
	st, _ := json.Marshal(apiv1.MachineStatus{Extensions: []apiv1.ExtensionStatus{{Name: "monitor", Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0", State: "Succeeded"}},
		GuestConfiguration: []apiv1.GuestConfigurationStatus{{Name: "ssh", Policy: "Contoso.Baseline.SSH", Version: "1.0", Mode: "Audit", Compliance: "Compliant"}}})
	ins := map[string]*batchInsert{}
	for _, t := range []struct{ table, cols string }{
		{"machines", "id, name, name_key, subscription_id, resource_group, rg_key, resource_id, public_key, key_thumbprint, inventory, tags, agent_version, created_at, last_heartbeat, onboarding_id, desired_state, desired_etag, status, status_at"},
		{"machine_heartbeats", "machine_id, last_heartbeat, agent_version"},
		{"audit_reports", "id, machine_id, profile, created_at, received_at, failed, doc"},
		{"audit_findings", "machine_id, profile, rule_key, rule_id, report_id, severity, sev_rank, title, message, remediation, reported_at"},
	} {
		ins[t.table] = &batchInsert{b: b, tx: tx, table: t.table, cols: t.cols, postgres: postgres}
	}
	at := now.Add(-time.Hour).UnixMilli()
	sevs := []string{"critical", "high", "medium", "low"}
	for i := range n {
		id := benchMachineID(i)
		name := fmt.Sprintf("m%05d", i)
		rg := fmt.Sprintf("rg%d", i%2)
		rid := "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/Microsoft.HybridCompute/machines/" + name
		inv, _ := json.Marshal(apiv1.Inventory{Hostname: name, OSType: "linux", OSName: "Ubuntu", OSVersion: "24.04", Kernel: "6.8.0-31-generic", AgentVersion: "1.0.0"})
		ver := fmt.Sprintf("1.%d.0", i%7)
		hb := now.Add(-time.Duration(i%40) * time.Minute).UnixMilli()
		ins["machines"].add(id, name, name, sub, rg, rg, rid, "bench", "bench", string(inv), "{}", "1.0.0", now.UnixMilli(), now.UnixMilli(), "", string(ds), `"e"`, string(st), now.UnixMilli())
		ins["machine_heartbeats"].add(id, hb, ver)
		report := fmt.Sprintf("%08x-0000-4000-9000-%012x", i, i)
		ins["audit_reports"].add(report, id, "host", at, at, 10, `{"schemaVersion":1}`)
		for j := range 10 {
			rule := fmt.Sprintf("ARC-BEN-%03d", (i+j*7)%50)
			ins["audit_findings"].add(id, "host", strings.ToLower(rule), rule, report, sevs[j%4], 4-j%4, "rule "+rule, "finding on "+name, "fix "+rule, at)
		}
	}
	for _, t := range []string{"machines", "machine_heartbeats", "audit_reports", "audit_findings"} {
		ins[t].flush()
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

func benchMachineID(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) }

// batchInsert writes rows 100 to a statement.
type batchInsert struct {
	b           *testing.B
	tx          *sql.Tx
	table, cols string
	postgres    bool
	rows        int
	args        []any
}

func (bi *batchInsert) add(vals ...any) {
	bi.args = append(bi.args, vals...)
	if bi.rows++; bi.rows == 100 {
		bi.flush()
	}
}

func (bi *batchInsert) flush() {
	if bi.rows == 0 {
		return
	}
	per := len(bi.args) / bi.rows
	var q strings.Builder
	q.WriteString("INSERT INTO " + bi.table + " (" + bi.cols + ") VALUES ")
	n := 0
	for r := range bi.rows {
		if r > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(")
		for c := range per {
			if c > 0 {
				q.WriteString(", ")
			}
			n++
			if bi.postgres {
				fmt.Fprintf(&q, "$%d", n)
			} else {
				q.WriteString("?")
			}
		}
		q.WriteString(")")
	}
	if _, err := bi.tx.Exec(q.String(), bi.args...); err != nil {
		bi.b.Fatalf("seed %s: %v", bi.table, err)
	}
	bi.rows, bi.args = 0, bi.args[:0]
}

// BenchmarkDashboard measures the server time of each dashboard page with
// 10,000 machines and 100,000 findings in the real store, on SQLite and
// on PostgreSQL (ARCSERVER_TEST_POSTGRES; skipped without it), the
// handler called directly (no TLS or network): the overview as an Owner
// and as a reader of one of the two resource groups (top rules then
// counted over that group), a machine page, and a rule page (the first
// 100 of the 2,000 machines failing it).
func BenchmarkDashboard(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchDashboard(b, "") })
	b.Run("postgres", func(b *testing.B) { benchDashboard(b, storetest.Postgres(b)) })
}

func benchDashboard(b *testing.B, dsn string) {
	const machines = 10_000
	if dsn != "" {
		envDatabase = func(testing.TB) string { return dsn }
		defer func() { envDatabase = nil }()
	}
	e := newEnvWith(b, nil)
	ctx := context.Background()
	sub, err := e.owner.CreateSubscription(ctx, apiv1.CreateSubscriptionRequest{DisplayName: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	for _, g := range []string{"rg0", "rg1"} {
		if _, err := e.owner.CreateResourceGroup(ctx, sub.SubID, apiv1.CreateResourceGroupRequest{Name: g}); err != nil {
			b.Fatal(err)
		}
	}
	var db *sql.DB
	if dsn != "" {
		db, err = sql.Open("pgx", dsn)
	} else {
		db, err = sql.Open("sqlite", "file:"+filepath.ToSlash(filepath.Join(e.dir, controlplane.DBFile))+"?_pragma=busy_timeout(10000)")
	}
	if err != nil {
		b.Fatal(err)
	}
	seedFleet(b, db, dsn != "", sub.SubID, machines, e.clock.Now())
	if dsn != "" {
		if _, err := db.Exec(`ANALYZE`); err != nil {
			b.Fatal(err)
		}
	}
	db.Close()
	if _, err := e.owner.AssignRole(ctx, apiv1.CreateRoleAssignmentRequest{Principal: "reader", Role: rbac.Reader, Scope: rbac.ResourceGroupScope(sub.SubID, "rg0")}); err != nil {
		b.Fatal(err)
	}
	reader, err := e.owner.CreateAPIToken(ctx, apiv1.CreateAPITokenRequest{Principal: "reader"})
	if err != nil {
		b.Fatal(err)
	}
	h := e.srv.Handler()
	page := func(b *testing.B, tok, path, want string) {
		b.Helper()
		req := httptest.NewRequest(http.MethodGet, "https://"+strings.TrimPrefix(e.url, "https://")+path, nil)
		req.AddCookie(&http.Cookie{Name: "arcagent_ui", Value: tok})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			b.Fatalf("GET %s: %d (%.300s)", path, rec.Code, rec.Body.String())
		}
		b.SetBytes(int64(rec.Body.Len()))
	}
	// The store reads the overview makes, alone.
	b.Run("store-top-rules", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if rc, err := e.st.TopFailingRules(ctx, store.AuditFindingFilter{}, 10); err != nil || len(rc) != 10 {
				b.Fatal(rc, err)
			}
		}
	})
	b.Run("store-machine-summaries", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ms, err := e.st.(interface {
				MachineSummaries(context.Context, store.MachineFilter) ([]store.MachineSummary, error)
			}).MachineSummaries(ctx, store.MachineFilter{}); err != nil || len(ms) != machines {
				b.Fatal(len(ms), err)
			}
		}
	})
	bounds := store.HeartbeatBounds{DisconnectedAt: e.clock.Now().Add(-apiv1.DisconnectedAfter), ExpiredAt: e.clock.Now().Add(-apiv1.ExpiredAfter)}
	b.Run("store-fleet-counts", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.st.(*store.SQLite).FleetCounts(ctx, nil, bounds); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("store-fleet-page", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ms, err := e.st.(*store.SQLite).FleetPage(ctx, nil, "", bounds, 4900, 100); err != nil || len(ms) != 100 {
				b.Fatal(len(ms), err)
			}
		}
	})
	for _, c := range []struct{ name, tok, path, want string }{
		{"overview", e.ownerT, "/ui/", `id="count-total">10000<`},
		{"overview-page-50-connected", e.ownerT, "/ui/?status=Connected&page=50", "page"},
		{"overview-rg-reader", reader.Token, "/ui/", `id="count-total">5000<`},
		{"machine", e.ownerT, "/ui/machines/" + benchMachineID(4242), "m04242"},
		{"rule", e.ownerT, "/ui/rules/" + url.PathEscape("ARC-BEN-007"), "page 1 of"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				page(b, c.tok, c.path, c.want)
			}
		})
	}
}
