package reports

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/arcagent/arcagent/internal/safetext"
)

func init() { Register("junit", func(Options) Writer { return JUnitWriter{} }) }

// JUnitWriter writes JUnit XML for CI test report views (GitLab
// artifacts:reports:junit, Jenkins, Azure Pipelines): one test suite for
// the target and one test case per rule result. A failure becomes
// <failure> with the message, evidence and remediation; an error becomes
// <error>; not applicable and waived results become <skipped> with the
// reason or the waiver's justification; a pass is a bare test case.
// Test cases are encoded one at a time, so memory stays flat.
type JUnitWriter struct{}

type junitProperty struct {
	XMLName xml.Name `xml:"property"`
	Name    string   `xml:"name,attr"`
	Value   string   `xml:"value,attr"`
}

type junitDetail struct {
	Message string `xml:"message,attr,omitempty"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",cdata"`
}

type junitCase struct {
	XMLName   xml.Name     `xml:"testcase"`
	ClassName string       `xml:"classname,attr"`
	Name      string       `xml:"name,attr"`
	File      string       `xml:"file,attr,omitempty"`
	Line      int          `xml:"line,attr,omitempty"`
	Time      string       `xml:"time,attr"`
	Failure   *junitDetail `xml:"failure,omitempty"`
	Error     *junitDetail `xml:"error,omitempty"`
	Skipped   *junitDetail `xml:"skipped,omitempty"`
}

// Write renders r as JUnit XML.
func (JUnitWriter) Write(w io.Writer, r *Report) error {
	c := countResults(r)
	orig := r
	r = displayHeader(r, safetext.Text) // no control or bidi characters in CI's test views
	total := len(r.Results)
	failures, errs := c.total(StatusFail), c.total(StatusError)
	skipped := c.total(StatusNotApplicable) + c.total(StatusWaived)
	secs := fmt.Sprintf("%.3f", float64(r.DurationMs)/1000)
	suite := "arcagent audit " + nonEmpty(r.Target.Host, "unknown host")

	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(xml.Header)
	fmt.Fprintf(bw, "<testsuites name=%s tests=\"%d\" failures=\"%d\" errors=\"%d\" skipped=\"%d\" time=\"%s\">\n",
		xmlAttr("arcagent audit"), total, failures, errs, skipped, secs)
	fmt.Fprintf(bw, "  <testsuite name=%s tests=\"%d\" failures=\"%d\" errors=\"%d\" skipped=\"%d\" time=\"%s\"",
		xmlAttr(suite), total, failures, errs, skipped, secs)
	if !r.StartedAt.IsZero() {
		fmt.Fprintf(bw, " timestamp=%s", xmlAttr(r.StartedAt.UTC().Format("2006-01-02T15:04:05")))
	}
	if r.Target.Host != "" {
		fmt.Fprintf(bw, " hostname=%s", xmlAttr(r.Target.Host))
	}
	bw.WriteString(">\n")

	enc := xml.NewEncoder(bw)
	enc.Indent("    ", "  ")
	props := []junitProperty{
		{Name: "tool", Value: strings.TrimSpace(nonEmpty(r.Tool.Name, "arcagent") + " " + r.Tool.Version)},
		{Name: "target", Value: nonEmpty(r.Target.Kind, TargetHost) + ": " + targetText(r.Target)},
		{Name: "profiles", Value: strings.Join(r.Profiles, ",")},
		{Name: "failOn", Value: string(r.FailOn)},
		{Name: "gate", Value: r.Verdict()},
	}
	if r.RunID != "" {
		props = append(props, junitProperty{Name: "runId", Value: r.RunID})
	}
	if r.Target.MachineID != "" {
		props = append(props, junitProperty{Name: "machineId", Value: r.Target.MachineID})
	}
	if r.Target.Note != "" {
		props = append(props, junitProperty{Name: "note", Value: r.Target.Note})
	}
	if err := enc.Encode(struct {
		XMLName xml.Name        `xml:"properties"`
		Props   []junitProperty `xml:"property"`
	}{Props: props}); err != nil {
		return fmt.Errorf("encode JUnit properties: %w", err)
	}

	profiles := map[string]bool{}
	for _, p := range r.Profiles {
		profiles[p] = true
	}
	rules := map[string]*Rule{}
	for i := range r.Rules {
		if _, dup := rules[r.Rules[i].ID]; !dup {
			rules[r.Rules[i].ID] = &r.Rules[i]
		}
	}
	for i := range r.Results {
		sr := displayResult(orig, &orig.Results[i], safetext.Text)
		res := &sr
		ru := rules[res.RuleID]
		if ru == nil {
			ru = &Rule{ID: res.RuleID, Severity: res.Severity}
		}
		tc := junitCase{
			ClassName: junitClass(ru, profiles),
			Name:      junitName(ru, res),
			File:      junitPath(r, res.Location),
			Line:      LocationLine(res.Location),
			Time:      "0",
		}
		switch res.Status {
		case StatusFail:
			tc.Failure = &junitDetail{Message: res.Message, Type: string(res.Severity), Body: junitBody(r, ru, res)}
		case StatusError:
			tc.Error = &junitDetail{Message: nonEmpty(res.Reason, res.Message), Type: "error", Body: junitBody(r, ru, res)}
		case StatusNotApplicable:
			tc.Skipped = &junitDetail{Message: "not applicable: " + nonEmpty(res.Reason, res.Message)}
		case StatusWaived:
			msg := "waived"
			if res.Waiver != nil {
				msg += ": " + res.Waiver.Justification
				if !res.Waiver.Expires.IsZero() {
					msg += " (until " + res.Waiver.Expires.UTC().Format("2006-01-02") + ")"
				}
			}
			tc.Skipped = &junitDetail{Message: msg}
		}
		if err := enc.Encode(&tc); err != nil {
			return fmt.Errorf("encode JUnit test case for %s: %w", res.RuleID, err)
		}
	}
	var sysErr strings.Builder
	for _, ce := range r.CollectorErrors {
		sysErr.WriteString(collectorErrorText(ce) + "\n")
	}
	for _, wv := range r.Waivers {
		if wv.Expired {
			fmt.Fprintf(&sysErr, "The waiver for %s expired on %s and no longer waives anything.\n", wv.RuleID, wv.Expires.UTC().Format("2006-01-02"))
		}
	}
	if sysErr.Len() > 0 {
		if err := enc.Encode(struct {
			XMLName xml.Name `xml:"system-err"`
			Body    string   `xml:",cdata"`
		}{Body: xmlSafe(sysErr.String())}); err != nil {
			return fmt.Errorf("encode JUnit system-err: %w", err)
		}
	}
	if err := enc.Flush(); err != nil {
		return fmt.Errorf("encode JUnit: %w", err)
	}
	bw.WriteString("\n  </testsuite>\n</testsuites>\n")
	return bw.Flush()
}

