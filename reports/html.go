package reports

import (
	"bufio"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"iter"
	"strings"
	"time"

	"github.com/arcagent/arcagent/internal/safetext"
)

func init() { Register("html", func(Options) Writer { return HTMLWriter{} }) }

//go:embed html/report.html.tmpl
var htmlSource string

// htmlTemplate is parsed once; html/template escapes every value from the
// report for the context it lands in.
var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"isURL": func(s string) bool { return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") },
}).Parse(htmlSource))

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

type htmlPage struct {
	R          *Report
	TargetText string
	Started    string
	Duration   string
	Gate       bool
	Counts     []htmlCount
	Totals     [5]int
	Total      int
	Bars       []htmlBar
	ChartH     int
	Failed     int
	Severities []Severity
	Expired    []AppliedWaiver
	Findings   iter.Seq[htmlFinding]
}

// Write renders r as HTML.
func (HTMLWriter) Write(w io.Writer, r *Report) error {
	c := countResults(r)
	// html/template escapes HTML but not control or bidi characters.
	safe := displayHeader(r, safetext.Text)
	p := htmlPage{
		R:          safe,
		TargetText: targetText(safe.Target),
		Gate:       r.Summary.Gate,
		Severities: Severities,
		Total:      len(r.Results),
	}
	if !r.StartedAt.IsZero() {
		p.Started = r.StartedAt.UTC().Format("2006-01-02 15:04:05 UTC")
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
	if err := htmlTemplate.Execute(bw, p); err != nil {
		return fmt.Errorf("render HTML report: %w", err)
	}
	return bw.Flush()
}
