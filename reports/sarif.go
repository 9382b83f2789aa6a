package reports

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"
)

func init() { Register("sarif", func(Options) Writer { return SARIFWriter{} }) }

// SARIF constants.
const (
	sarifVersion = "2.1.0"
	sarifSchema  = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

	// MaxSARIFResults is the most results GitHub code scanning accepts in
	// one run. Above it the SARIF writer keeps the most severe findings
	// and says in a notification how many it left out.
	MaxSARIFResults = 25000

	// DefaultLocationPath is the artifact a finding points at when its
	// rule names no file: the agent's state directory.
	DefaultLocationPath = "var/opt/azcmagent"

	defaultInformationURI = "https://github.com/arcagent/arcagent"
)

// SecuritySeverity is the GitHub code scanning "security-severity" score
// of a rule severity. GitHub shows scores above 9.0 as critical, 7.0–8.9
// as high, 4.0–6.9 as medium and 0.1–3.9 as low; info rules get 1.0 so
// that they appear as low rather than vanish from the security view.
func SecuritySeverity(s Severity) string {
	switch s {
	case SeverityCritical:
		return "9.5"
	case SeverityHigh:
		return "8.0"
	case SeverityMedium:
		return "5.5"
	case SeverityLow:
		return "3.0"
	}
	return "1.0"
}

// sarifLevel maps a severity to a SARIF level.
func sarifLevel(s Severity) string {
	switch s {
	case SeverityCritical, SeverityHigh:
		return "error"
	case SeverityMedium:
		return "warning"
	}
	return "note"
}

// SARIFWriter writes SARIF 2.1.0 for GitHub code scanning and other SARIF
// consumers: one run for the audited target, the rule metadata of every
// rule that produced a result, one SARIF result per failed or waived
// finding (waived ones carry a suppression), and tool execution
// notifications for collector errors, rules that could not be evaluated
// and results left out above the per-run limit. Results are encoded one at
// a time, so memory stays flat however many there are.
type SARIFWriter struct {
	// MaxResults caps the results of the run; 0 means MaxSARIFResults.
	MaxResults int
}

type sarifMessage struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifRule struct {
	ID                   string             `json:"id"`
	Name                 string             `json:"name,omitempty"`
	ShortDescription     sarifMessage       `json:"shortDescription"`
	FullDescription      sarifMessage       `json:"fullDescription"`
	HelpURI              string             `json:"helpUri,omitempty"`
	Help                 sarifMessage       `json:"help"`
	DefaultConfiguration sarifConfiguration `json:"defaultConfiguration"`
	Properties           sarifRuleProps     `json:"properties"`
}

type sarifConfiguration struct {
	Level string `json:"level"`
}

type sarifRuleProps struct {
	Tags             []string `json:"tags"`
	SecuritySeverity string   `json:"security-severity"`
	Precision        string   `json:"precision"`
	Severity         Severity `json:"severity"`
	Profiles         []string `json:"profiles,omitempty"`
	Source           string   `json:"source,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	Justification string `json:"justification,omitempty"`
	Properties    *struct {
		Expires time.Time `json:"expires"`
		Source  string    `json:"source,omitempty"`
	} `json:"properties,omitempty"`
}

type sarifResult struct {
	RuleID              string             `json:"ruleId"`
	RuleIndex           int                `json:"ruleIndex"`
	Kind                string             `json:"kind"`
	Level               string             `json:"level"`
	Message             sarifMessage       `json:"message"`
	Locations           []sarifLocation    `json:"locations"`
	PartialFingerprints sarifFingerprints  `json:"partialFingerprints"`
	BaselineState       string             `json:"baselineState,omitempty"`
	Suppressions        []sarifSuppression `json:"suppressions,omitempty"`
	Properties          sarifResultProps   `json:"properties"`
}

// sarifFingerprints are a result's partial fingerprints, in the order a
// map would encode them (a struct costs no map per result).
type sarifFingerprints struct {
	Arcagent        string `json:"arcagentFingerprint/v1"`
	PrimaryLineHash string `json:"primaryLocationLineHash"`
}

type sarifResultProps struct {
	Severity    Severity       `json:"severity"`
	Status      Status         `json:"status"`
	Resource    string         `json:"resource,omitempty"`
	Fingerprint string         `json:"fingerprint"`
	Evidence    map[string]any `json:"evidence,omitempty"`
}

type sarifDescriptorRef struct {
	ID    string `json:"id"`
	Index *int   `json:"index,omitempty"`
}

type sarifNotification struct {
	Level          string              `json:"level"`
	Message        sarifMessage        `json:"message"`
	Descriptor     *sarifDescriptorRef `json:"descriptor,omitempty"`
	AssociatedRule *sarifDescriptorRef `json:"associatedRule,omitempty"`
	Locations      []sarifLocation     `json:"locations,omitempty"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	StartTimeUTC               string              `json:"startTimeUtc,omitempty"`
	EndTimeUTC                 string              `json:"endTimeUtc,omitempty"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications"`
}

