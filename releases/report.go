package releases

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/arcagent/arcagent/internal/table"
	"github.com/arcagent/arcagent/reports"
)

// RowWriter writes a fleet currency report as it is computed: Begin once,
// Row for every verdict, End with the summary. The table, JSON, CSV,
// Markdown and SARIF writers hold a bounded amount of memory whatever the
// number of rows; JUnit and HTML, which render one whole document like the
// audit's, keep every result until End.
type RowWriter interface {
	Begin(h *Header) error
	Row(r *Row) error
	End(s *Summary) error
}

// WriterOptions shape the human-readable writers.
type WriterOptions struct {
	// All lists current results too in table and Markdown (JSON, CSV,
	// JUnit and HTML always hold every result; SARIF only findings).
	All bool
	// Width is the width the table fits (0: unlimited).
	Width int
}

// Formats are the fleet currency report formats.
func Formats() []string {
	return []string{"table", "json", "csv", "markdown", "sarif", "junit", "html"}
}

// CheckFormat says whether format is a fleet currency format (nil) or not:
// the error is the one every -o parser gives (reports.UnknownFormat) and
// carries no code, for the caller to give it one.
func CheckFormat(format string) error {
	if format == "md" || slices.Contains(Formats(), format) {
		return nil
	}
	return reports.UnknownFormat(format, Formats())
}

// NewWriter returns the writer of format to w.
func NewWriter(format string, w io.Writer, o WriterOptions) (RowWriter, error) {
	if err := CheckFormat(format); err != nil {
		return nil, newErr(CodeBadOutput, "", nil, "%s", err.Error())
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case "table":
		return &tableWriter{w: bw, o: o}, nil
	case "json":
		return &jsonWriter{w: bw}, nil
	case "csv":
		return &csvWriter{bw: bw, w: csv.NewWriter(bw)}, nil
	case "markdown", "md":
		return &markdownWriter{w: bw, all: o.All}, nil
	case "sarif":
		return &sarifWriter{w: w}, nil
	case "junit":
		return &reportWriter{w: w, wr: reports.JUnitWriter{}}, nil
	}
	return &reportWriter{w: w, wr: reports.HTMLWriter{}}, nil
}

// ---- the currency rules, in the audit's report model ----

// Rule ids of the fleet currency findings (SARIF, JUnit, HTML).
const (
	RuleBehind      = "ARC-CUR-001"
	RuleUnsupported = "ARC-CUR-002"
	RuleUnknown     = "ARC-CUR-003"
)

// Rules are the fleet currency rules: a current version passes
// RuleBehind.
var Rules = []reports.Rule{
	{ID: RuleBehind, Title: "An agent or extension version is behind the latest release", Severity: reports.SeverityLow, Profiles: []string{"version-currency"},
		Rationale:   "Releases after the installed one carry fixes the machine does not have.",
		Remediation: "Update to the latest release: upgrade the agent package, or update the extension through the machine's desired state in the control plane."},
	{ID: RuleUnsupported, Title: "An agent or extension version is out of support", Severity: reports.SeverityHigh, Profiles: []string{"version-currency"},
		Rationale:   "Versions outside the support policy receive no security fixes.",
		Remediation: "Upgrade now: versions outside the support policy receive no security fixes."},
	{ID: RuleUnknown, Title: "An inventory row or version cannot be read", Severity: reports.SeverityMedium, Profiles: []string{"version-currency"},
		Rationale:   "A version that cannot be read is never taken as supported.",
		Remediation: "Fix the inventory row: the machine name and versions such as 1.2.3, v1.2.3 or 1.28.02260.736."},
}

func ruleOf(state string) *reports.Rule {
	switch state {
	case StateBehind, StateCurrent:
		return &Rules[0]
	case StateUnsupported:
		return &Rules[1]
	}
	return &Rules[2]
}

// Result is the row in the audit's report model: the finding of its rule
// (a current version passes RuleBehind), located at the row's inventory
// line, with the fingerprint of rule, machine and product.
func (r *Row) Result(inventory string) reports.Result {
	return r.result(inventory, make(map[string]any, 6))
}

