package store

import (
	"context"
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
