package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// seedAudits gives each of n machines one report with perMachine failing
// rules (of 200 rule ids), in one transaction.
func seedAudits(b *testing.B, s *SQLite, n, perMachine int) {
	b.Helper()
	ctx := context.Background()
	sevs := []string{"critical", "high", "medium", "low", "info"}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	at := time.UnixMilli(1_700_000_000_000)
	for i := range n {
		m := fmt.Sprintf("m%d", i)
		rid := fmt.Sprintf("r%d", i)
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_reports (id, machine_id, profile, created_at, received_at, failed, doc) VALUES (?, ?, 'all', ?, ?, ?, '{}')`, rid, m, ms(at), ms(at), perMachine); err != nil {
			b.Fatal(err)
		}
		for j := range perMachine {
			rule := fmt.Sprintf("ARC-B-%03d", (i+j*7)%200)
			sev := sevs[(i+j)%len(sevs)]
			if _, err := tx.ExecContext(ctx, `INSERT INTO audit_findings (machine_id, profile, rule_key, rule_id, report_id, severity, sev_rank, title, message, remediation, reported_at)
				VALUES (?, 'all', ?, ?, ?, ?, ?, 'title', 'message of the finding on this machine', 'fix it', ?)`, m, stringsLower(rule), rule, rid, sev, severityRank(sev), ms(at)); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

func stringsLower(s string) string {
	out := []byte(s)
	for i, c := range out {
		if 'A' <= c && c <= 'Z' {
			out[i] = c + 32
		}
	}
	return string(out)
}

// BenchmarkAudits: 10,000 machines (100 resource groups), 100,000 stored
// findings (10 per machine).
//
//	go test ./controlplane/store -run '^$' -bench Audits -benchmem
func BenchmarkAudits(b *testing.B) {
	p := b.TempDir() + "/db.sqlite"
	s, err := OpenSQLite(context.Background(), p)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	seedMachines(b, s, 10000, 100)
	seedAudits(b, s, 10000, 10)
	ctx := context.Background()
	b.Run("AddAuditReport", func(b *testing.B) {
		fs := make([]AuditFinding, 10)
		for j := range fs {
			fs[j] = AuditFinding{RuleID: fmt.Sprintf("ARC-B-%03d", j), Severity: "high", Title: "t", Message: "m", Remediation: "r"}
		}
		doc := make([]byte, 64<<10)
		for i := range doc {
			doc[i] = 'x'
		}
		at := time.UnixMilli(1_800_000_000_000)
		i := 0
		for b.Loop() {
			m := fmt.Sprintf("m%d", i%10000)
			at = at.Add(time.Millisecond)
			if err := s.AddAuditReport(ctx, AuditReport{ID: fmt.Sprintf("b%d", i), MachineID: m, Profile: "all", CreatedAt: at, ReceivedAt: at, Failed: len(fs), Doc: doc}, fs, 20); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	for _, bc := range []struct {
		name string
		f    AuditFindingFilter
	}{
		{"LatestAuditFindings/rule", AuditFindingFilter{RuleID: "arc-b-042"}},
		{"LatestAuditFindings/rule+group", AuditFindingFilter{RuleID: "arc-b-042", SubscriptionID: "s1", ResourceGroup: "rg7"}},
		{"LatestAuditFindings/critical", AuditFindingFilter{Severity: "critical"}},
		{"LatestAuditFindings/machine", AuditFindingFilter{MachineID: "m4242"}},
		{"LatestAuditFindings/all", AuditFindingFilter{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				fs, err := s.LatestAuditFindings(ctx, bc.f)
				if err != nil {
					b.Fatal(err)
				}
				n = len(fs)
			}
			b.ReportMetric(float64(n), "rows")
		})
	}
	for _, bc := range []struct {
		name string
		f    AuditFindingFilter
	}{
		{"TopFailingRules/all", AuditFindingFilter{}},
		{"TopFailingRules/group", AuditFindingFilter{SubscriptionID: "s1", ResourceGroup: "rg7"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.TopFailingRules(ctx, bc.f, 10); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
