package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AuditReport is one uploaded audit report.
type AuditReport struct {
	ID         string // server-assigned (UUID)
	MachineID  string
	Profile    string    // the audit profile the report says it ran ("default", "host", "all", …)
	CreatedAt  time.Time // when the agent produced it (the report's own time)
	ReceivedAt time.Time
	Failed     int    // number of failing findings
	Doc        []byte // the report JSON as uploaded (after validation)
}

// AuditFinding is one failing rule of the latest report of a machine and profile.
type AuditFinding struct {
	MachineID, ResourceID, MachineName, SubscriptionID, ResourceGroup string // joined from machines
	Profile                                                           string
	RuleID                                                            string
	Severity                                                          string // the report's severity words (critical, high, medium, low, info)
	Title                                                             string
	Message                                                           string // what the finding says about this machine
	Remediation                                                       string
	ReportedAt                                                        time.Time // CreatedAt of the report it came from
}

// AuditFindingFilter narrows LatestAuditFindings and TopFailingRules.
// Empty fields match everything.
type AuditFindingFilter struct {
	SubscriptionID, ResourceGroup string // scope (empty: all)
	MachineID                     string
	RuleID                        string // exact, case-insensitive
	Severity                      string // minimum severity (empty: all)
	Profile                       string
}

// RuleCount is how many machines fail one rule in their latest reports.
type RuleCount struct {
	RuleID, Title, Severity string
	Machines                int
}

// severityRank orders the report's severity words: critical 4 … info 0,
// unknown -1 (kept, listed last).
func severityRank(s string) int {
	switch strings.ToLower(s) {
	case "critical":
		return 4
	case "high":
		return 3
	case "medium":
		return 2
	case "low":
		return 1
	case "info":
		return 0
	}
	return -1
}

// MaxAuditProfiles bounds how many profiles of one machine AddAuditReport
// keeps reports of (each with its own bounded history): beyond it, those
// uploaded least recently are deleted with their findings.
const MaxAuditProfiles = 16