type sarifDriver struct {
	Name            string      `json:"name"`
	Version         string      `json:"version,omitempty"`
	SemanticVersion string      `json:"semanticVersion,omitempty"`
	InformationURI  string      `json:"informationUri"`
	Rules           []sarifRule `json:"rules"`
}

type sarifRunHead struct {
	Tool struct {
		Driver sarifDriver `json:"driver"`
	} `json:"tool"`
	AutomationDetails struct {
		ID string `json:"id"`
	} `json:"automationDetails"`
	// Invocations and Properties come before the results, or after them
	// when they are known only at the end (a SARIFStream).
	Invocations []sarifInvocation `json:"invocations,omitzero"`
	Properties  any               `json:"properties,omitzero"`
	Results     []sarifResult     `json:"results"` // always nil: streamed
}

// sarifRunTail is the part of a run written after its streamed results.
type sarifRunTail struct {
	Invocations []sarifInvocation `json:"invocations"`
	Properties  any               `json:"properties,omitzero"`
}

type sarifRunProps struct {
	RunID    string   `json:"runId,omitempty"`
	Target   Target   `json:"target"`
	Profiles []string `json:"profiles"`
	FailOn   Severity `json:"failOn,omitempty"`
	Summary  Summary  `json:"summary"`
}

// AutomationID is the SARIF automationDetails.id of an audit of host:
// GitHub keeps one set of alerts per id, so each host's alerts open and
// close on their own.
func AutomationID(host string) string {
	host = strings.TrimSpace(strings.ReplaceAll(host, "/", "_"))
	if host == "" {
		host = "unknown-host"
	}
	return "arcagent-audit/" + host + "/"
}

// LocationPath returns the stable relative path a result points at: the
// production path without its leading slash, or DefaultLocationPath when
// the result names none (or names one outside the root).
func LocationPath(l Location) string {
	p := strings.TrimSpace(l.Path)
	if p == "" {
		return DefaultLocationPath
	}
	p = path.Clean("/" + p)[1:]
	if p == "" {
		return DefaultLocationPath
	}
	return p
}

// LocationLine returns the 1-based line of a location, 1 when unknown.
func LocationLine(l Location) int {
	if l.Line < 1 {
		return 1
	}
	return l.Line
}

// resultFingerprint returns the finding's fingerprint, computing it when
// the report lacks one.
func resultFingerprint(r *Report, res *Result) string {
	if res.Fingerprint != "" {
		return res.Fingerprint
	}
	return Fingerprint(res.RuleID, r.Target.Host, res.Resource)
}

// inSARIF reports whether a result becomes a SARIF result: failures, and
// waived failures as suppressed results.
func inSARIF(s Status) bool { return s == StatusFail || s == StatusWaived }

// sarifPriority orders results for the per-run limit: severity first,
// failures before waived results of the same severity.
func sarifPriority(res *Result) int {
	p := (res.Severity.Rank() + 1) * 2
	if res.Status == StatusFail {
		p++
	}
	return p
}

