package store

import "time"

// The audit types of the "Uploaded audits" contract (issue 19). This file
// holds the types only, so that the dashboard builds against them; it is
// deleted at merge, where store/audits.go brings the same types and the
// methods.

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
type AuditFindingFilter struct {
	SubscriptionID, ResourceGroup string // scope (empty: all)
	MachineID                     string
	RuleID                        string // exact, case-insensitive
	Severity                      string // minimum severity (empty: all)
	Profile                       string
}

// RuleCount is how many machines fail a rule.
type RuleCount struct {
	RuleID, Title, Severity string
	Machines                int
}
