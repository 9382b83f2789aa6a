package reports

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/arcagent/arcagent/internal/safetext"
)

func init() { Register("markdown", func(Options) Writer { return MarkdownWriter{} }) }

// DefaultMarkdownRows is how many rows each Markdown table lists before it
// says how many more there are: enough for any single host, small enough
// that a report stays far below GitHub's 1 MiB step summary limit.
const DefaultMarkdownRows = 200

// MarkdownWriter writes GitHub-flavoured Markdown for CI step summaries
// ($GITHUB_STEP_SUMMARY) and pull request comments: the verdict, a summary
// table by status and severity, the findings, how to fix each failing
// rule, and what was waived, could not be evaluated or changed against a
// baseline. Every value from the report is escaped.
type MarkdownWriter struct {
	// MaxRows caps each table; 0 means DefaultMarkdownRows.
	MaxRows int
}

// statusLabel is the display name of a status.
var statusLabel = map[Status]string{
	StatusFail: "Failed", StatusError: "Error", StatusWaived: "Waived", StatusNotApplicable: "Not applicable", StatusPass: "Passed",
}

// severityCounts counts results by status and severity.
type severityCounts map[Status]*[5]int

func countResults(r *Report) severityCounts {
	c := severityCounts{}
	for _, st := range Statuses {
		c[st] = new([5]int)
	}
	for i := range r.Results {
		res := &r.Results[i]
		row, ok := c[res.Status]
		if !ok {
			continue
		}
		if k := res.Severity.Rank(); k >= 0 {
			row[4-k]++
		}
	}
	return c
}

func (c severityCounts) total(st Status) int {
	n := 0
	for _, v := range c[st] {
		n += v
	}
	return n
}

// targetText describes the audited target in one line.
func targetText(t Target) string {
	s := nonEmpty(t.Host, "unknown host")
	switch t.Kind {
	case TargetRoot:
		s += " (root prefix " + t.Root + ")"
	case TargetPlanned:
		s += " (planned configuration " + t.Planned + ")"
	}
	return s
}

// Write renders r as Markdown, one section after the other.
func (m MarkdownWriter) Write(w io.Writer, r *Report) error {
	md := mdReport{bw: bufio.NewWriterSize(w, 32<<10), r: r, c: countResults(r), maxRows: m.MaxRows}
	if md.maxRows <= 0 {
		md.maxRows = DefaultMarkdownRows
	}
	md.verdict()
	md.target()
	md.summary()
	md.findings()
	md.howToFix()
	md.notEvaluated()
	md.waived()
	md.expiredWaivers()
	md.baseline()
	md.collectorErrors()
	return md.bw.Flush()
}

// mdReport is one Markdown rendering: the report, its counts and the
// output. Each method writes one section, or nothing when it has none.
type mdReport struct {
	bw      *bufio.Writer
	r       *Report
	c       severityCounts
	maxRows int
}

// verdict writes the heading with the gate's verdict, the counts in one
// line, the gate's level and the target's note.
func (md *mdReport) verdict() {
	bw, r, c := md.bw, md.r, md.c
	verdict := map[string]string{VerdictPassed: "passed ✅", VerdictFailed: "failed ❌",
		VerdictIncomplete: "incomplete ⚠️ (rules could not be evaluated)", VerdictOff: "off (report only)"}[r.Verdict()]
	fmt.Fprintf(bw, "## arcagent audit of %s: gate %s\n\n", mdCode(nonEmpty(r.Target.Host, "unknown host")), verdict)
	var parts []string
	if n := c.total(StatusFail); n > 0 {
		var sev []string
		for i, s := range Severities {
			if v := c[StatusFail][i]; v > 0 {
				sev = append(sev, fmt.Sprintf("%d %s", v, s))
			}
		}
		parts = append(parts, fmt.Sprintf("**%d failed** (%s)", n, strings.Join(sev, ", ")))
	} else {
		parts = append(parts, "**no failures**")
	}
	for _, st := range []Status{StatusError, StatusWaived, StatusNotApplicable, StatusPass} {
		if n := c.total(st); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(statusLabel[st])))
		}
	}
	fmt.Fprintf(bw, "%s. ", strings.Join(parts, " · "))
	if r.FailOn == FailOnNever {
		fmt.Fprint(bw, "Report only: the gate is off (`--fail-on never`).")
	} else if r.FailOn != "" {
		fmt.Fprintf(bw, "The gate fails on findings of severity **%s** or above.", mdEscape(string(r.FailOn)))
	}
	bw.WriteString("\n\n")
	if r.Target.Note != "" {
		fmt.Fprintf(bw, "> **Note:** %s\n\n", mdEscape(r.Target.Note))
	}
}

