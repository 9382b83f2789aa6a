package releases

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/arcagent/arcagent/reports"
)

// RowWriter writes a fleet currency report as it is computed: Begin once,
// Row for every verdict, End with the summary. Writers hold a bounded
// amount of memory whatever the number of rows.
type RowWriter interface {
	Begin(h *Header) error
	Row(r *Row) error
	End(s *Summary) error
}

// WriterOptions shape the human-readable writers.
type WriterOptions struct {
	// All lists current results too in table and Markdown (JSON and CSV
	// always hold every result; SARIF only findings).
	All bool
}

// Formats are the fleet currency report formats.
func Formats() []string { return []string{"table", "json", "csv", "markdown", "sarif"} }

// NewWriter returns the writer of format to w.
func NewWriter(format string, w io.Writer, o WriterOptions) (RowWriter, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case "table":
		return &tableWriter{w: bw, all: o.All}, nil
	case "json":
		return &jsonWriter{w: bw}, nil
	case "csv":
		return &csvWriter{bw: bw, w: csv.NewWriter(bw)}, nil
	case "markdown", "md":
		return &markdownWriter{w: bw, all: o.All}, nil
	case "sarif":
		return &sarifWriter{w: bw, max: reports.MaxSARIFResults}, nil
	}
	return nil, newErr(CodeBadOutput, nil, "", nil, "unknown format %q (known: %s)", format, strings.Join(Formats(), ", "))
}

// ---- table ----

// tableBlock is how many rows are aligned together: memory stays flat and
// columns line up within each block.
const tableBlock = 1000

type tableWriter struct {
	w      *bufio.Writer
	all    bool
	rows   [][]string
	cells  []string // the rows' storage, reused block after block
	widths []int    // scratch of writeAligned
	wrote  bool
}

var tableHeader = []string{"MACHINE", "PRODUCT", "INSTALLED", "LATEST", "STATE", "BEHIND", "REASON"}

func (t *tableWriter) Begin(h *Header) error {
	_, err := fmt.Fprintf(t.w, "Fleet version currency: %s against %s\n\n", oneLine(h.Inventory), oneLine(h.Source))
	return err
}

func (t *tableWriter) Row(r *Row) error {
	if !t.all && !r.Finding() {
		return nil
	}
	if !t.wrote && len(t.rows) == 0 {
		t.rows = append(t.rows, tableHeader)
	}
	behind := "-"
	if r.State == StateBehind || r.State == StateUnsupported {
		behind = strconv.Itoa(r.Behind)
	}
	if t.cells == nil {
		t.cells = make([]string, 0, tableBlock*len(tableHeader))
	}
	n := len(t.cells)
	t.cells = append(t.cells, cell(r.Machine), cell(r.Product), cell(r.Installed), cell(r.Latest), r.State, behind, oneLine(r.Reason))
	t.rows = append(t.rows, t.cells[n:len(t.cells):len(t.cells)])
	if len(t.rows) >= tableBlock {
		return t.flush()
	}
	return nil
}

// flush writes the buffered rows aligned on their widest cells.
func (t *tableWriter) flush() error {
	writeAligned(t.w, t.rows, &t.widths)
	t.wrote = t.wrote || len(t.rows) > 0
	clear(t.rows)
	clear(t.cells)
	t.rows, t.cells = t.rows[:0], t.cells[:0]
	return nil
}

func writeAligned(w *bufio.Writer, rows [][]string, scratch *[]int) {
	var widths []int
	n := 0
	for _, r := range rows {
		n += len(r)
	}
	cw := (*scratch)[:0] // every cell's width, counted once
	defer func() { *scratch = cw }()
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			cw = append(cw, utf8.RuneCountInString(c))
			widths[i] = max(widths[i], cw[len(cw)-1])
		}
	}
	const pad = "                                                                "
	k := 0
	for _, r := range rows {
		for i, c := range r {
			w.WriteString(c)
			k++
			if i == len(r)-1 {
				break
			}
			for n := widths[i] - cw[k-1] + 2; n > 0; n -= len(pad) {
				w.WriteString(pad[:min(n, len(pad))])
			}
		}
		w.WriteByte('\n')
	}
}