// result is Result with ev as the evidence map (a writer that encodes the
// result at once reuses one).
func (r *Row) result(inventory string, ev map[string]any) reports.Result {
	ev["machine"], ev["product"], ev["installed"], ev["latest"], ev["state"], ev["behind"] = r.Machine, r.Product, r.Installed, r.Latest, r.State, r.Behind
	ru := ruleOf(r.State)
	st := reports.StatusFail
	if !r.Finding() {
		st = reports.StatusPass
	}
	msg := r.Machine + ": " + r.Product + " " + r.Installed + " is " + r.State + ": " + r.Reason
	if r.Product == "-" {
		msg = r.Machine + ": " + r.Reason
	}
	return reports.Result{
		RuleID: ru.ID, Severity: ru.Severity, Status: st, Message: msg,
		Resource:    r.Machine + " " + r.Product,
		Location:    reports.Location{Path: filepath.ToSlash(inventory), Line: max(r.Line, 1)},
		Evidence:    ev,
		Fingerprint: reports.Fingerprint(ru.ID, r.Machine, r.Product),
	}
}

// automationID is where GitHub keeps the alerts of one inventory.
func automationID(h *Header) string {
	return "arcagent/fleet-currency/" + filepath.Base(h.Inventory) + "/"
}

// ---- table ----

// tableBlock is how many rows are aligned together: memory stays flat and
// columns line up within each block.
const tableBlock = 1000

type tableWriter struct {
	w     *bufio.Writer
	o     WriterOptions
	rows  [][]string
	cells []string // the rows' storage, reused block after block
	wrote bool
	buf   []byte // the rendered block, reused
}

var tableHeader = []string{"MACHINE", "PRODUCT", "INSTALLED", "LATEST", "STATE", "BEHIND", "REASON"}

func (t *tableWriter) Begin(h *Header) error {
	_, err := fmt.Fprintf(t.w, "Fleet version currency: %s against %s\n\n", table.OneLine(h.Inventory), table.OneLine(h.Source))
	return err
}

func (t *tableWriter) Row(r *Row) error {
	if !t.o.All && !r.Finding() {
		return nil
	}
	behind := "-"
	if r.State == StateBehind || r.State == StateUnsupported {
		behind = strconv.Itoa(r.Behind)
	}
	if t.cells == nil {
		t.cells = make([]string, 0, tableBlock*len(tableHeader))
	}
	n := len(t.cells)
	t.cells = append(t.cells, dash(r.Machine), dash(r.Product), dash(r.Installed), dash(r.Latest), r.State, behind, r.Reason)
	t.rows = append(t.rows, t.cells[n:len(t.cells):len(t.cells)])
	if len(t.rows) >= tableBlock {
		return t.flush()
	}
	return nil
}

// flush writes the buffered rows, the header above the first block.
func (t *tableWriter) flush() error {
	if len(t.rows) == 0 {
		return nil
	}
	t.buf = table.Append(t.buf[:0], tableHeader, t.rows, table.Options{Width: t.o.Width, Wrap: "REASON", KeepEmpty: true, NoHeader: t.wrote})
	t.wrote = true
	clear(t.rows)
	clear(t.cells)
	t.rows, t.cells = t.rows[:0], t.cells[:0]
	_, err := t.w.Write(t.buf)
	return err
}

func (t *tableWriter) End(s *Summary) error {
	if err := t.flush(); err != nil {
		return err
	}
	if !t.wrote {
		fmt.Fprintln(t.w, "No machine is behind or out of support.")
	}
	fmt.Fprintln(t.w)
	sum := make([][]string, 0, len(s.Products))
	for _, p := range s.Products {
		sum = append(sum, []string{p.Product, dash(p.Latest), strconv.Itoa(p.Current), strconv.Itoa(p.Behind), strconv.Itoa(p.Unsupported), strconv.Itoa(p.Unknown)})
	}
	table.Render(t.w, []string{"PRODUCT", "LATEST", "CURRENT", "BEHIND", "UNSUPPORTED", "UNKNOWN"}, sum, table.Options{Width: t.o.Width, KeepEmpty: true})
	fmt.Fprintf(t.w, "\n%s\n", totals(s))
	if n := untrackedCount(s); n > 0 {
		fmt.Fprintf(t.w, "%d installed extensions are not tracked by the release source: %s\n", n, table.OneLine(untrackedList(s)))
	}
	return t.w.Flush()
}

