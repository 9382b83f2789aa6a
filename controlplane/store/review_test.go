package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestTopFailingRulesTitleInScope: the title shown with a rule's count
// comes from a finding inside the filter's scope, never from a machine of
// another resource group (whose uploaded report may name the rule with
// any text it likes).
func TestTopFailingRulesTitleInScope(t *testing.T) {
	backends(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		seedMachines(t, s, 2, 2) // m0 in rg0, m1 in rg1
		at := time.UnixMilli(1_700_000_000_000).UTC()
		for _, m := range []struct{ id, machine, title string }{
			{"a0", "m0", "title seen in rg0"},
			{"a1", "m1", "secret of rg1"},
		} {
			fs := []AuditFinding{{RuleID: "R-X", Severity: "high", Title: m.title, Message: "m", Remediation: "fix"}}
			if err := s.AddAuditReport(ctx, AuditReport{ID: m.id, MachineID: m.machine, Profile: "default", CreatedAt: at, ReceivedAt: at, Failed: 1, Doc: []byte(`{}`)}, fs, 5); err != nil {
				t.Fatal(err)
			}
		}
		for rg, want := range map[string]string{"rg0": "title seen in rg0", "rg1": "secret of rg1"} {
			rcs, err := s.TopFailingRules(ctx, AuditFindingFilter{SubscriptionID: "s1", ResourceGroup: rg}, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(rcs) != 1 || rcs[0].Machines != 1 || rcs[0].Title != want {
				t.Errorf("rules failing in %s: %+v, want one machine titled %q", rg, rcs, want)
			}
		}
	})
}