func (t *tableWriter) End(s *Summary) error {
	t.flush()
	if !t.wrote {
		fmt.Fprintln(t.w, "No machine is behind or out of support.")
	}
	fmt.Fprintln(t.w)
	sum := [][]string{{"PRODUCT", "LATEST", "CURRENT", "BEHIND", "UNSUPPORTED", "UNKNOWN"}}
	for _, p := range s.Products {
		sum = append(sum, []string{p.Product, cell(p.Latest), strconv.Itoa(p.Current), strconv.Itoa(p.Behind), strconv.Itoa(p.Unsupported), strconv.Itoa(p.Unknown)})
	}
	writeAligned(t.w, sum, &t.widths)
	fmt.Fprintf(t.w, "\n%d machines, %d results: %d current, %d behind, %d unsupported, %d unknown", s.Machines, s.Results, s.Current, s.Behind, s.Unsupported, s.Unknown)
	if s.BadRows > 0 {
		fmt.Fprintf(t.w, " (%d bad inventory rows)", s.BadRows)
	}
	fmt.Fprintln(t.w)
	if n := untrackedCount(s); n > 0 {
		fmt.Fprintf(t.w, "%d installed extensions are not tracked by the release source: %s\n", n, untrackedList(s))
	}
	return t.w.Flush()
}

func cell(s string) string {
	if s == "" {
		return "-"
	}
	return oneLine(s)
}

// oneLine replaces control characters (an inventory may hold any) with
// spaces, so that a row stays one line.
func oneLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return strings.Map(func(r rune) rune {
				if r < ' ' || r == 0x7f {
					return ' '
				}
				return r
			}, s)
		}
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
	sort.Strings(names)
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
	buf   []byte
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
	return err
}

func (j *jsonWriter) Row(r *Row) error {
	b := j.buf[:0]
	if !j.first {
		b = append(b, ',')
	}
	j.first = false
	b = append(b, "\n{\"machine\":"...)
	b = appendJSONString(b, r.Machine)
	b = append(b, `,"line":`...)
	b = strconv.AppendInt(b, int64(r.Line), 10)
	b = append(b, `,"product":`...)
	b = appendJSONString(b, r.Product)
	b = append(b, `,"installed":`...)
	b = appendJSONString(b, r.Installed)
	b = append(b, `,"latest":`...)
	b = appendJSONString(b, r.Latest)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, r.State)
	b = append(b, `,"behind":`...)
	b = strconv.AppendInt(b, int64(r.Behind), 10)
	b = append(b, `,"supported":`...)
	b = strconv.AppendBool(b, r.Supported)
	b = append(b, `,"current":`...)
	b = strconv.AppendBool(b, r.Current)
	b = append(b, `,"minSupported":`...)
	b = appendJSONString(b, r.MinSupported)
	b = append(b, `,"releasedAt":`...)
	b = appendJSONString(b, r.ReleasedAt)
	b = append(b, `,"supportWindow":`...)
	b = appendJSONString(b, r.SupportWindow)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, r.Reason)
	b = append(b, '}')
	j.buf = b
	_, err := j.w.Write(b)
	return err
}

func (j *jsonWriter) End(s *Summary) error {
	sum, err := json.Marshal(s)
	if err != nil {
		return err
	}
	j.w.WriteString("\n],\"summary\":")
	j.w.Write(sum)
	j.w.WriteString("}\n")
	return j.w.Flush()
}

// appendJSONString appends s as a JSON string (invalid UTF-8 becomes
// U+FFFD, like encoding/json).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
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
	c.rec = append(c.rec[:0], csvSafe(r.Machine), strconv.Itoa(r.Line), csvSafe(r.Product), csvSafe(r.Installed), r.Latest, r.State,
		strconv.Itoa(r.Behind), strconv.FormatBool(r.Supported), strconv.FormatBool(r.Current), r.MinSupported, r.ReleasedAt, r.SupportWindow, csvSafe(r.Reason))
	return c.w.Write(c.rec)
}

func (c *csvWriter) End(*Summary) error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}