// target writes the table of what was audited, how and when.
func (md *mdReport) target() {
	bw, r := md.bw, md.r
	bw.WriteString("| | |\n|---|---|\n")
	fmt.Fprintf(bw, "| Target | %s |\n", mdCell(nonEmpty(r.Target.Kind, "host")+": "+targetText(r.Target)))
	if r.Target.OS != "" {
		fmt.Fprintf(bw, "| OS | %s |\n", mdCell(r.Target.OS))
	}
	if r.Target.MachineID != "" {
		fmt.Fprintf(bw, "| Machine ID | %s |\n", mdCode(r.Target.MachineID))
	}
	fmt.Fprintf(bw, "| Profiles | %s |\n", mdCell(nonEmpty(strings.Join(r.Profiles, ", "), "none")))
	if !r.StartedAt.IsZero() {
		fmt.Fprintf(bw, "| Started | %s (%s) |\n", r.StartedAt.UTC().Format(time.RFC3339), time.Duration(r.DurationMs)*time.Millisecond)
	}
	fmt.Fprintf(bw, "| Tool | %s |\n", mdCell(strings.TrimSpace(nonEmpty(r.Tool.Name, "arcagent")+" "+r.Tool.Version)))
	if r.RunID != "" {
		fmt.Fprintf(bw, "| Run | %s |\n", mdCode(r.RunID))
	}
}

// summary writes the counts by status and severity.
func (md *mdReport) summary() {
	bw, c := md.bw, md.c
	bw.WriteString("\n### Summary\n\n| Status | Critical | High | Medium | Low | Info | Total |\n|---|--:|--:|--:|--:|--:|--:|\n")
	var col [5]int
	for _, st := range Statuses {
		fmt.Fprintf(bw, "| %s |", statusLabel[st])
		for i, v := range c[st] {
			fmt.Fprintf(bw, " %d |", v)
			col[i] += v
		}
		fmt.Fprintf(bw, " %d |\n", c.total(st))
	}
	bw.WriteString("| **Total** |")
	sum := 0
	for _, v := range col {
		fmt.Fprintf(bw, " %d |", v)
		sum += v
	}
	fmt.Fprintf(bw, " **%d** |\n", sum)
}

// findings writes every failure, most severe first (the report's order),
// up to maxRows.
func (md *mdReport) findings() {
	md.resultTable(StatusFail, "\n### Findings\n\n| Severity | Rule | Resource | Finding | Location |\n|---|---|---|---|---|\n",
		"\n%d more findings are not listed here: see the JSON, SARIF or HTML report.\n",
		func(res *Result) string {
			msg := mdCell(res.Message)
			if res.Baseline == BaselineNew {
				msg = "🆕 " + msg
			}
			return fmt.Sprintf("| %s | %s | %s | %s | %s |\n", mdCell(string(res.Severity)), mdCode(res.RuleID), mdCodeOrDash(res.Resource), msg,
				mdCode(fmt.Sprintf("%s:%d", LocationPath(res.Location), LocationLine(res.Location))))
		})
}