// junitClass is the test case class: the rule's first profile that was
// audited (so CI groups cases by profile), or the rule id.
// junitPath is where a result points: a production path on the host
// (with its leading slash), or for a planned configuration the file as
// given, relative to the working directory, so CI annotates it.
func junitPath(r *Report, l Location) string {
	if p := LocationPath(l); r.Target.Kind == TargetPlanned && p == LocationPath(Location{Path: r.Target.Planned}) {
		return p
	}
	return "/" + LocationPath(l)
}

func junitClass(ru *Rule, audited map[string]bool) string {
	for _, p := range ru.Profiles {
		if audited[p] {
			return "arcagent." + p
		}
	}
	if len(ru.Profiles) > 0 {
		return "arcagent." + ru.Profiles[0]
	}
	return ru.ID
}

// junitName names a test case: rule id, resource and rule title, stable
// between runs so CI can follow a case across pipelines.
func junitName(ru *Rule, res *Result) string {
	name := res.RuleID
	if res.Resource != "" {
		name += " [" + res.Resource + "]"
	}
	if ru.Title != "" {
		name += " " + ru.Title
	}
	return name
}

func junitBody(r *Report, ru *Rule, res *Result) string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(nonEmpty(res.Message, res.Reason)) + "\n")
	if res.Status == StatusError && res.Message != "" && res.Reason != "" && res.Reason != res.Message {
		b.WriteString("Reason: " + res.Reason + "\n")
	}
	fmt.Fprintf(&b, "\nRule:     %s (%s)\n", ru.ID, res.Severity)
	if res.Resource != "" {
		b.WriteString("Resource: " + res.Resource + "\n")
	}
	fmt.Fprintf(&b, "Location: %s:%d\n", junitPath(r, res.Location), LocationLine(res.Location))
	if res.Baseline != "" {
		b.WriteString("Baseline: " + res.Baseline + "\n")
	}
	fmt.Fprintf(&b, "Fingerprint: %s\n", resultFingerprint(r, res))
	if len(res.Evidence) > 0 {
		b.WriteString("\nEvidence:\n")
		for _, kv := range evidenceLines(res.Evidence) {
			b.WriteString("  " + kv[0] + ": " + kv[1] + "\n")
		}
	}
	if s := strings.TrimSpace(ru.Rationale); s != "" {
		b.WriteString("\nWhy: " + s + "\n")
	}
	if s := strings.TrimSpace(ru.Remediation); s != "" {
		b.WriteString("\nRemediation:\n")
		for _, l := range strings.Split(s, "\n") {
			b.WriteString("  " + l + "\n")
		}
	}
	return xmlSafe(b.String())
}

// xmlSafe replaces the characters XML 1.0 cannot carry (most control
// characters) with U+FFFD, so that CDATA sections stay well-formed.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r >= 0xD800 && r <= 0xDFFF:
			return '\uFFFD'
		}
		return r
	}, s)
}

// evidenceLines returns the evidence as sorted key/value pairs, values
// rendered as compact JSON unless they are plain strings.
func evidenceLines(ev map[string]any) [][2]string {
	keys := slices.AppendSeq(make([]string, 0, len(ev)), maps.Keys(ev)) // sized: one allocation per result
	slices.Sort(keys)
	out := make([][2]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, [2]string{k, evidenceValue(ev[k])})
	}
	return out
}

func xmlAttr(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	xml.EscapeText(&b, []byte(s))
	b.WriteByte('"')
	return b.String()
}

// evidenceValue renders one evidence value: strings as they are, anything
// else as compact JSON.
func evidenceValue(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
