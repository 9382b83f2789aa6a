package reports

import (
	"bytes"
	"strings"
	"testing"
)

// An error at or above --fail-on wins over findings (3, not 1), so that an
// audit that could not check a rule never passes `|| [ $? -eq 1 ]`; with
// FailOnNever the verdict is always 0.
func TestExitCodeOrder(t *testing.T) {
	fail := Result{RuleID: "A-1", Severity: SeverityCritical, Status: StatusFail}
	errHigh := Result{RuleID: "A-2", Severity: SeverityHigh, Status: StatusError}
	errLow := Result{RuleID: "A-3", Severity: SeverityLow, Status: StatusError}
	for _, c := range []struct {
		name    string
		failOn  Severity
		results []Result
		want    int
		gate    bool
	}{
		{"findings only", SeverityHigh, []Result{fail}, 1, true},
		{"error and findings", SeverityHigh, []Result{fail, errHigh}, 3, true},
		{"error below fail-on", SeverityHigh, []Result{fail, errLow}, 1, true},
		{"error only", SeverityHigh, []Result{errHigh}, 3, false},
		{"nothing", SeverityHigh, nil, 0, false},
		{"never with findings and errors", FailOnNever, []Result{fail, errHigh}, 0, false},
	} {
		r := &Report{FailOn: c.failOn, Results: c.results}
		r.Summarize()
		if got := r.ExitCode(); got != c.want || r.Summary.Gate != c.gate {
			t.Errorf("%s: exit %d gate %v, want %d %v", c.name, got, r.Summary.Gate, c.want, c.gate)
		}
	}
}

// TestEveryFormatShowsTheVerdict: the table, Markdown, HTML and JUnit all
// word the gate as ExitCode decides it, so an audit that could not check a
// rule (exit 3) never reads "gate passed", and --fail-on never reads off.
func TestEveryFormatShowsTheVerdict(t *testing.T) {
	errHigh := fxResult("h", "ARC-T0-001", SeverityCritical, StatusError, "", "cannot read localconfig.json", Location{localconfig, 1}, nil)
	fail := fxResult("h", "ARC-T0-001", SeverityCritical, StatusFail, "", "remote access is on", Location{localconfig, 1}, nil)
	for _, c := range []struct {
		name    string
		failOn  Severity
		results []Result
		verdict string
		want    map[string]string // format -> text it must hold
		never   map[string]string // format -> text it must not hold
	}{
		{"incomplete", SeverityHigh, []Result{errHigh}, VerdictIncomplete,
			map[string]string{"table": "gate: INCOMPLETE", "markdown": "gate incomplete", "html": "gate incomplete", "junit": `name="gate" value="incomplete"`},
			map[string]string{"markdown": "gate passed", "html": "gate passed", "junit": `value="passed"`}},
		{"off", FailOnNever, []Result{fail}, VerdictOff,
			map[string]string{"table": "gate: off", "markdown": "gate off", "html": "gate off", "junit": `name="gate" value="off"`},
			map[string]string{"html": "severity <b>never</b>", "junit": `value="passed"`}},
		{"failed", SeverityHigh, []Result{fail}, VerdictFailed,
			map[string]string{"table": "gate: FAILED", "markdown": "gate failed", "html": "gate failed", "junit": `name="gate" value="failed"`}, nil},
	} {
		r := fixtureBase("h")
		r.FailOn, r.Results = c.failOn, c.results
		r.Summarize()
		if got := r.Verdict(); got != c.verdict {
			t.Errorf("%s: Verdict() = %q, want %q", c.name, got, c.verdict)
		}
		for format, want := range c.want {
			w, err := New(format, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := w.Write(&buf, r); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), want) {
				t.Errorf("%s: %s lacks %q", c.name, format, want)
			}
			if bad, ok := c.never[format]; ok && strings.Contains(buf.String(), bad) {
				t.Errorf("%s: %s says %q", c.name, format, bad)
			}
		}
	}
}