// Write renders r as SARIF 2.1.0.
func (s SARIFWriter) Write(w io.Writer, r *Report) error {
	limit := s.MaxResults
	if limit <= 0 {
		limit = MaxSARIFResults
	}
	// First pass: which rules produced results, how many results of each
	// priority there are, and which rules could not be evaluated.
	used := map[string]bool{}
	var byPriority [12]int
	total := 0
	var errored []int
	for i := range r.Results {
		res := &r.Results[i]
		used[res.RuleID] = true
		if inSARIF(res.Status) {
			byPriority[sarifPriority(res)]++
			total++
		}
		if res.Status == StatusError {
			errored = append(errored, i)
		}
	}
	// Keep whole priority classes from the top until the limit, and the
	// first results of the class that straddles it.
	keepAbove, partialClass, partialLeft := -1, -1, 0
	if total > limit {
		left := limit
		for p := len(byPriority) - 1; p >= 0; p-- {
			if byPriority[p] <= left {
				left -= byPriority[p]
				continue
			}
			partialClass, partialLeft, keepAbove = p, left, p
			break
		}
	}

	var head sarifRunHead
	head.Tool.Driver = sarifDriver{
		Name:            nonEmpty(r.Tool.Name, "arcagent"),
		Version:         r.Tool.Version,
		SemanticVersion: semanticVersion(r.Tool.Version),
		InformationURI:  nonEmpty(r.Tool.InformationURI, defaultInformationURI),
		Rules:           []sarifRule{},
	}
	index := map[string]int{}
	for _, ru := range r.Rules {
		if !used[ru.ID] {
			continue
		}
		if _, dup := index[ru.ID]; dup {
			continue
		}
		index[ru.ID] = len(head.Tool.Driver.Rules)
		head.Tool.Driver.Rules = append(head.Tool.Driver.Rules, sarifRuleOf(ru))
	}
	// A result whose rule metadata is missing still needs a rule to point
	// at: describe it from the result.
	for i := range r.Results {
		res := &r.Results[i]
		if _, ok := index[res.RuleID]; ok {
			continue
		}
		index[res.RuleID] = len(head.Tool.Driver.Rules)
		head.Tool.Driver.Rules = append(head.Tool.Driver.Rules, sarifRuleOf(Rule{ID: res.RuleID, Title: res.RuleID, Severity: res.Severity}))
	}
	head.AutomationDetails.ID = AutomationID(r.Target.Host)

	inv := sarifInvocation{ExecutionSuccessful: true, ToolExecutionNotifications: []sarifNotification{}}
	if !r.StartedAt.IsZero() {
		inv.StartTimeUTC = r.StartedAt.UTC().Format(time.RFC3339Nano)
		inv.EndTimeUTC = r.StartedAt.Add(time.Duration(r.DurationMs) * time.Millisecond).UTC().Format(time.RFC3339Nano)
	}
	for _, ce := range r.CollectorErrors {
		n := sarifNotification{
			Level:      "warning",
			Message:    sarifMessage{Text: collectorErrorText(ce)},
			Descriptor: &sarifDescriptorRef{ID: "arcagent/collector-error"},
		}
		if ce.Path != "" {
			n.Locations = []sarifLocation{{PhysicalLocation: sarifPhysical{ArtifactLocation: sarifArtifact{URI: LocationPath(Location{Path: ce.Path})}}}}
		}
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, n)
	}
	for _, i := range errored {
		res := &r.Results[i]
		idx := index[res.RuleID]
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{
			Level:          "error",
			Message:        sarifMessage{Text: ruleErrorText(res)},
			Descriptor:     &sarifDescriptorRef{ID: "arcagent/rule-error"},
			AssociatedRule: &sarifDescriptorRef{ID: res.RuleID, Index: &idx},
			Locations:      []sarifLocation{locationOf(res.Location)},
		})
	}
	if total > limit {
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{
			Level: "warning",
			Message: sarifMessage{Text: fmt.Sprintf("%d of %d results were left out: GitHub code scanning accepts at most %d results per run, so the most severe were kept. The JSON report has every result.",
				total-limit, total, limit)},
			Descriptor: &sarifDescriptorRef{ID: "arcagent/results-truncated"},
		})
	}
	head.Invocations = []sarifInvocation{inv}
	props := sarifRunProps{RunID: r.RunID, Target: r.Target, Profiles: r.Profiles, FailOn: r.FailOn, Summary: r.Summary}
	if props.Profiles == nil {
		props.Profiles = []string{}
	}
	head.Properties = props

	st, err := startSARIF(w, &head)
	if err != nil {
		return err
	}
	for i := range r.Results {
		res := &r.Results[i]
		if !inSARIF(res.Status) {
			continue
		}
		if total > limit {
			p := sarifPriority(res)
			if p < keepAbove {
				continue
			}
			if p == partialClass {
				if partialLeft == 0 {
					continue
				}
				partialLeft--
			}
		}
		sr := sarifResultOf(r.Target.Host, res, index[res.RuleID])
		if err := st.result(&sr); err != nil {
			return err
		}
	}
	return st.close(nil)
}

