package reports

import (
	"github.com/arcagent/arcagent/internal/safetext"
)

// Human-readable writers (table, Markdown, HTML, JUnit) show strings that
// come from the audited target or from a saved report given to `arcagent
// report convert`: a hostname, a resource, a message, evidence. Any of them
// may hold an escape sequence, a bell, a carriage return that rewrites the
// line, or U+202E that reverses the text after it. These helpers escape
// such characters (package safetext) in a copy of the report; the report
// itself is never changed, since one run hands it to several writers.

// displayText chooses how free text is escaped: safetext.Line where a line
// break could forge output (a terminal), safetext.Text where it cannot.
type displayText func(string) string

// displayHeader returns a copy of r, results excepted, with every string
// made safe: names and ids with safetext.Line, free text with text, rule
// rationale and remediation with safetext.Text (they have several lines).
// Results are shared with r: writers that stream them make each one safe
// with displayResult.
func displayHeader(r *Report, text displayText) *Report {
	line := safetext.Line
	c := *r
	c.Tool = Tool{Name: line(r.Tool.Name), Version: line(r.Tool.Version), InformationURI: line(r.Tool.InformationURI)}
	c.RunID = line(r.RunID)
	c.Target = Target{
		Kind: line(r.Target.Kind), Host: line(r.Target.Host), MachineID: line(r.Target.MachineID), OS: line(r.Target.OS),
		Root: line(r.Target.Root), Planned: line(r.Target.Planned), Note: text(r.Target.Note),
	}
	c.Profiles = displayStrings(r.Profiles, line)
	c.FailOn = Severity(line(string(r.FailOn)))
	if r.Rules != nil {
		c.Rules = make([]Rule, len(r.Rules))
		for i, ru := range r.Rules {
			c.Rules[i] = Rule{
				ID: line(ru.ID), Title: line(ru.Title), Severity: Severity(line(string(ru.Severity))),
				Profiles:  displayStrings(ru.Profiles, line),
				Rationale: safetext.Text(ru.Rationale), Remediation: safetext.Text(ru.Remediation),
				References: displayStrings(ru.References, line), Source: line(ru.Source),
			}
		}
	}
	if r.Waivers != nil {
		c.Waivers = make([]AppliedWaiver, len(r.Waivers))
		for i, wv := range r.Waivers {
			wv.RuleID, wv.Host, wv.Resource, wv.Justification = line(wv.RuleID), line(wv.Host), line(wv.Resource), text(wv.Justification)
			c.Waivers[i] = wv
		}
	}
	if b := r.Baseline; b != nil {
		nb := *b
		nb.Source = line(b.Source)
		if b.Fixed != nil {
			nb.Fixed = make([]FixedFinding, len(b.Fixed))
			for i, f := range b.Fixed {
				nb.Fixed[i] = FixedFinding{RuleID: line(f.RuleID), Resource: line(f.Resource), Fingerprint: line(f.Fingerprint), Message: text(f.Message)}
			}
		}
		c.Baseline = &nb
	}
	if r.CollectorErrors != nil {
		c.CollectorErrors = make([]CollectorError, len(r.CollectorErrors))
		for i, ce := range r.CollectorErrors {
			c.CollectorErrors[i] = CollectorError{Collector: line(ce.Collector), Path: line(ce.Path), Error: text(ce.Error)}
		}
	}
	return &c
}

// terminalReport is r made safe for a terminal: line breaks in free text
// are escaped too, so a value cannot forge a line of the output.
func terminalReport(r *Report) *Report { return displayReport(r, safetext.Line) }

// displayReport is displayHeader with every result made safe too, for
// writers that hold the whole report anyway (the table).
func displayReport(r *Report, text displayText) *Report {
	c := displayHeader(r, text)
	if r.Results != nil {
		c.Results = make([]Result, len(r.Results))
		for i := range r.Results {
			c.Results[i] = displayResult(r, &r.Results[i], text)
		}
	}
	return c
}

// displayResult returns a safe copy of one result of r. Its fingerprint
// is the one computed from the original strings, so that it still matches
// the JSON and SARIF reports.
func displayResult(r *Report, res *Result, text displayText) Result {
	line := safetext.Line
	c := *res
	c.Fingerprint = line(resultFingerprint(r, res))
	c.RuleID, c.Resource, c.Baseline = line(res.RuleID), line(res.Resource), line(res.Baseline)
	c.Severity, c.Status = Severity(line(string(res.Severity))), Status(line(string(res.Status)))
	c.Message, c.Reason = text(res.Message), text(res.Reason)
	c.Location.Path = line(res.Location.Path)
	if !displaySafe(res.Evidence, text) {
		c.Evidence = make(map[string]any, len(res.Evidence))
		for k, v := range res.Evidence {
			c.Evidence[line(k)] = displayValue(v, text)
		}
	}
	if wv := res.Waiver; wv != nil {
		c.Waiver = &WaiverRef{Justification: text(wv.Justification), Expires: wv.Expires, Source: line(wv.Source)}
	}
	return c
}

// displayValue makes the strings inside one evidence value safe.
func displayValue(v any, text displayText) any {
	switch v := v.(type) {
	case string:
		return text(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = displayValue(e, text)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[safetext.Line(k)] = displayValue(e, text)
		}
		return out
	case []string:
		return displayStrings(v, text)
	}
	return v
}

// displaySafe reports whether v (an evidence value) needs no escaping, so
// that the common case shares it instead of copying it for every result.
func displaySafe(v any, text displayText) bool {
	switch v := v.(type) {
	case string:
		return text(v) == v
	case []any:
		for _, e := range v {
			if !displaySafe(e, text) {
				return false
			}
		}
	case map[string]any:
		for k, e := range v {
			if safetext.Line(k) != k || !displaySafe(e, text) {
				return false
			}
		}
	case []string:
		for _, e := range v {
			if text(e) != e {
				return false
			}
		}
	}
	return true
}

func displayStrings(ss []string, f func(string) string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}