// TestRebindPostgresLexing: what PostgreSQL's lexer reads as one comment
// or one identifier is not split by the rewriter, so no ? inside it is
// taken for a placeholder and none outside it is left unrewritten.
func TestRebindPostgresLexing(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// Block comments nest in PostgreSQL.
		{`SELECT /* a /* b */ ? */ ?`, `SELECT /* a /* b */ ? */ $1`},
		{`SELECT /* /* /* */ */ ? */ ?, ?`, `SELECT /* /* /* */ */ ? */ $1, $2`},
		// A $ inside an identifier does not open a dollar quote.
		{`SELECT a$b$ FROM t WHERE x = ? AND y$z$ = ?`, `SELECT a$b$ FROM t WHERE x = $1 AND y$z$ = $2`},
		{`SELECT t1$x$ , ? , $x$ ? $x$`, `SELECT t1$x$ , $1 , $x$ ? $x$`},
		// E'…' strings escape a quote with a backslash.
		{`SELECT E'it\'s ?', ?`, `SELECT E'it\'s ?', $1`},
		{`SELECT e'\\', ?`, `SELECT e'\\', $1`},
		// A plain literal's backslash is an ordinary character.
		{`SELECT '\', ?`, `SELECT '\', $1`},
		{`SELECT type'?', ?`, `SELECT type'?', $1`},
	} {
		if got := rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestAuditUploadRacingMachineDelete: an audit report stored while the
// machine is being deleted (another replica, PostgreSQL at READ
// COMMITTED) waits for the delete and is refused, instead of leaving
// reports and findings of a deleted machine that tenant-wide rule counts
// would still count.
func TestAuditUploadRacingMachineDelete(t *testing.T) {
	backends(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		seedMachines(t, s, 1, 1) // m0
		at := time.UnixMilli(1_700_000_000_000).UTC()
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `DELETE FROM machines WHERE id = 'm0'`); err != nil {
			t.Fatal(err)
		}
		if err := deleteMachineAudits(ctx, tx, "m0"); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			fs := []AuditFinding{{RuleID: "R-X", Severity: "high", Title: "t", Message: "m", Remediation: "fix"}}
			done <- s.AddAuditReport(ctx, AuditReport{ID: "late", MachineID: "m0", Profile: "default", CreatedAt: at, ReceivedAt: at, Failed: 1, Doc: []byte(`{}`)}, fs, 5)
		}()
		if s.dialect == dialectPostgres {
			// Let the upload reach the machine row before the delete commits.
			select {
			case err = <-done:
				done <- err
			case <-time.After(500 * time.Millisecond):
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, ErrNotFound) {
			t.Errorf("upload for a machine being deleted: %v, want ErrNotFound", err)
		}
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM audit_reports WHERE machine_id = 'm0') + (SELECT COUNT(*) FROM audit_findings WHERE machine_id = 'm0')`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%d report and finding rows left of the deleted machine (%v)", n, err)
		}
		rcs, err := s.TopFailingRules(ctx, AuditFindingFilter{}, 10)
		if err != nil || len(rcs) != 0 {
			t.Errorf("rules counted over a deleted machine: %+v %v", rcs, err)
		}
	})
}

// TestCopyAllFailureLeavesTargetEmpty: a row PostgreSQL refuses (a
// document that is not UTF-8, which SQLite kept) in a table copied after
// others stops the copy, and the target holds no row of any table: the
// copy can be run again once the row is mended.
func TestCopyAllFailureLeavesTargetEmpty(t *testing.T) {
	ctx := context.Background()
	src, _ := open(t)
	seedMachines(t, src, 3, 1)
	at := time.UnixMilli(1_700_000_000_000).UTC()
	if err := src.AddAuditReport(ctx, AuditReport{ID: "bad", MachineID: "m1", Profile: "default", CreatedAt: at, ReceivedAt: at, Doc: []byte("{\"x\":\"\xff\"}")}, nil, 5); err != nil {
		t.Fatal(err)
	}
	dst := openPG(t)
	if _, err := CopyAll(ctx, src, dst); err == nil || !strings.Contains(err.Error(), "audit_reports") {
		t.Fatalf("copy of a row PostgreSQL refuses: %v", err)
	}
	for _, table := range []string{"subscriptions", "machines", "machine_heartbeats", "audit_reports", "tenant"} {
		var n int
		if err := dst.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(table)).Scan(&n); err != nil && !strings.Contains(err.Error(), "does not exist") {
			t.Fatal(err)
		} else if n != 0 {
			t.Errorf("after a failed copy the target's %s holds %d rows", table, n)
		}
	}
	if _, err := src.w.ExecContext(ctx, `UPDATE audit_reports SET doc = '{}' WHERE id = 'bad'`); err != nil {
		t.Fatal(err)
	}
	if _, err := CopyAll(ctx, src, dst); err != nil {
		t.Fatalf("the copy run again: %v", err)
	}
}

// TestAuditProfilesPerMachineBounded: history is bounded per machine and
// profile, and a machine cannot grow its storage without bound by
// naming a new profile in every upload: beyond MaxAuditProfiles, the
// profiles uploaded least recently are dropped with their findings, and
// the one just uploaded always stays.
func TestAuditProfilesPerMachineBounded(t *testing.T) {
	backends(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		seedMachines(t, s, 2, 1) // m0, m1
		at := time.UnixMilli(1_700_000_000_000).UTC()
		n := MaxAuditProfiles + 4
		for i := range n {
			p := fmt.Sprintf("p%02d", i)
			fs := []AuditFinding{{RuleID: "R-" + p, Severity: "high", Title: "t", Message: "m", Remediation: "fix"}}
			// The same received time for all: the newest upload must win ties.
			if err := s.AddAuditReport(ctx, AuditReport{ID: "r" + p, MachineID: "m0", Profile: p, CreatedAt: at, ReceivedAt: at, Failed: 1, Doc: []byte(`{}`)}, fs, 3); err != nil {
				t.Fatal(err)
			}
		}
		if err := addReport(t, s, "other", "m1", "p00", at, 3, "R-X"); err != nil {
			t.Fatal(err)
		}
		rs, err := s.AuditReports(ctx, "m0", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		kept := map[string]bool{}
		for _, r := range rs {
			kept[r.Profile] = true
		}
		if len(kept) != MaxAuditProfiles || !kept[fmt.Sprintf("p%02d", n-1)] {
			t.Errorf("profiles kept of m0: %d %v, want %d with the last uploaded", len(kept), kept, MaxAuditProfiles)
		}
		fs, err := s.LatestAuditFindings(ctx, AuditFindingFilter{MachineID: "m0"})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if !kept[f.Profile] {
				t.Errorf("finding %s of dropped profile %s kept", f.RuleID, f.Profile)
			}
		}
		if len(fs) != MaxAuditProfiles {
			t.Errorf("%d findings of m0, want %d", len(fs), MaxAuditProfiles)
		}
		if rs, _ := s.AuditReports(ctx, "m1", "", 0); len(rs) != 1 {
			t.Errorf("another machine's reports: %+v", rs)
		}
	})
}
