package reports

import "testing"

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
