package reports

import (
	"bufio"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/arcagent/arcagent/internal/safetext"
)

func init() { Register("html", func(Options) Writer { return HTMLWriter{} }) }

//go:embed html/report.html.tmpl
var htmlSource string

// htmlTemplate is parsed once, at the first HTML report (not at every
// start of the binary); html/template escapes every value from the report
// for the context it lands in.
var htmlTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report").Funcs(template.FuncMap{
		"isURL":           func(s string) bool { return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") },
		"hiddenByDefault": hiddenByDefault,
	}).Parse(htmlSource))
})

// HTMLWriter writes one self-contained HTML page: inline CSS and a little
// inline JavaScript, no external assets (a Content-Security-Policy forbids
// loading any), a severity chart drawn as inline SVG, a findings table that
// can be filtered by severity, status and text, and each finding's
// evidence, rationale and remediation. Rows are rendered one at a time.
type HTMLWriter struct{}

type htmlCount struct {
	Status Status
	Label  string
	Counts [5]int
	Total  int
}

type htmlBar struct {
	Severity Severity
	Count    int
	Width    int // of 400
	Y        int
}

type htmlFinding struct {
	N           int
	Status      Status
	StatusLabel string
	Severity    Severity
	RuleID      string
	Title       string
	Resource    string
	Message     string
	Summary     string
	Reason      string
	Location    string
	Evidence    [][2]string
	Rationale   string
	Remediation string
	References  []string
	Waiver      *WaiverRef
	Baseline    string
	Fingerprint string
}

// htmlBrief is the paragraph above the fold, for a reader who reads only
// that: how many controls are off and the commands that fix them.
type htmlBrief struct {
	Lead     string   // "4 Tier 0 controls are off; these 3 commands fix them:"
	Commands []string // each distinct remediation, most severe first
	Rest     string   // what else needs attention, or ""
}

type htmlPage struct {
	R          *Report
	Brief      htmlBrief
	TargetText string
	Started    string
	Duration   string
	Verdict    string // passed, failed, incomplete or off (Report.Verdict)
	Counts     []htmlCount
	Totals     [5]int
	Total      int
	Bars       []htmlBar
	ChartH     int
	Failed     int
	Severities []Severity
	Expired    []AppliedWaiver
	Findings   iter.Seq[htmlFinding]
	// Shown is how many rows the default filters show: passed and not
	// applicable results are hidden until their box is ticked.
	Shown int
	// ShowResource is false when no result names a resource: the column
	// would be empty on every row.
	ShowResource bool
}

// hiddenByDefault reports whether the findings table hides results of
// status st until the reader asks for them.
func hiddenByDefault(st Status) bool { return st == StatusPass || st == StatusNotApplicable }