// howToFix writes one collapsible entry per failing rule: why it matters,
// the remediation command and the references.
func (md *mdReport) howToFix() {
	bw, r := md.bw, md.r
	if md.c.total(StatusFail) == 0 {
		return
	}
	bw.WriteString("\n### How to fix\n\n")
	done := map[string]bool{}
	for i := range r.Results {
		res := &r.Results[i]
		if res.Status != StatusFail || done[res.RuleID] {
			continue
		}
		done[res.RuleID] = true
		ru, _, ok := r.RuleByID(res.RuleID)
		if !ok {
			ru = Rule{ID: res.RuleID, Severity: res.Severity}
		}
		fmt.Fprintf(bw, "<details><summary><b>%s</b> %s (%s)</summary>\n\n", htmlText(ru.ID), htmlText(ru.Title), htmlText(string(ru.Severity)))
		if s := strings.TrimSpace(ru.Rationale); s != "" {
			bw.WriteString(mdEscape(s) + "\n\n")
		}
		if s := strings.TrimSpace(ru.Remediation); s != "" {
			bw.WriteString(mdCodeBlock("sh", s) + "\n")
		}
		for _, ref := range ru.References {
			bw.WriteString("- " + mdLink(ref) + "\n")
		}
		if len(ru.References) > 0 {
			bw.WriteString("\n")
		}
		bw.WriteString("</details>\n\n")
	}
}

// notEvaluated writes the rules that could not be evaluated, with why.
func (md *mdReport) notEvaluated() {
	md.resultTable(StatusError, "\n### Could not evaluate\n\n| Severity | Rule | Resource | Reason |\n|---|---|---|---|\n",
		"\n%d more are not listed here: see the JSON report.\n",
		func(res *Result) string {
			return fmt.Sprintf("| %s | %s | %s | %s |\n", mdCell(string(res.Severity)), mdCode(res.RuleID), mdCodeOrDash(res.Resource), mdCell(nonEmpty(res.Reason, res.Message)))
		})
}

// waived writes the waived results with the waiver's justification and
// expiry.
func (md *mdReport) waived() {
	md.resultTable(StatusWaived, "\n### Waived\n\n| Severity | Rule | Resource | Justification | Expires |\n|---|---|---|---|---|\n",
		"\n%d more are not listed here: see the JSON report.\n",
		func(res *Result) string {
			just, exp := "", "–"
			if res.Waiver != nil {
				just = res.Waiver.Justification
				if !res.Waiver.Expires.IsZero() {
					exp = res.Waiver.Expires.UTC().Format("2006-01-02")
				}
			}
			return fmt.Sprintf("| %s | %s | %s | %s | %s |\n", mdCell(string(res.Severity)), mdCode(res.RuleID), mdCodeOrDash(res.Resource), mdCell(just), exp)
		})
}

// resultTable writes header and one row per result with status, at most
// maxRows of them, then more (a format taking the count) when some were
// left out. Nothing is written when no result has status.
func (md *mdReport) resultTable(status Status, header, more string, row func(*Result) string) {
	n := md.c.total(status)
	if n == 0 {
		return
	}
	md.bw.WriteString(header)
	rows := 0
	for i := range md.r.Results {
		res := &md.r.Results[i]
		if res.Status != status {
			continue
		}
		if rows == md.maxRows {
			break
		}
		rows++
		md.bw.WriteString(row(res))
	}
	if n > rows {
		fmt.Fprintf(md.bw, more, n-rows)
	}
}

// expiredWaivers writes the waivers that no longer waive anything.
func (md *mdReport) expiredWaivers() {
	bw := md.bw
	var expired []AppliedWaiver
	for _, wv := range md.r.Waivers {
		if wv.Expired {
			expired = append(expired, wv)
		}
	}
	if len(expired) == 0 {
		return
	}
	bw.WriteString("\n### Expired waivers\n\nThese waivers have expired and no longer waive anything; renew them or fix the findings.\n\n| Rule | Scope | Justification | Expired |\n|---|---|---|---|\n")
	for _, wv := range expired {
		scope := strings.Trim(wv.Host+" "+wv.Resource, " ")
		fmt.Fprintf(bw, "| %s | %s | %s | %s |\n", mdCode(wv.RuleID), mdCodeOrDash(scope), mdCell(wv.Justification), wv.Expires.UTC().Format("2006-01-02"))
	}
}