// sarifStream writes a SARIF log of one run, its results encoded one at a
// time so that memory stays flat however many there are.
type sarifStream struct {
	bw      *bufio.Writer
	buf     bytes.Buffer
	enc     *json.Encoder
	rest    []byte // the end of the run after its results
	written int
}

// The run head is encoded whole with its results null, and cut there.
const sarifResultsMarker = ",\n      \"results\": null"

func startSARIF(w io.Writer, head *sarifRunHead) (*sarifStream, error) {
	var hbuf bytes.Buffer
	henc := json.NewEncoder(&hbuf)
	henc.SetEscapeHTML(false)
	henc.SetIndent("    ", "  ")
	if err := henc.Encode(head); err != nil {
		return nil, fmt.Errorf("encode SARIF run: %w", err)
	}
	hb := bytes.TrimSuffix(hbuf.Bytes(), []byte("\n"))
	cut := bytes.LastIndex(hb, []byte(sarifResultsMarker))
	if cut < 0 {
		return nil, fmt.Errorf("encode SARIF run: results field not found")
	}
	s := &sarifStream{bw: bufio.NewWriterSize(w, 64<<10), rest: hb[cut+len(sarifResultsMarker):]}
	fmt.Fprintf(s.bw, "{\n  \"$schema\": %q,\n  \"version\": %q,\n  \"runs\": [\n    ", sarifSchema, sarifVersion)
	s.bw.Write(hb[:cut])
	s.bw.WriteString(",\n      \"results\": [")
	s.enc = json.NewEncoder(&s.buf)
	s.enc.SetEscapeHTML(false)
	s.enc.SetIndent("        ", "  ")
	return s, nil
}

func (s *sarifStream) result(sr *sarifResult) error {
	s.buf.Reset()
	if err := s.enc.Encode(sr); err != nil {
		return fmt.Errorf("encode SARIF result for %s: %w", sr.RuleID, err)
	}
	if s.written > 0 {
		s.bw.WriteByte(',')
	}
	s.bw.WriteString("\n        ")
	s.bw.Write(bytes.TrimSuffix(s.buf.Bytes(), []byte("\n")))
	s.written++
	return nil
}

// close ends the results, writes tail (the fields known only now) when
// given, and ends the log.
func (s *sarifStream) close(tail *sarifRunTail) error {
	if s.written > 0 {
		s.bw.WriteString("\n      ")
	}
	s.bw.WriteString("]")
	if tail != nil {
		var tbuf bytes.Buffer
		tenc := json.NewEncoder(&tbuf)
		tenc.SetEscapeHTML(false)
		tenc.SetIndent("    ", "  ")
		if err := tenc.Encode(tail); err != nil {
			return fmt.Errorf("encode SARIF run: %w", err)
		}
		tb := bytes.TrimSuffix(tbuf.Bytes(), []byte("\n"))
		s.bw.WriteByte(',')
		s.bw.Write(tb[1:]) // the members and the run's closing brace
	} else {
		s.bw.Write(s.rest)
	}
	s.bw.WriteString("\n  ]\n}\n")
	return s.bw.Flush()
}

// SARIFRun describes a SARIF run that another command than the audit
// streams (fleet currency): the tool, the rules its results point at (by
// id), and where GitHub keeps its alerts.
type SARIFRun struct {
	Tool         Tool
	Rules        []Rule
	AutomationID string
	// Start is when the run began (zero: when the stream opens).
	Start time.Time
	// MaxResults caps the results; 0 means MaxSARIFResults. Past it the
	// first results are kept and the rest counted in a notification.
	MaxResults int
}

// SARIFNote is a tool execution notification of a streamed run.
type SARIFNote struct {
	Level string // error, warning or note
	Text  string
	// Descriptor identifies the kind of notification, e.g.
	// "arcagent/untracked-products".
	Descriptor string
}

// SARIFStream writes one SARIF 2.1.0 run result by result, with the same
// model, levels, fingerprints and limits as the audit's SARIF report;
// what is known only at the end (notifications, run properties) is
// written by Close.
type SARIFStream struct {
	s       *sarifStream
	run     SARIFRun
	index   map[string]int
	n       int
	omitted int
}