// Write renders r as HTML.
func (HTMLWriter) Write(w io.Writer, r *Report) error {
	c := countResults(r)
	// html/template escapes HTML but not control or bidi characters.
	safe := displayHeader(r, safetext.Text)
	p := htmlPage{
		R:          safe,
		TargetText: targetText(safe.Target),
		Verdict:    r.Verdict(),
		Severities: Severities,
		Total:      len(r.Results),
	}
	if !r.StartedAt.IsZero() {
		p.Started = r.StartedAt.UTC().Format(time.RFC3339)
		p.Duration = (time.Duration(r.DurationMs) * time.Millisecond).String()
	}
	for _, st := range Statuses {
		row := htmlCount{Status: st, Label: statusLabel[st], Counts: *c[st], Total: c.total(st)}
		for i, v := range row.Counts {
			p.Totals[i] += v
		}
		p.Counts = append(p.Counts, row)
	}
	max := 0
	for _, v := range c[StatusFail] {
		if v > max {
			max = v
		}
	}
	for i, sev := range Severities {
		n := c[StatusFail][i]
		width := 0
		if max > 0 {
			width = n * 400 / max
			if n > 0 && width < 2 {
				width = 2
			}
		}
		p.Bars = append(p.Bars, htmlBar{Severity: sev, Count: n, Width: width, Y: i * 30})
		p.Failed += n
	}
	p.ChartH = len(Severities) * 30
	for i := range r.Results {
		if !hiddenByDefault(r.Results[i].Status) {
			p.Shown++
		}
		if strings.TrimSpace(r.Results[i].Resource) != "" {
			p.ShowResource = true
		}
	}
	p.Brief = htmlBriefOf(safe, c)
	for _, wv := range safe.Waivers {
		if wv.Expired {
			p.Expired = append(p.Expired, wv)
		}
	}
	rules := map[string]*Rule{}
	for i := range safe.Rules {
		if _, dup := rules[safe.Rules[i].ID]; !dup {
			rules[safe.Rules[i].ID] = &safe.Rules[i]
		}
	}
	p.Findings = func(yield func(htmlFinding) bool) {
		for i := range r.Results {
			sr := displayResult(r, &r.Results[i], safetext.Text)
			res := &sr
			ru := rules[res.RuleID]
			if ru == nil {
				ru = &Rule{ID: res.RuleID}
			}
			f := htmlFinding{
				N:           i + 1,
				Status:      res.Status,
				StatusLabel: statusLabel[res.Status],
				Severity:    res.Severity,
				RuleID:      res.RuleID,
				Title:       ru.Title,
				Resource:    res.Resource,
				Message:     res.Message,
				Reason:      res.Reason,
				Location:    fmt.Sprintf("/%s:%d", LocationPath(res.Location), LocationLine(res.Location)),
				Evidence:    evidenceLines(res.Evidence),
				Rationale:   strings.TrimSpace(ru.Rationale),
				Remediation: strings.TrimSpace(ru.Remediation),
				References:  ru.References,
				Waiver:      res.Waiver,
				Baseline:    res.Baseline,
				Fingerprint: res.Fingerprint, // displayResult computed it when missing
			}
			f.Summary = nonEmpty(res.Message, nonEmpty(res.Reason, nonEmpty(ru.Title, res.RuleID)))
			if f.StatusLabel == "" {
				f.StatusLabel = string(res.Status)
			}
			if !yield(f) {
				return
			}
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := htmlTemplate().Execute(bw, p); err != nil {
		return fmt.Errorf("render HTML report: %w", err)
	}
	return bw.Flush()
}

// htmlBriefOf sums r up for a manager: the failing Tier 0 controls (or,
// when none fails, every failing rule) and the distinct commands that fix
// them, then what else fails, could not be evaluated or was waived.
func htmlBriefOf(r *Report, c severityCounts) htmlBrief {
	var tier0, other []Rule
	seen := map[string]bool{}
	for i := range r.Results {
		res := &r.Results[i]
		if res.Status != StatusFail || seen[res.RuleID] {
			continue
		}
		seen[res.RuleID] = true
		ru, _, ok := r.RuleByID(res.RuleID)
		if !ok {
			ru = Rule{ID: res.RuleID, Severity: res.Severity}
		}
		if slices.Contains(ru.Profiles, "tier0") {
			tier0 = append(tier0, ru)
		} else {
			other = append(other, ru)
		}
	}
	var b htmlBrief
	if len(tier0)+len(other) == 0 {
		b.Lead = "No control is off: nothing fails."
		if n := c.total(StatusError); n > 0 {
			b.Lead = fmt.Sprintf("Nothing fails, but %s could not be evaluated: the audit is incomplete.", plural(n, "check", "checks"))
		}
		return b
	}
	main, one, many := tier0, "Tier 0 control is off", "Tier 0 controls are off"
	if len(tier0) == 0 {
		main, other, one, many = other, nil, "rule fails", "rules fail"
	}
	noCommand := 0
	for _, ru := range main {
		cmd := strings.TrimSpace(ru.Remediation)
		switch {
		case cmd == "":
			noCommand++
		case !slices.Contains(b.Commands, cmd):
			b.Commands = append(b.Commands, cmd)
		}
	}
	b.Lead = plural(len(main), one, many)
	them := "them"
	if len(main) == 1 {
		them = "it"
	}
	switch len(b.Commands) {
	case 0:
		b.Lead += ": see the findings below for how to fix " + them + "."
	case 1:
		b.Lead += "; this command fixes " + them + ":"
	default:
		b.Lead += fmt.Sprintf("; these %d commands fix them:", len(b.Commands))
	}
	var rest []string
	if len(b.Commands) > 0 && noCommand > 0 {
		rest = append(rest, fmt.Sprintf("%s no command", plural(noCommand, "of them has", "of them have")))
	}
	if len(other) > 0 {
		var sev []string
		for _, s := range Severities {
			n := 0
			for _, ru := range other {
				if ru.Severity == s {
					n++
				}
			}
			if n > 0 {
				sev = append(sev, fmt.Sprintf("%d %s", n, s))
			}
		}
		rest = append(rest, fmt.Sprintf("%s too (%s)", plural(len(other), "other rule fails", "other rules fail"), strings.Join(sev, ", ")))
	}
	if n := c.total(StatusError); n > 0 {
		rest = append(rest, fmt.Sprintf("%s could not be evaluated", plural(n, "check", "checks")))
	}
	if n := c.total(StatusWaived); n > 0 {
		rest = append(rest, fmt.Sprintf("%s waived", plural(n, "finding is", "findings are")))
	}
	if len(rest) > 0 {
		b.Rest = strings.ToUpper(rest[0][:1]) + strings.Join(rest, "; ")[1:] + ": see the findings below."
	}
	return b
}

// plural is "1 rule" or "3 rules".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