// baseline writes the comparison with the baseline report and what it
// fixed.
func (md *mdReport) baseline() {
	bw, b := md.bw, md.r.Baseline
	if b == nil {
		return
	}
	fmt.Fprintf(bw, "\n### Against the baseline\n\nCompared with %s: **%d new**, %d unchanged, %d fixed.\n", mdCode(b.Source), b.New, b.Unchanged, len(b.Fixed))
	if len(b.Fixed) == 0 {
		return
	}
	bw.WriteString("\n| Fixed | Resource | Was |\n|---|---|---|\n")
	for i, f := range b.Fixed {
		if i == md.maxRows {
			fmt.Fprintf(bw, "\n%d more fixed findings are not listed here.\n", len(b.Fixed)-i)
			break
		}
		fmt.Fprintf(bw, "| %s | %s | %s |\n", mdCode(f.RuleID), mdCodeOrDash(f.Resource), mdCell(f.Message))
	}
}

// collectorErrors writes the facts that could not be read.
func (md *mdReport) collectorErrors() {
	bw := md.bw
	if len(md.r.CollectorErrors) == 0 {
		return
	}
	bw.WriteString("\n### Collector errors\n\nSome facts could not be read; the rules that need them report error or not applicable instead of a verdict.\n\n| Collector | Path | Error |\n|---|---|---|\n")
	for _, ce := range md.r.CollectorErrors {
		fmt.Fprintf(bw, "| %s | %s | %s |\n", mdCell(ce.Collector), mdCodeOrDash(ce.Path), mdCell(ce.Error))
	}
}

// mdEscape escapes text so that Markdown renders it literally: control
// and bidi characters are written as escapes (safetext.Text), Markdown
// punctuation is backslash-escaped and HTML is written as entities. A
// backslash before a letter or a digit is kept as it is: Markdown shows it
// literally, so a safetext escape (\x1b, \u202e) and a Windows path
// (C:\Users) read the same in the source and on the rendered page.
func mdEscape(s string) string {
	s = safetext.Text(s)
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '\\':
			if i+1 < len(s) && isASCIIAlnum(s[i+1]) {
				b.WriteByte('\\')
			} else {
				b.WriteString(`\\`)
			}
		case '`', '*', '_', '[', ']', '|', '#', '~', '!', '$':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isASCIIAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// mdCell escapes text for one table cell: one line, at most 500 runes.
func mdCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if rs := []rune(s); len(rs) > 500 {
		s = string(rs[:499]) + "…"
	}
	return mdEscape(s)
}

// mdCode renders s as inline code that is also safe in a table cell.
func mdCode(s string) string {
	s = safetext.Line(strings.Join(strings.Fields(s), " "))
	if s == "" {
		return ""
	}
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return fence + pad + strings.ReplaceAll(s, "|", `\|`) + pad + fence
}

func mdCodeOrDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "–"
	}
	return mdCode(s)
}

// mdCodeBlock renders s as a fenced code block.
func mdCodeBlock(lang, s string) string {
	s = safetext.Text(s)
	fence := "```"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	return fence + lang + "\n" + s + "\n" + fence + "\n"
}

// mdLink renders a reference: a web address as a link, anything else as text.
func mdLink(ref string) string {
	ref = safetext.Line(ref)
	if (strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://")) && !strings.ContainsAny(ref, " \t\n<>\"'`") {
		return "<" + ref + ">"
	}
	return mdEscape(ref)
}

// htmlText escapes text for the raw HTML Markdown allows (<details>).
func htmlText(s string) string {
	return htmlEscaper.Replace(safetext.Line(s))
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