// AddAuditReport stores r as the latest report of (r.MachineID, r.Profile),
// replaces that pair's findings with findings, and keeps at most keep
// reports of the pair (oldest deleted) and of at most MaxAuditProfiles
// profiles of the machine, in one transaction. A report older
// than the pair's newest stored one joins the history without replacing
// the findings (an upload retried late). The machine must exist
// (ErrNotFound otherwise); keep < 1 is read as 1.
func (s *DB) AddAuditReport(ctx context.Context, r AuditReport, findings []AuditFinding, keep int) error {
	if keep < 1 {
		keep = 1
	}
	what := "audit report of machine " + r.MachineID
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store %s: %w", what, err)
	}
	defer tx.Rollback()
	// Only for an existing machine: one statement, no read first. The
	// machine row is locked (PostgreSQL) so that a delete running
	// meanwhile is waited for and this upload then refused, rather than
	// leaving reports of a deleted machine behind.
	res, err := tx.ExecContext(ctx, `INSERT INTO audit_reports (id, machine_id, profile, created_at, received_at, failed, doc)
		SELECT ?, id, ?, ?, ?, ?, ? FROM machines WHERE id = ?`+s.forUpdate(),
		r.ID, r.Profile, ms(r.CreatedAt), ms(r.ReceivedAt), r.Failed, string(r.Doc), r.MachineID)
	if err != nil && isUnique(err) {
		return fmt.Errorf("%s: report id %s: %w", what, r.ID, ErrConflict)
	}
	if err := mustAffect(res, err, "machine "+r.MachineID); err != nil {
		return err
	}
	// A newer report of the pair already stored: history only.
	const noNewer = `NOT EXISTS (SELECT 1 FROM audit_reports WHERE machine_id = ? AND profile = ? AND created_at > ?)`
	_, err = tx.ExecContext(ctx, `DELETE FROM audit_findings WHERE machine_id = ? AND profile = ? AND `+noNewer,
		r.MachineID, r.Profile, r.MachineID, r.Profile, ms(r.CreatedAt))
	if err != nil {
		return fmt.Errorf("store %s: %w", what, err)
	}
	if len(findings) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO audit_findings (machine_id, profile, rule_key, rule_id, report_id, severity, sev_rank, title, message, remediation, reported_at)
			SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE `+noNewer)
		if err != nil {
			return fmt.Errorf("store %s: %w", what, err)
		}
		defer st.Close()
		for _, f := range findings {
			if _, err := st.ExecContext(ctx, r.MachineID, r.Profile, strings.ToLower(f.RuleID), f.RuleID, r.ID, f.Severity, severityRank(f.Severity),
				f.Title, f.Message, f.Remediation, ms(r.CreatedAt),
				r.MachineID, r.Profile, ms(r.CreatedAt)); err != nil {
				if isUnique(err) {
					return fmt.Errorf("%s: rule %s listed twice: %w", what, f.RuleID, ErrConflict)
				}
				return fmt.Errorf("store %s: %w", what, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM audit_reports WHERE machine_id = ? AND profile = ? AND id NOT IN (
		SELECT id FROM audit_reports WHERE machine_id = ? AND profile = ? ORDER BY created_at DESC, received_at DESC, id DESC LIMIT ?)`,
		r.MachineID, r.Profile, r.MachineID, r.Profile, keep); err != nil {
		return fmt.Errorf("store %s: trim history: %w", what, err)
	}
	// A new profile in every upload must not grow a machine's storage
	// without bound: keep the MaxAuditProfiles profiles uploaded most
	// recently (this one first), and the findings of those only.
	if _, err := tx.ExecContext(ctx, `DELETE FROM audit_reports WHERE machine_id = ? AND profile NOT IN (
		SELECT profile FROM audit_reports WHERE machine_id = ? GROUP BY profile
		ORDER BY CASE WHEN profile = ? THEN 0 ELSE 1 END, MAX(received_at) DESC, MAX(created_at) DESC, profile LIMIT ?)`,
		r.MachineID, r.MachineID, r.Profile, MaxAuditProfiles); err != nil {
		return fmt.Errorf("store %s: trim profiles: %w", what, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM audit_findings WHERE machine_id = ? AND profile NOT IN (
		SELECT profile FROM audit_reports WHERE machine_id = ?)`, r.MachineID, r.MachineID); err != nil {
		return fmt.Errorf("store %s: trim profiles: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store %s: %w", what, err)
	}
	return nil
}

const arCols = `id, machine_id, profile, created_at, received_at, failed, doc`

func scanAuditReport(sc interface{ Scan(...any) error }, withDoc bool) (AuditReport, error) {
	var r AuditReport
	var c, rc int64
	var doc string
	err := sc.Scan(&r.ID, &r.MachineID, &r.Profile, &c, &rc, &r.Failed, &doc)
	r.CreatedAt, r.ReceivedAt = fromMS(c), fromMS(rc)
	if withDoc {
		r.Doc = []byte(doc)
	}
	return r, err
}

// AuditReports lists a machine's reports of one profile ("" = every
// profile), newest first, at most limit (0 = all). Doc is left empty:
// read one report with AuditReport.
func (s *DB) AuditReports(ctx context.Context, machineID, profile string, limit int) ([]AuditReport, error) {
	q := `SELECT id, machine_id, profile, created_at, received_at, failed, '' FROM audit_reports WHERE machine_id = ?`
	args := []any{machineID}
	if profile != "" {
		q += ` AND profile = ?`
		args = append(args, profile)
	}
	q += ` ORDER BY created_at DESC, received_at DESC, id DESC`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit reports of machine %s: %w", machineID, err)
	}
	defer rows.Close()
	var out []AuditReport
	for rows.Next() {
		r, err := scanAuditReport(rows, false)
		if err != nil {
			return nil, fmt.Errorf("list audit reports of machine %s: %w", machineID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// AuditReport returns one report by id, with its document.
func (s *DB) AuditReport(ctx context.Context, id string) (AuditReport, error) {
	r, err := scanAuditReport(s.r.QueryRowContext(ctx, `SELECT `+arCols+` FROM audit_reports WHERE id = ?`, id), true)
	if err != nil {
		return r, notFound(err, "audit report "+id)
	}
	return r, nil
}

// findingWhere builds the WHERE clause of the finding reads (f aliases
// audit_findings, m machines).
func findingWhere(f AuditFindingFilter) (string, []any) {
	q := ` WHERE 1 = 1`
	scope, args := scopeWhere(f.SubscriptionID, f.ResourceGroup)
	q += scope
	if f.MachineID != "" {
		q += ` AND f.machine_id = ?`
		args = append(args, f.MachineID)
	}
	if f.RuleID != "" {
		q += ` AND f.rule_key = ?`
		args = append(args, strings.ToLower(f.RuleID))
	}
	if f.Severity != "" {
		q += ` AND f.sev_rank >= ?`
		args = append(args, max(severityRank(f.Severity), 0))
	}
	if f.Profile != "" {
		q += ` AND f.profile = ?`
		args = append(args, f.Profile)
	}
	return q, args
}

// LatestAuditFindings lists the failing findings of every machine's latest
// report per profile, ordered by severity (critical first), rule id,
// machine name.
func (s *DB) LatestAuditFindings(ctx context.Context, f AuditFindingFilter) ([]AuditFinding, error) {
	where, args := findingWhere(f)
	rows, err := s.r.QueryContext(ctx, `SELECT f.machine_id, m.resource_id, m.name, m.subscription_id, m.resource_group, f.profile, f.rule_id, f.severity, f.title, f.message, f.remediation, f.reported_at
		FROM audit_findings f JOIN machines m ON m.id = f.machine_id`+where+`
		ORDER BY f.sev_rank DESC, f.rule_key, m.name_key, m.subscription_id, m.rg_key, f.profile`, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit findings: %w", err)
	}
	defer rows.Close()
	var out []AuditFinding
	for rows.Next() {
		var a AuditFinding
		var at int64
		if err := rows.Scan(&a.MachineID, &a.ResourceID, &a.MachineName, &a.SubscriptionID, &a.ResourceGroup, &a.Profile, &a.RuleID, &a.Severity, &a.Title, &a.Message, &a.Remediation, &at); err != nil {
			return nil, fmt.Errorf("list audit findings: %w", err)
		}
		a.ReportedAt = fromMS(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// TopFailingRules counts machines failing each rule in their latest
// reports, most first, at most limit (0 = all). A machine failing a rule in
// two profiles counts once; Title is that of one of its findings and
// Severity the highest.
func (s *DB) TopFailingRules(ctx context.Context, f AuditFindingFilter, limit int) ([]RuleCount, error) {
	where, args := findingWhere(f)
	from := ` FROM audit_findings f`
	if f.SubscriptionID != "" || f.ResourceGroup != "" {
		from += ` JOIN machines m ON m.id = f.machine_id` // only a scope needs the machines
	}
	// Counted on the covering index (rule_key, sev_rank, machine_id); the
	// titles of the rules kept are read after.
	q := `SELECT f.rule_key, COUNT(DISTINCT f.machine_id) AS n, MAX(f.sev_rank) AS r` + from + where + `
		GROUP BY f.rule_key ORDER BY n DESC, r DESC, f.rule_key`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("count failing rules: %w", err)
	}
	var out []RuleCount
	for rows.Next() {
		var key string
		var c RuleCount
		var rank int
		if err := rows.Scan(&key, &c.Machines, &rank); err != nil {
			rows.Close()
			return nil, fmt.Errorf("count failing rules: %w", err)
		}
		c.RuleID, c.Severity = key, severityWord(rank)
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count failing rules: %w", err)
	}
	// One row per rule kept, by the index: the title of any of its
	// findings inside the filter (each machine's report names the rule
	// with its own text; a machine outside the scope must not be quoted).
	for i := range out {
		tf := f
		tf.RuleID = out[i].RuleID
		twhere, targs := findingWhere(tf)
		if err := s.r.QueryRowContext(ctx, `SELECT f.rule_id, f.title`+from+twhere+` LIMIT 1`, targs...).Scan(&out[i].RuleID, &out[i].Title); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("read failing rules: %w", err)
		}
	}
	return out, nil
}

func severityWord(rank int) string {
	switch rank {
	case 4:
		return "critical"
	case 3:
		return "high"
	case 2:
		return "medium"
	case 1:
		return "low"
	case 0:
		return "info"
	}
	return ""
}

// deleteMachineAudits removes a machine's reports and findings inside the
// DeleteMachine transaction.
func deleteMachineAudits(ctx context.Context, tx *sql.Tx, id string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM audit_findings WHERE machine_id = ?`, id); err != nil {
		return fmt.Errorf("delete audit findings of machine %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM audit_reports WHERE machine_id = ?`, id); err != nil {
		return fmt.Errorf("delete audit reports of machine %s: %w", id, err)
	}
	return nil
}
