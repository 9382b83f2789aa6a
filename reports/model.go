// Package reports holds the audit report model and one Writer per output
// format (table, JSON, and the formats that register themselves), plus the
// parsing of "-o FORMAT[=FILE]" output specifications.
package reports

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	"github.com/arcagent/arcagent/errcode"
)

// SchemaVersion is the version of the JSON report schema. It changes only
// when a field is removed or changes meaning; new optional fields keep it.
const SchemaVersion = 1

// Status of one rule result.
type Status string

// Result statuses.
const (
	StatusPass          Status = "pass"
	StatusFail          Status = "fail"
	StatusNotApplicable Status = "not_applicable"
	StatusError         Status = "error"
	StatusWaived        Status = "waived"
)

// Statuses lists every status in display order.
var Statuses = []Status{StatusFail, StatusError, StatusWaived, StatusNotApplicable, StatusPass}

// Severity of a rule.
type Severity string

// Severities, most severe first.
const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
	SeverityInfo     Severity = "info"
)

// FailOnNever as a report's FailOn turns the gate off (`--fail-on never`):
// a report-only run, whose exit status is 0 whatever it found.
const FailOnNever Severity = "never"

// Severities lists every severity, most severe first.
var Severities = []Severity{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityInfo}

// Rank orders severities: critical 4 … info 0; unknown -1.
func (s Severity) Rank() int {
	switch s {
	case SeverityCritical:
		return 4
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 1
	case SeverityInfo:
		return 0
	}
	return -1
}

// ParseSeverity returns the severity named s, or false.
func ParseSeverity(s string) (Severity, bool) {
	sev := Severity(s)
	return sev, sev.Rank() >= 0
}

// Baseline states of a finding compared with a previous report.
const (
	BaselineNew       = "new"
	BaselineUnchanged = "unchanged"
	BaselineFixed     = "fixed"
)

// Report is one audit run: what was checked, how, and what was found.
type Report struct {
	SchemaVersion   int              `json:"schemaVersion"`
	Tool            Tool             `json:"tool"`
	RunID           string           `json:"runId"`
	StartedAt       time.Time        `json:"startedAt"`
	DurationMs      int64            `json:"durationMs"`
	Target          Target           `json:"target"`
	Profiles        []string         `json:"profiles"`
	FailOn          Severity         `json:"failOn"`
	Summary         Summary          `json:"summary"`
	Rules           []Rule           `json:"rules"`
	Results         []Result         `json:"results"`
	Waivers         []AppliedWaiver  `json:"waivers"`
	Baseline        *BaselineInfo    `json:"baseline,omitempty"`
	CollectorErrors []CollectorError `json:"collectorErrors"`
}

// Tool identifies the program that wrote the report.
type Tool struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	InformationURI string `json:"informationUri"`
}

// Target kinds.
const (
	TargetHost    = "host"    // the live machine
	TargetRoot    = "root"    // a root prefix: an image or fixture tree
	TargetPlanned = "planned" // a planned localconfig.json before onboarding
)

// Target says what was audited.
type Target struct {
	Kind      string `json:"kind"`
	Host      string `json:"host"`
	MachineID string `json:"machineId,omitempty"`
	OS        string `json:"os,omitempty"`
	Root      string `json:"root,omitempty"`
	Planned   string `json:"plannedConfig,omitempty"`
	// Note explains how to read the result, e.g. that a default install was
	// evaluated because no agent is installed.
	Note string `json:"note,omitempty"`
}

// Summary counts results by status and failing results by severity.
type Summary struct {
	Total      int              `json:"total"`
	ByStatus   map[Status]int   `json:"byStatus"`
	BySeverity map[Severity]int `json:"failedBySeverity"`
	// Gate is true when a failing result is at or above FailOn.
	Gate bool `json:"gateFailed"`
}

// Rule is the metadata of one evaluated rule.
type Rule struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Severity    Severity `json:"severity"`
	Profiles    []string `json:"profiles"`
	Rationale   string   `json:"rationale"`
	Remediation string   `json:"remediation"`
	References  []string `json:"references,omitempty"`
	Source      string   `json:"source,omitempty"` // built-in pack or rule file
}

// Location is where a finding points on the host.
type Location struct {
	// Path is the production path without the leading slash, stable across
	// hosts and root prefixes (e.g. "var/opt/azcmagent/localconfig.json").
	Path string `json:"path"`
	// Line is the 1-based line of the setting in Path, 1 when unknown.
	Line int `json:"line"`
}

// Result is one rule's verdict on one resource.
type Result struct {
	RuleID      string         `json:"ruleId"`
	Severity    Severity       `json:"severity"`
	Status      Status         `json:"status"`
	Message     string         `json:"message"`
	Resource    string         `json:"resource,omitempty"`
	Location    Location       `json:"location"`
	Evidence    map[string]any `json:"evidence,omitempty"`
	Reason      string         `json:"reason,omitempty"` // for not_applicable and error
	Fingerprint string         `json:"fingerprint"`
	Waiver      *WaiverRef     `json:"waiver,omitempty"`
	Baseline    string         `json:"baselineState,omitempty"`
}

// WaiverRef is the waiver that waived a result.
type WaiverRef struct {
	Justification string    `json:"justification"`
	Expires       time.Time `json:"expires"`
	Source        string    `json:"source,omitempty"`
}

