package reports

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/arcagent/arcagent/internal/table"
)

func init() {
	Register("table", func(o Options) Writer { return TableWriter{Color: o.Color, Width: o.Width} })
}

// TableWriter writes a human-readable summary and a table of every result
// that is not a pass, in the table style of every command (internal/table):
// the message column wraps to fit Width.
type TableWriter struct {
	Color bool
	// Width is the most characters a line may take; 0 is unlimited.
	Width int
}

var sevColor = map[Severity]string{
	SeverityCritical: "\x1b[1;31m", SeverityHigh: "\x1b[31m", SeverityMedium: "\x1b[33m", SeverityLow: "\x1b[36m", SeverityInfo: "\x1b[2m",
}

// Write renders r.
func (t TableWriter) Write(w io.Writer, r *Report) error {
	r = terminalReport(r) // no escape sequence from the target reaches the terminal
	tgt := r.Target.Host
	switch r.Target.Kind {
	case TargetRoot:
		tgt += " (root " + r.Target.Root + ")"
	case TargetPlanned:
		tgt += " (planned configuration " + r.Target.Planned + ")"
	}
	fmt.Fprintf(w, "arcagent audit of %s, profiles %s\n", tgt, strings.Join(r.Profiles, ", "))
	if r.Target.Note != "" {
		fmt.Fprintf(w, "note: %s\n", r.Target.Note)
	}
	fmt.Fprintln(w)
	var rows [][]string
	var sevs []Severity
	naByReason := map[string][]string{}
	var naOrder []string
	for _, res := range r.Results {
		if res.Status == StatusPass {
			continue
		}
		if res.Status == StatusNotApplicable {
			if _, ok := naByReason[res.Reason]; !ok {
				naOrder = append(naOrder, res.Reason)
			}
			naByReason[res.Reason] = append(naByReason[res.Reason], res.RuleID)
			continue
		}
		msg := res.Message
		if res.Status == StatusError && res.Reason != "" {
			msg = res.Reason
		}
		if res.Waiver != nil {
			msg += " [waived: " + res.Waiver.Justification + "]"
		}
		if res.Baseline != "" {
			msg += " [" + res.Baseline + "]"
		}
		rows = append(rows, []string{string(res.Status), string(res.Severity), res.RuleID, res.Resource, msg})
		sevs = append(sevs, res.Severity)
	}
	if len(rows) > 0 {
		o := table.Options{Width: t.Width, Wrap: "MESSAGE"}
		if t.Color {
			o.Paint = func(row, col int, cell string) string {
				if col != 1 {
					return cell
				}
				return sevColor[sevs[row]] + cell + "\x1b[0m"
			}
		}
		if err := table.Render(w, []string{"STATUS", "SEVERITY", "RULE", "RESOURCE", "MESSAGE"}, rows, o); err != nil {
			return fmt.Errorf("render table: %w", err)
		}
		fmt.Fprintln(w)
	}
	// Sorted, each id once: a for_each rule may be not applicable for
	// several items, and the order must not depend on severities.
	slices.Sort(naOrder)
	for _, why := range naOrder {
		ids := naByReason[why]
		slices.Sort(ids)
		fmt.Fprintf(w, "not applicable (%s): %s\n", why, strings.Join(slices.Compact(ids), ", "))
	}
	if len(naOrder) > 0 {
		fmt.Fprintln(w)
	}
	s := r.Summary
	fmt.Fprintf(w, "%d results: %d failed, %d errors, %d waived, %d not applicable, %d passed\n",
		s.Total, s.ByStatus[StatusFail], s.ByStatus[StatusError], s.ByStatus[StatusWaived], s.ByStatus[StatusNotApplicable], s.ByStatus[StatusPass])
	var parts []string
	for _, sev := range Severities {
		if n := s.BySeverity[sev]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, sev))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "failed by severity: %s\n", strings.Join(parts, ", "))
	}
	if r.Baseline != nil {
		fmt.Fprintf(w, "against baseline %s: %d new, %d unchanged, %d fixed\n", r.Baseline.Source, r.Baseline.New, r.Baseline.Unchanged, len(r.Baseline.Fixed))
	}
	for _, wv := range r.Waivers {
		if wv.Expired {
			fmt.Fprintf(w, "expired waiver for %s (expired %s) no longer waives anything\n", wv.RuleID, wv.Expires.Format("2006-01-02"))
		}
	}
	for _, ce := range r.CollectorErrors {
		fmt.Fprintf(w, "could not collect %s: %s\n", ce.Collector, ce.Error)
	}
	switch r.Verdict() {
	case VerdictOff:
		fmt.Fprintln(w, "gate: off (--fail-on never: report only)")
	case VerdictFailed:
		fmt.Fprintf(w, "gate: FAILED (findings at or above %s)\n", r.FailOn)
	case VerdictPassed:
		fmt.Fprintf(w, "gate: passed (nothing at or above %s)\n", r.FailOn)
	default:
		fmt.Fprintf(w, "gate: INCOMPLETE (rules at or above %s could not be evaluated)\n", r.FailOn)
	}
	fixes := map[string]bool{}
	for _, res := range r.Results {
		if res.Status != StatusFail || fixes[res.RuleID] {
			continue
		}
		fixes[res.RuleID] = true
		if ru, _, ok := r.RuleByID(res.RuleID); ok && ru.Remediation != "" {
			fmt.Fprintf(w, "fix %s: %s\n", ru.ID, firstLine(ru.Remediation))
		}
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
