package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// seedMachines inserts machines m0…m(n-1) (names m0…, resource groups
// rg0…rg(groups-1) of subscription s1) in one transaction.
func seedMachines(tb testing.TB, s *SQLite, n, groups int) {
	tb.Helper()
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	for i := range n {
		rg := fmt.Sprintf("rg%d", i%groups)
		name := fmt.Sprintf("m%d", i)
		if _, err := tx.ExecContext(ctx, `INSERT INTO machines (id, name, name_key, subscription_id, resource_group, rg_key, resource_id, public_key, key_thumbprint, created_at, last_heartbeat, desired_state, desired_etag)
			VALUES (?, ?, ?, 's1', ?, ?, ?, 'k', 't', 1, 1, '{}', 'e0')`, name, name, name, rg, rg, MachineResourceID("s1", rg, name)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

func addReport(t *testing.T, s *SQLite, id, machine, profile string, at time.Time, keep int, rules ...string) error {
	t.Helper()
	var fs []AuditFinding
	for _, r := range rules {
		sev := "high"
		if r == "R-LOW" {
			sev = "low"
		}
		if r == "R-CRIT" {
			sev = "critical"
		}
		fs = append(fs, AuditFinding{RuleID: r, Severity: sev, Title: "title " + r, Message: "msg " + r + " on " + machine, Remediation: "fix " + r})
	}
	return s.AddAuditReport(context.Background(), AuditReport{ID: id, MachineID: machine, Profile: profile, CreatedAt: at, ReceivedAt: at, Failed: len(fs), Doc: []byte(`{"id":"` + id + `"}`)}, fs, keep)
}

func TestAuditReports(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	seedMachines(t, s, 3, 2) // m0, m2 in rg0; m1 in rg1
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(addReport(t, s, "a1", "m0", "default", t0, 2, "R-HIGH", "R-LOW"))
	must(addReport(t, s, "a2", "m0", "default", t0.Add(time.Hour), 2, "R-HIGH", "R-CRIT"))
	must(addReport(t, s, "a3", "m0", "default", t0.Add(2*time.Hour), 2, "r-high")) // trims a1
	must(addReport(t, s, "b1", "m1", "default", t0, 2, "R-HIGH", "R-LOW"))
	must(addReport(t, s, "c1", "m2", "host", t0, 2, "R-CRIT"))
	// A late retry of an older report joins the history only.
	must(addReport(t, s, "b0", "m1", "default", t0.Add(-time.Hour), 5, "R-CRIT"))

	if err := addReport(t, s, "x", "nope", "default", t0, 2, "R-HIGH"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown machine: %v", err)
	}
	if err := addReport(t, s, "a3", "m1", "default", t0, 2); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate id: %v", err)
	}
	if err := addReport(t, s, "dup", "m1", "default", t0.Add(time.Hour), 2, "R-X", "r-x"); !errors.Is(err, ErrConflict) {
		t.Fatalf("rule twice: %v", err)
	}

	hist, err := s.AuditReports(ctx, "m0", "", 0)
	must(err)
	if len(hist) != 2 || hist[0].ID != "a3" || hist[1].ID != "a2" || hist[0].Doc != nil || !hist[0].CreatedAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("history of m0: %+v", hist)
	}
	if h, _ := s.AuditReports(ctx, "m0", "default", 1); len(h) != 1 || h[0].ID != "a3" {
		t.Fatalf("limit 1: %+v", h)
	}
	if h, _ := s.AuditReports(ctx, "m0", "host", 0); len(h) != 0 {
		t.Fatalf("other profile: %+v", h)
	}
	r, err := s.AuditReport(ctx, "a3")
	must(err)
	if string(r.Doc) != `{"id":"a3"}` || r.Failed != 1 || r.Profile != "default" {
		t.Fatalf("report: %+v", r)
	}
	if _, err := s.AuditReport(ctx, "a1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("trimmed report: %v", err)
	}

	ids := func(fs []AuditFinding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.MachineName+":"+f.RuleID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    AuditFindingFilter
		want string
	}{
		{"all", AuditFindingFilter{}, "[m2:R-CRIT m0:r-high m1:R-HIGH m1:R-LOW]"},
		{"rule any case", AuditFindingFilter{RuleID: "R-high"}, "[m0:r-high m1:R-HIGH]"},
		{"min severity", AuditFindingFilter{Severity: "high"}, "[m2:R-CRIT m0:r-high m1:R-HIGH]"},
		{"critical", AuditFindingFilter{Severity: "critical"}, "[m2:R-CRIT]"},
		{"resource group", AuditFindingFilter{SubscriptionID: "S1", ResourceGroup: "RG1"}, "[m1:R-HIGH m1:R-LOW]"},
		{"machine", AuditFindingFilter{MachineID: "m0"}, "[m0:r-high]"},
		{"profile", AuditFindingFilter{Profile: "host"}, "[m2:R-CRIT]"},
		{"no match", AuditFindingFilter{SubscriptionID: "s2"}, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := s.LatestAuditFindings(ctx, tc.f)
			must(err)
			if got := fmt.Sprint(ids(fs)); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	fs, _ := s.LatestAuditFindings(ctx, AuditFindingFilter{MachineID: "m1", RuleID: "R-LOW"})
	if len(fs) != 1 || fs[0].ResourceGroup != "rg1" || fs[0].ResourceID != MachineResourceID("s1", "rg1", "m1") || fs[0].Message != "msg R-LOW on m1" ||
		fs[0].Remediation != "fix R-LOW" || fs[0].Title != "title R-LOW" || fs[0].Severity != "low" || !fs[0].ReportedAt.Equal(t0) || fs[0].Profile != "default" {
		t.Fatalf("finding: %+v", fs)
	}

	top, err := s.TopFailingRules(ctx, AuditFindingFilter{}, 0)
	must(err)
	// The id and title are those of one of the rule's findings (r-high or R-HIGH).
	if got := strings.ToLower(fmt.Sprint(top)); got != "[{r-high title r-high high 2} {r-crit title r-crit critical 1} {r-low title r-low low 1}]" {
		t.Fatalf("top: %s", got)
	}
	if top, _ := s.TopFailingRules(ctx, AuditFindingFilter{}, 1); len(top) != 1 {
		t.Fatalf("limit: %v", top)
	}

	// Deleting a machine deletes its reports and findings.
	must(s.DeleteMachine(ctx, "m0"))
	if h, _ := s.AuditReports(ctx, "m0", "", 0); len(h) != 0 {
		t.Fatalf("reports left: %v", h)
	}
	var n int
	must(s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_findings WHERE machine_id = 'm0'`).Scan(&n))
	if n != 0 {
		t.Fatalf("%d findings left", n)
	}
}

// TestAuditQueriesUseIndexes checks the plans of the fleet reads: by rule
// through audit_findings_rule, never a scan of the whole table sorted in
// a temporary b-tree for the counts.
func TestAuditQueriesUseIndexes(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	plan := func(q string, args ...any) string {
		rows, err := s.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out string
		for rows.Next() {
			var id, parent, notused int
			var detail sql.NullString
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			out += detail.String + "\n"
		}
		return out
	}
	where, args := findingWhere(AuditFindingFilter{RuleID: "R"})
	if p := plan(`SELECT f.rule_id FROM audit_findings f JOIN machines m ON m.id = f.machine_id`+where, args...); !strings.Contains(p, "audit_findings_rule") {
		t.Fatalf("by rule:\n%s", p)
	}
}