// csvSafe defuses spreadsheet formulas in values taken from the inventory.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) && s != "-" {
		return "'" + s
	}
	return s
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
	fmt.Fprintf(w, "# Fleet version currency\n\n")
	fmt.Fprintf(w, "Inventory `%s` checked against %s on %s.\n\n", mdCode(m.h.Inventory), mdText(m.h.Source), m.h.GeneratedAt.UTC().Format(time.RFC3339))
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
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %d |\n", mdText(p.Product), mdText(p.Latest), p.Current, p.Behind, p.Unsupported, p.Unknown)
	}
	if n := untrackedCount(s); n > 0 {
		fmt.Fprintf(w, "\n%d installed extensions are not tracked by the release source: %s.\n", n, mdText(untrackedList(s)))
	}
	if len(m.rows) > 0 {
		title := "Findings"
		if m.all {
			title = "Results"
		}
		fmt.Fprintf(w, "\n## %s\n\n| Machine | Product | Installed | Latest | State | Behind | Reason |\n|---|---|---|---|---|---:|---|\n", title)
		for _, r := range m.rows {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %d | %s |\n", mdText(r.Machine), mdText(r.Product), mdText(r.Installed), mdText(r.Latest), r.State, r.Behind, mdText(r.Reason))
		}
		if m.more > 0 {
			fmt.Fprintf(w, "\n%d more not listed: see the JSON or CSV report.\n", m.more)
		}
	}
	return w.Flush()
}