// totals is the summary line of table and Markdown.
func totals(s *Summary) string {
	line := fmt.Sprintf("%d machines, %d results: %d current, %d behind, %d unsupported, %d unknown", s.Machines, s.Results, s.Current, s.Behind, s.Unsupported, s.Unknown)
	if s.BadRows > 0 {
		line += fmt.Sprintf(" (%d bad inventory rows)", s.BadRows)
	}
	return line
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func untrackedCount(s *Summary) int {
	n := s.UntrackedOther
	for _, c := range s.Untracked {
		n += c
	}
	return n
}

func untrackedList(s *Summary) string {
	names := make([]string, 0, len(s.Untracked))
	for p := range s.Untracked {
		names = append(names, p)
	}
	slices.Sort(names)
	if len(names) > 10 {
		names = append(names[:10], fmt.Sprintf("and %d more", len(s.Untracked)-10))
	}
	return strings.Join(names, ", ")
}

// ---- JSON ----

// JSONSchemaVersion is the version of the fleet currency JSON report.
const JSONSchemaVersion = 1

type jsonWriter struct {
	w     *bufio.Writer
	enc   *json.Encoder
	first bool
}

func (j *jsonWriter) Begin(h *Header) error {
	head, err := json.Marshal(struct {
		SchemaVersion int    `json:"schemaVersion"`
		Kind          string `json:"kind"`
		*Header
	}{JSONSchemaVersion, "fleet-currency", h})
	if err != nil {
		return err
	}
	j.w.Write(head[:len(head)-1])
	_, err = j.w.WriteString(`,"results":[`)
	j.first = true
	j.enc = json.NewEncoder(j.w)
	j.enc.SetEscapeHTML(false)
	return err
}

// Row writes one result; the encoder ends it with the newline that
// separates it from the next.
func (j *jsonWriter) Row(r *Row) error {
	if j.first {
		j.w.WriteByte('\n')
	} else {
		j.w.WriteByte(',')
	}
	j.first = false
	return j.enc.Encode(r)
}

func (j *jsonWriter) End(s *Summary) error {
	sum, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if !j.first {
		j.w.WriteString("]")
	} else {
		j.w.WriteString("\n]")
	}
	j.w.WriteString(",\"summary\":")
	j.w.Write(sum)
	j.w.WriteString("}\n")
	return j.w.Flush()
}

// ---- CSV ----

type csvWriter struct {
	bw  *bufio.Writer
	w   *csv.Writer
	rec []string
}

func (c *csvWriter) Begin(*Header) error {
	return c.w.Write([]string{"machine", "line", "product", "installed", "latest", "state", "behind", "supported", "current", "min_supported", "released_at", "support_window", "reason"})
}

func (c *csvWriter) Row(r *Row) error {
	safe := reports.CSVSafe
	c.rec = append(c.rec[:0], safe(r.Machine), strconv.Itoa(r.Line), safe(r.Product), safe(r.Installed), r.Latest, r.State,
		strconv.Itoa(r.Behind), strconv.FormatBool(r.Supported), strconv.FormatBool(r.Current), r.MinSupported, r.ReleasedAt, r.SupportWindow, safe(r.Reason))
	return c.w.Write(c.rec)
}

func (c *csvWriter) End(*Summary) error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}

// ---- Markdown ----

// maxMarkdownRows bounds the findings listed in Markdown (a CI step
// summary or PR comment); the rest are counted.
const maxMarkdownRows = 1000

type markdownWriter struct {
	w    *bufio.Writer
	all  bool
	h    Header
	rows []Row
	more int
}

func (m *markdownWriter) Begin(h *Header) error { m.h = *h; return nil }

func (m *markdownWriter) Row(r *Row) error {
	if !m.all && !r.Finding() {
		return nil
	}
	if len(m.rows) < maxMarkdownRows {
		m.rows = append(m.rows, *r)
	} else {
		m.more++
	}
	return nil
}