// NewSARIFStream starts the log of run on w.
func NewSARIFStream(w io.Writer, run SARIFRun) (*SARIFStream, error) {
	if run.MaxResults <= 0 {
		run.MaxResults = MaxSARIFResults
	}
	if run.Start.IsZero() {
		run.Start = time.Now()
	}
	var head sarifRunHead
	head.Tool.Driver = sarifDriver{
		Name:            nonEmpty(run.Tool.Name, "arcagent"),
		Version:         run.Tool.Version,
		SemanticVersion: semanticVersion(run.Tool.Version),
		InformationURI:  nonEmpty(run.Tool.InformationURI, defaultInformationURI),
		Rules:           []sarifRule{},
	}
	index := map[string]int{}
	for _, ru := range run.Rules {
		if _, dup := index[ru.ID]; !dup {
			index[ru.ID] = len(head.Tool.Driver.Rules)
			head.Tool.Driver.Rules = append(head.Tool.Driver.Rules, sarifRuleOf(ru))
		}
	}
	head.AutomationDetails.ID = run.AutomationID
	s, err := startSARIF(w, &head)
	if err != nil {
		return nil, err
	}
	return &SARIFStream{s: s, run: run, index: index}, nil
}

// Result writes one finding (a failure, or a waived one). Its rule must be
// one of the run's; host is what its fingerprint is computed from when it
// has none.
func (s *SARIFStream) Result(host string, res *Result) error {
	idx, ok := s.index[res.RuleID]
	if !ok {
		return fmt.Errorf("SARIF result for rule %s, which the run does not describe", res.RuleID)
	}
	if s.n >= s.run.MaxResults {
		s.omitted++
		return nil
	}
	s.n++
	sr := sarifResultOf(host, res, idx)
	return s.s.result(&sr)
}

// Close writes the notifications and the run's property bag, then ends
// the log.
func (s *SARIFStream) Close(notes []SARIFNote, properties any) error {
	inv := sarifInvocation{ExecutionSuccessful: true, ToolExecutionNotifications: []sarifNotification{},
		StartTimeUTC: s.run.Start.UTC().Format(time.RFC3339), EndTimeUTC: time.Now().UTC().Format(time.RFC3339)}
	if s.omitted > 0 {
		notes = append([]SARIFNote{{Level: "warning", Descriptor: "arcagent/results-truncated",
			Text: fmt.Sprintf("%d findings were left out: GitHub code scanning accepts at most %d results per run; see the JSON or CSV report", s.omitted, s.run.MaxResults)}}, notes...)
	}
	for _, n := range notes {
		sn := sarifNotification{Level: n.Level, Message: sarifMessage{Text: n.Text}}
		if n.Descriptor != "" {
			sn.Descriptor = &sarifDescriptorRef{ID: n.Descriptor}
		}
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sn)
	}
	return s.s.close(&sarifRunTail{Invocations: []sarifInvocation{inv}, Properties: properties})
}

var semverRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
})

// semanticVersion returns v without a leading "v" when it is a semantic
// version, and "" (so that the field is left out) when it is not, such as
// a development build's "test".
func semanticVersion(v string) string {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if !semverRE().MatchString(v) {
		return ""
	}
	return v
}

func nonEmpty(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

func collectorErrorText(ce CollectorError) string {
	msg := "The " + nonEmpty(ce.Collector, "unknown") + " collector could not read"
	if ce.Path != "" {
		msg += " /" + strings.TrimPrefix(ce.Path, "/")
	} else {
		msg += " its facts"
	}
	return msg + ": " + ce.Error + ". Rules that depend on it report error or not applicable instead of a verdict."
}

func ruleErrorText(res *Result) string {
	msg := res.RuleID + " could not be evaluated"
	if res.Resource != "" {
		msg += " for " + res.Resource
	}
	why := nonEmpty(res.Reason, res.Message)
	if why != "" {
		msg += ": " + why
	}
	return msg
}

func locationOf(l Location) sarifLocation {
	return sarifLocation{PhysicalLocation: sarifPhysical{
		ArtifactLocation: sarifArtifact{URI: LocationPath(l)},
		Region:           &sarifRegion{StartLine: LocationLine(l)},
	}}
}

func sarifRuleOf(ru Rule) sarifRule {
	title := nonEmpty(ru.Title, ru.ID)
	tags := []string{"security"}
	seen := map[string]bool{"security": true}
	for _, p := range ru.Profiles {
		// GitHub reads at most 20 tags per rule.
		if p != "" && !seen[p] && len(tags) < 20 {
			seen[p] = true
			tags = append(tags, p)
		}
	}
	out := sarifRule{
		ID:                   ru.ID,
		ShortDescription:     sarifMessage{Text: title},
		FullDescription:      sarifMessage{Text: nonEmpty(strings.TrimSpace(ru.Rationale), title)},
		Help:                 sarifMessage{Text: ruleHelpText(ru), Markdown: ruleHelpMarkdown(ru)},
		DefaultConfiguration: sarifConfiguration{Level: sarifLevel(ru.Severity)},
		Properties: sarifRuleProps{
			Tags:             tags,
			SecuritySeverity: SecuritySeverity(ru.Severity),
			Precision:        "very-high",
			Severity:         ru.Severity,
			Profiles:         ru.Profiles,
			Source:           ru.Source,
		},
	}
	for _, ref := range ru.References {
		if strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://") {
			out.HelpURI = ref
			break
		}
	}
	return out
}