func mdText(s string) string {
	r := strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`)
	return r.Replace(s)
}

func mdCode(s string) string { return strings.ReplaceAll(oneLine(s), "`", "'") }

// ---- SARIF ----

// Rule ids of the fleet currency SARIF report.
const (
	RuleBehind      = "ARC-CUR-001"
	RuleUnsupported = "ARC-CUR-002"
	RuleUnknown     = "ARC-CUR-003"
)

type curRule struct {
	id, name, title, help string
	sev                   reports.Severity
}

var curRules = []curRule{
	{RuleBehind, "VersionBehind", "An agent or extension version is behind the latest release",
		"Update to the latest release: upgrade the agent package, or update the extension through the machine's desired state in the control plane.", reports.SeverityLow},
	{RuleUnsupported, "VersionUnsupported", "An agent or extension version is out of support",
		"Versions outside the support policy receive no security fixes: upgrade now.", reports.SeverityHigh},
	{RuleUnknown, "VersionUnknown", "An inventory row or version cannot be read",
		"Fix the inventory row: the machine name and versions such as 1.2.3, v1.2.3 or 1.28.02260.736.", reports.SeverityMedium},
}

func ruleOf(state string) int {
	switch state {
	case StateBehind:
		return 0
	case StateUnsupported:
		return 1
	}
	return 2
}

type sarifWriter struct {
	w       *bufio.Writer
	h       Header
	uri     string
	max     int
	n       int
	omitted int
	start   time.Time
	enc     *json.Encoder
	res     sarifRes // reused
}

func (s *sarifWriter) Begin(h *Header) error {
	s.h, s.start = *h, time.Now().UTC()
	s.uri = filepath.ToSlash(h.Inventory)
	type rule struct {
		ID               string            `json:"id"`
		Name             string            `json:"name"`
		ShortDescription map[string]string `json:"shortDescription"`
		Help             map[string]string `json:"help"`
		Default          map[string]string `json:"defaultConfiguration"`
		Properties       map[string]any    `json:"properties"`
	}
	rules := make([]rule, len(curRules))
	for i, r := range curRules {
		rules[i] = rule{ID: r.id, Name: r.name, ShortDescription: map[string]string{"text": r.title}, Help: map[string]string{"text": r.help},
			Default:    map[string]string{"level": sarifLevel(r.sev)},
			Properties: map[string]any{"security-severity": reports.SecuritySeverity(r.sev), "severity": r.sev, "tags": []string{"security", "version-currency"}, "precision": "very-high"}}
	}
	driver := map[string]any{"name": h.Tool, "version": h.Version, "informationUri": "https://github.com/arcagent/arcagent", "rules": rules}
	d, err := json.Marshal(driver)
	if err != nil {
		return err
	}
	auto, _ := json.Marshal("arcagent/fleet-currency/" + filepath.Base(h.Inventory) + "/")
	fmt.Fprintf(s.w, `{"$schema":"https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json","version":"2.1.0","runs":[{"tool":{"driver":%s},"automationDetails":{"id":%s},"results":[`, d, auto)
	s.enc = json.NewEncoder(s.w)
	s.enc.SetEscapeHTML(false)
	return nil
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifLoc struct {
	PhysicalLocation struct {
		ArtifactLocation struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
		Region struct {
			StartLine int `json:"startLine"`
		} `json:"region"`
	} `json:"physicalLocation"`
}

type sarifRes struct {
	RuleID              string      `json:"ruleId"`
	RuleIndex           int         `json:"ruleIndex"`
	Level               string      `json:"level"`
	Message             sarifText   `json:"message"`
	Locations           [1]sarifLoc `json:"locations"`
	PartialFingerprints struct {
		V1 string `json:"arcagentFingerprint/v1"`
	} `json:"partialFingerprints"`
	Properties struct {
		Machine   string `json:"machine"`
		Product   string `json:"product"`
		Installed string `json:"installed"`
		Latest    string `json:"latest"`
		State     string `json:"state"`
		Behind    int    `json:"behind"`
	} `json:"properties"`
}

func (s *sarifWriter) Row(r *Row) error {
	if !r.Finding() {
		return nil
	}
	if s.n >= s.max {
		s.omitted++
		return nil
	}
	if s.n > 0 {
		s.w.WriteByte(',')
	}
	s.n++
	i := ruleOf(r.State)
	ru := curRules[i]
	res := &s.res
	*res = sarifRes{RuleID: ru.id, RuleIndex: i, Level: sarifLevel(ru.sev)}
	res.Message.Text = r.Machine + ": " + r.Product + " " + r.Installed + " is " + r.State + ": " + r.Reason
	if r.Product == "-" {
		res.Message.Text = r.Machine + ": " + r.Reason
	}
	loc := &res.Locations[0].PhysicalLocation
	loc.ArtifactLocation.URI = s.uri
	loc.Region.StartLine = max(r.Line, 1)
	res.PartialFingerprints.V1 = reports.Fingerprint(ru.id, r.Machine, r.Product)
	p := &res.Properties
	p.Machine, p.Product, p.Installed, p.Latest, p.State, p.Behind = r.Machine, r.Product, r.Installed, r.Latest, r.State, r.Behind
	return s.enc.Encode(res)
}

func (s *sarifWriter) End(sum *Summary) error {
	notes := []map[string]any{}
	if s.omitted > 0 {
		notes = append(notes, map[string]any{"level": "warning", "message": map[string]string{"text": fmt.Sprintf("%d findings were left out: GitHub code scanning accepts at most %d results per run; see the JSON or CSV report", s.omitted, s.max)}})
	}
	if n := untrackedCount(sum); n > 0 {
		notes = append(notes, map[string]any{"level": "note", "message": map[string]string{"text": fmt.Sprintf("%d installed extensions are not tracked by the release source: %s", n, untrackedList(sum))}})
	}
	inv := []map[string]any{{"executionSuccessful": true, "startTimeUtc": s.start.Format(time.RFC3339), "endTimeUtc": time.Now().UTC().Format(time.RFC3339), "toolExecutionNotifications": notes}}
	ib, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	sb, err := json.Marshal(sum)
	if err != nil {
		return err
	}
	props, err := json.Marshal(map[string]any{"inventory": s.uri, "source": s.h.Source, "failOn": s.h.FailOn, "summary": json.RawMessage(sb)})
	if err != nil {
		return err
	}
	fmt.Fprintf(s.w, `],"invocations":%s,"properties":%s}]}`+"\n", ib, props)
	return s.w.Flush()
}

func sarifLevel(s reports.Severity) string {
	switch s {
	case reports.SeverityCritical, reports.SeverityHigh:
		return "error"
	case reports.SeverityMedium:
		return "warning"
	}
	return "note"
}