func (m *markdownWriter) End(s *Summary) error {
	w := m.w
	md := reports.MarkdownCell
	fmt.Fprintf(w, "# Fleet version currency\n\n")
	fmt.Fprintf(w, "Inventory %s checked against %s on %s.\n\n", reports.MarkdownCode(m.h.Inventory), md(m.h.Source), m.h.GeneratedAt.UTC().Format(time.RFC3339))
	verdict := "✅ passed"
	if s.Gate {
		verdict = "❌ failed"
	}
	if m.h.FailOn != "" {
		fmt.Fprintf(w, "**%s** (`--fail-on %s`): ", verdict, m.h.FailOn)
	}
	fmt.Fprintf(w, "%d machines, %d results: **%d current**, **%d behind**, **%d unsupported**, **%d unknown**", s.Machines, s.Results, s.Current, s.Behind, s.Unsupported, s.Unknown)
	if s.BadRows > 0 {
		fmt.Fprintf(w, " (%d bad inventory rows)", s.BadRows)
	}
	fmt.Fprint(w, ".\n\n| Product | Latest | Current | Behind | Unsupported | Unknown |\n|---|---|---:|---:|---:|---:|\n")
	for _, p := range s.Products {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %d |\n", md(p.Product), md(p.Latest), p.Current, p.Behind, p.Unsupported, p.Unknown)
	}
	if n := untrackedCount(s); n > 0 {
		fmt.Fprintf(w, "\n%d installed extensions are not tracked by the release source: %s.\n", n, md(untrackedList(s)))
	}
	if len(m.rows) > 0 {
		title := "Findings"
		if m.all {
			title = "Results"
		}
		fmt.Fprintf(w, "\n## %s\n\n| Machine | Product | Installed | Latest | State | Behind | Reason |\n|---|---|---|---|---|---:|---|\n", title)
		for _, r := range m.rows {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %d | %s |\n", md(r.Machine), md(r.Product), md(r.Installed), md(r.Latest), r.State, r.Behind, md(r.Reason))
		}
		if m.more > 0 {
			fmt.Fprintf(w, "\n%d more not listed: see the JSON or CSV report.\n", m.more)
		}
	}
	return w.Flush()
}

// ---- SARIF: streamed through reports.SARIFStream ----

type sarifWriter struct {
	w   io.Writer
	max int // tests: 0 is reports.MaxSARIFResults
	h   Header
	s   *reports.SARIFStream
	ev  map[string]any // the evidence of each result, reused
}

func (s *sarifWriter) Begin(h *Header) error {
	s.h = *h
	st, err := reports.NewSARIFStream(s.w, reports.SARIFRun{
		Tool: reports.Tool{Name: h.Tool, Version: h.Version}, Rules: Rules, AutomationID: automationID(h), MaxResults: s.max})
	s.s = st
	return err
}

func (s *sarifWriter) Row(r *Row) error {
	if !r.Finding() {
		return nil
	}
	if s.ev == nil {
		s.ev = make(map[string]any, 6)
	}
	res := r.result(s.h.Inventory, s.ev)
	return s.s.Result(r.Machine, &res)
}

func (s *sarifWriter) End(sum *Summary) error {
	var notes []reports.SARIFNote
	if n := untrackedCount(sum); n > 0 {
		notes = append(notes, reports.SARIFNote{Level: "note", Descriptor: "arcagent/untracked-products",
			Text: fmt.Sprintf("%d installed extensions are not tracked by the release source: %s", n, untrackedList(sum))})
	}
	return s.s.Close(notes, map[string]any{"inventory": filepath.ToSlash(s.h.Inventory), "source": s.h.Source, "failOn": s.h.FailOn, "summary": sum})
}

// ---- JUnit and HTML: the audit's writers on the results as a report ----

type reportWriter struct {
	w         io.Writer
	wr        reports.Writer
	inventory string
	r         reports.Report
}

func (rw *reportWriter) Begin(h *Header) error {
	failOn := reports.SeverityCritical // no --fail-on: nothing gates
	switch h.FailOn {
	case "behind":
		failOn = reports.SeverityLow
	case "unsupported":
		failOn = reports.SeverityHigh
	}
	rw.inventory = h.Inventory
	rw.r = reports.Report{
		SchemaVersion: reports.SchemaVersion,
		Tool:          reports.Tool{Name: h.Tool, Version: h.Version},
		StartedAt:     h.GeneratedAt,
		Target:        reports.Target{Kind: "fleet", Host: filepath.Base(h.Inventory), Note: "version currency against " + h.Source},
		Profiles:      []string{"version-currency"},
		FailOn:        failOn,
		Rules:         Rules,
	}
	return nil
}

func (rw *reportWriter) Row(r *Row) error {
	rw.r.Results = append(rw.r.Results, r.Result(rw.inventory))
	return nil
}

func (rw *reportWriter) End(s *Summary) error {
	rw.r.DurationMs = s.DurationMs
	rw.r.Summarize()
	rw.r.Summary.Gate = s.Gate // unknown versions gate at either level
	rw.r.SortResults()
	if n := untrackedCount(s); n > 0 {
		rw.r.Target.Note += fmt.Sprintf("; %d installed extensions are not tracked by the release source: %s", n, untrackedList(s))
	}
	return rw.wr.Write(rw.w, &rw.r)
}