// AppliedWaiver is one waiver from the waiver file and what it did.
type AppliedWaiver struct {
	RuleID        string    `json:"ruleId"`
	Host          string    `json:"host,omitempty"`
	Resource      string    `json:"resource,omitempty"`
	Justification string    `json:"justification"`
	Expires       time.Time `json:"expires"`
	Expired       bool      `json:"expired"`
	Matched       int       `json:"matched"`
}

// BaselineInfo compares this run with a previous report.
type BaselineInfo struct {
	Source    string         `json:"source"`
	New       int            `json:"new"`
	Unchanged int            `json:"unchanged"`
	Fixed     []FixedFinding `json:"fixed"`
}

// FixedFinding is a failure in the baseline that no longer fails.
type FixedFinding struct {
	RuleID      string `json:"ruleId"`
	Resource    string `json:"resource,omitempty"`
	Fingerprint string `json:"fingerprint"`
	Message     string `json:"message"`
}

// CollectorError records something a collector could not read.
type CollectorError struct {
	Collector string `json:"collector"`
	Path      string `json:"path,omitempty"`
	Error     string `json:"error"`
}

// Fingerprint is the stable identity of a finding: rule id, host and
// resource key. It does not change between runs of the same host.
func Fingerprint(ruleID, host, resource string) string {
	sum := sha256.Sum256([]byte(ruleID + "\x00" + host + "\x00" + resource))
	return hex.EncodeToString(sum[:16])
}

// RuleByID returns the metadata of a rule in the report.
func (r *Report) RuleByID(id string) (Rule, int, bool) {
	for i, ru := range r.Rules {
		if ru.ID == id {
			return ru, i, true
		}
	}
	return Rule{}, -1, false
}

// Summarize recomputes the summary from the results.
func (r *Report) Summarize() {
	s := Summary{ByStatus: map[Status]int{}, BySeverity: map[Severity]int{}}
	for _, st := range Statuses {
		s.ByStatus[st] = 0
	}
	for _, sev := range Severities {
		s.BySeverity[sev] = 0
	}
	for _, res := range r.Results {
		s.Total++
		s.ByStatus[res.Status]++
		if res.Status == StatusFail {
			s.BySeverity[res.Severity]++
			if r.FailOn != FailOnNever && res.Severity.Rank() >= r.FailOn.Rank() {
				s.Gate = true
			}
		}
	}
	r.Summary = s
}

// SortResults orders results: failures first by severity, then by rule id
// and resource, so every writer presents them the same way.
func (r *Report) SortResults() {
	order := map[Status]int{}
	for i, s := range Statuses {
		order[s] = i
	}
	slices.SortStableFunc(r.Results, func(a, b Result) int {
		return cmp.Or(
			cmp.Compare(order[a.Status], order[b.Status]),
			cmp.Compare(b.Severity.Rank(), a.Severity.Rank()), // most severe first
			cmp.Compare(a.RuleID, b.RuleID),
			cmp.Compare(a.Resource, b.Resource),
		)
	})
}

// normalize replaces nil lists with empty ones so that JSON has [] not null.
func (r *Report) normalize() {
	if r.Profiles == nil {
		r.Profiles = []string{}
	}
	if r.Rules == nil {
		r.Rules = []Rule{}
	}
	if r.Waivers == nil {
		r.Waivers = []AppliedWaiver{}
	}
	if r.CollectorErrors == nil {
		r.CollectorErrors = []CollectorError{}
	}
	if r.Baseline != nil && r.Baseline.Fixed == nil {
		b := *r.Baseline
		b.Fixed = []FixedFinding{}
		r.Baseline = &b
	}
	if r.Summary.ByStatus == nil {
		r.Summary.ByStatus = map[Status]int{}
	}
	if r.Summary.BySeverity == nil {
		r.Summary.BySeverity = map[Severity]int{}
	}
	for i := range r.Rules {
		if r.Rules[i].Profiles == nil {
			// Copy before changing: r may share its rules with the caller.
			rules := append([]Rule(nil), r.Rules...)
			for j := range rules {
				if rules[j].Profiles == nil {
					rules[j].Profiles = []string{}
				}
			}
			r.Rules = rules
			break
		}
	}
}

// ExitCode is the gate's verdict on r (README, "Exit codes"): 3 when a rule at or
// above r.FailOn could not be evaluated (the audit is incomplete: it wins
// over findings, so that an audit that could not check a rule never passes
// a gate that accepts 1), 1 when a failure is at or above r.FailOn, 0
// otherwise, and always 0 for FailOnNever. Call Summarize first.
// Gate verdicts, as every format words the gate (see Verdict).
const (
	VerdictPassed     = "passed"
	VerdictFailed     = "failed"
	VerdictIncomplete = "incomplete"
	VerdictOff        = "off"
)

// Verdict is the gate's verdict as ExitCode decides it: off with
// --fail-on never, incomplete when a rule at or above --fail-on could not
// be evaluated (exit 3), failed on findings (exit 1), else passed. Every
// format shows this one verdict.
func (r *Report) Verdict() string {
	if r.FailOn == FailOnNever {
		return VerdictOff
	}
	switch r.ExitCode() {
	case errcode.ExitFailed:
		return VerdictIncomplete
	case errcode.ExitFindings:
		return VerdictFailed
	}
	return VerdictPassed
}

func (r *Report) ExitCode() int {
	if r.FailOn == FailOnNever {
		return errcode.ExitOK
	}
	for _, res := range r.Results {
		if res.Status == StatusError && res.Severity.Rank() >= r.FailOn.Rank() {
			return errcode.ExitFailed
		}
	}
	if r.Summary.Gate {
		return errcode.ExitFindings
	}
	return errcode.ExitOK
}