func ruleHelpText(ru Rule) string {
	var b strings.Builder
	b.WriteString(nonEmpty(ru.Title, ru.ID))
	b.WriteString("\n")
	if r := strings.TrimSpace(ru.Rationale); r != "" {
		b.WriteString("\nWhy: " + r + "\n")
	}
	if fix := strings.TrimSpace(ru.Remediation); fix != "" {
		b.WriteString("\nFix:\n")
		for _, l := range strings.Split(fix, "\n") {
			b.WriteString("  " + l + "\n")
		}
	}
	if len(ru.References) > 0 {
		b.WriteString("\nReferences:\n")
		for _, ref := range ru.References {
			b.WriteString("  " + ref + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func ruleHelpMarkdown(ru Rule) string {
	var b strings.Builder
	b.WriteString("**" + mdEscape(nonEmpty(ru.Title, ru.ID)) + "**\n")
	if r := strings.TrimSpace(ru.Rationale); r != "" {
		b.WriteString("\n### Why it matters\n\n" + mdEscape(r) + "\n")
	}
	if fix := strings.TrimSpace(ru.Remediation); fix != "" {
		b.WriteString("\n### How to fix\n\n" + mdCodeBlock("sh", fix))
	}
	if len(ru.References) > 0 {
		b.WriteString("\n### References\n\n")
		for _, ref := range ru.References {
			b.WriteString("- " + mdLink(ref) + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func sarifResultOf(host string, res *Result, ruleIndex int) sarifResult {
	fp := res.Fingerprint
	if fp == "" {
		fp = Fingerprint(res.RuleID, host, res.Resource)
	}
	msg := strings.TrimSpace(res.Message)
	if msg == "" {
		msg = res.RuleID + " failed"
		if res.Resource != "" {
			msg += " for " + res.Resource
		}
	}
	sr := sarifResult{
		RuleID:    res.RuleID,
		RuleIndex: ruleIndex,
		Kind:      "fail",
		Level:     sarifLevel(res.Severity),
		Message:   sarifMessage{Text: msg},
		Locations: []sarifLocation{locationOf(res.Location)},
		// GitHub reads primaryLocationLineHash as "hash:occurrence". The
		// fingerprint already names one finding on one host, so the
		// occurrence is always 1 and alerts follow the finding, not the line.
		PartialFingerprints: sarifFingerprints{PrimaryLineHash: fp + ":1", Arcagent: fp},
		Properties:          sarifResultProps{Severity: res.Severity, Status: res.Status, Resource: res.Resource, Fingerprint: fp, Evidence: res.Evidence},
	}
	switch res.Baseline {
	case BaselineNew:
		sr.BaselineState = "new"
	case BaselineUnchanged:
		sr.BaselineState = "unchanged"
	}
	if res.Status == StatusWaived {
		sup := sarifSuppression{Kind: "external", Status: "accepted", Justification: "waived"}
		if res.Waiver != nil {
			sup.Justification = nonEmpty(res.Waiver.Justification, "waived")
			sup.Properties = &struct {
				Expires time.Time `json:"expires"`
				Source  string    `json:"source,omitempty"`
			}{res.Waiver.Expires, res.Waiver.Source}
		}
		sr.Suppressions = []sarifSuppression{sup}
	}
	return sr
}
