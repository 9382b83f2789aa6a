package releases

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Machine is one row of a fleet inventory.
type Machine struct {
	Name       string
	Agent      string // installed agent version ("" when not given)
	Extensions []InstalledExtension
	// Line is the 1-based line where the machine starts in the file.
	Line int
	// Problem says why the row is not usable ("" when it is): a bad row
	// is reported, never skipped and never taken as current.
	Problem string
}

// InstalledExtension is an extension installed on a machine.
type InstalledExtension struct {
	Product string // PUBLISHER.TYPE
	Version string
}

// Inventory formats.
const (
	FormatJSON = "json"
	FormatCSV  = "csv"
)

// ReadInventory streams the machines of an inventory to fn, one at a time:
// the *Machine passed is reused, so fn must copy what it keeps. format is
// FormatJSON, FormatCSV or "" to tell by the first byte. A row that cannot
// be used is passed with Problem set; a file that cannot be read as an
// inventory at all is an error (CodeBadInventory) naming the line.
//
// JSON: an array of machines, or {"machines": [...]}; a machine is
// {"name", "agent", "extensions": [{"name": "PUBLISHER.TYPE", "version"}]}
// ("machine", "agentVersion"/"agent_version" and "publisher"+"type" are
// accepted too, and so is what `arcagent fleet machines list -j` prints:
// the extensions under "reportedStatus", and null for no machine). CSV: a header naming the columns machine (or name),
// agent (or agent_version) and extensions, the last holding
// NAME=VERSION pairs separated by ";".
func ReadInventory(r io.Reader, format string, fn func(*Machine) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if format == "" {
		format = sniffFormat(br)
	}
	switch format {
	case FormatJSON:
		return readJSONInventory(br, fn)
	case FormatCSV:
		return readCSVInventory(br, fn)
	}
	return newErr(CodeBadInventory, "", nil, "unknown inventory format %q: use json or csv", format)
}

func sniffFormat(br *bufio.Reader) string {
	for i := 1; i <= 4096; i++ {
		b, err := br.Peek(i)
		if err != nil {
			return FormatCSV
		}
		c := b[i-1]
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '[', '{':
			return FormatJSON
		case 'n':
			if b, err := br.Peek(i + 3); err == nil && string(b[i-1:]) == "null" {
				return FormatJSON
			}
			return FormatCSV
		case 0xEF, 0xBB, 0xBF: // UTF-8 byte order mark
			continue
		}
		return FormatCSV
	}
	return FormatCSV
}

// jsonMachine is the JSON shape of a machine (aliases included).
type jsonMachine struct {
	Name          string          `json:"name"`
	Machine       string          `json:"machine"`
	Agent         agentField      `json:"agent"`
	AgentVersion  string          `json:"agentVersion"`
	AgentVersion2 string          `json:"agent_version"`
	Extensions    []jsonExtension `json:"extensions"`
	// ReportedStatus is where `arcagent fleet machines list -j` puts the
	// extensions a machine reported; read when "extensions" is absent.
	ReportedStatus *struct {
		Extensions []jsonExtension `json:"extensions"`
	} `json:"reportedStatus"`
}

// agentField is the "agent" member: a version string or {"version": …}.
// Decoding it never fails: a wrong shape becomes the machine's problem.
type agentField struct {
	set     bool
	version string
	problem string
}

func (a *agentField) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
	case b[0] == '"':
		a.set = true
		if bytes.IndexByte(b, '\\') < 0 && len(b) >= 2 {
			a.version = string(b[1 : len(b)-1]) // no escapes: the bytes are the string
		} else if json.Unmarshal(b, &a.version) != nil {
			a.problem = "agent is not a valid JSON string"
		}
	case b[0] == '{':
		a.set = true
		var o struct {
			Version string `json:"version"`
		}
		if json.Unmarshal(b, &o) != nil {
			a.problem = "agent must be a version string or {\"version\": …}"
		}
		a.version = o.Version
	default:
		// A bare number (1.2 would lose its zeros) is not a version.
		a.set = true
		a.problem = fmt.Sprintf("agent must be a version string in quotes, not %s", truncate(string(b), 40))
	}
	return nil
}

type jsonExtension struct {
	Name      string `json:"name"`
	Publisher string `json:"publisher"`
	Type      string `json:"type"`
	Version   string `json:"version"`
}

// lineReader counts lines so that a JSON machine can be located.
type lineReader struct {
	r    io.Reader
	off  int64   // bytes read
	nl   []int64 // offsets of newlines not yet passed
	base int     // newlines already passed
}

func (l *lineReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i := 0; i < n; {
		j := bytes.IndexByte(p[i:n], '\n')
		if j < 0 {
			break
		}
		l.nl = append(l.nl, l.off+int64(i+j))
		i += j + 1
	}
	l.off += int64(n)
	return n, err
}

// lineAt is the 1-based line of byte offset off; offsets asked must not
// decrease.
func (l *lineReader) lineAt(off int64) int {
	i, _ := slices.BinarySearch(l.nl, off)
	l.base += i
	l.nl = append(l.nl[:0], l.nl[i:]...)
	return l.base + 1
}

func readJSONInventory(r *bufio.Reader, fn func(*Machine) error) error {
	lr := &lineReader{r: r}
	dec := json.NewDecoder(lr)
	bad := func(err error) error {
		line := lr.lineAt(dec.InputOffset())
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line = lr.lineAt(se.Offset)
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return newErr(CodeBadInventory, "", err, "the JSON inventory is not valid at line %d", line)
	}
	tok, err := dec.Token()
	if err != nil {
		return bad(err)
	}
	if tok == json.Delim('{') {
		// {"machines": [...]}: find the machines key, skip other members.
		found := false
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return bad(err)
			}
			if k == "machines" {
				found = true
				break
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return bad(err)
			}
		}
		if !found {
			return newErr(CodeBadInventory, "", nil, "the JSON inventory object has no \"machines\" array")
		}
		if tok, err = dec.Token(); err != nil {
			return bad(err)
		}
	}
	if tok == nil {
		// null: what `fleet machines list -j` prints for an empty fleet.
		if _, err := dec.Token(); err != io.EOF {
			return newErr(CodeBadInventory, "", nil, "the JSON inventory must be an array of machines or {\"machines\": [...]}")
		}
		return nil
	}
	if tok != json.Delim('[') {
		return newErr(CodeBadInventory, "", nil, "the JSON inventory must be an array of machines or {\"machines\": [...]}")
	}
	var jm jsonMachine
	var m Machine
	for idx := 1; dec.More(); idx++ {
		line := lr.lineAt(dec.InputOffset()) + leadingLines(dec.Buffered(), r)
		// Reuse the extensions' storage, zeroed: json fills elements in
		// place and would keep fields the next machine does not set.
		ext := jm.Extensions[:cap(jm.Extensions)]
		clear(ext)
		jm = jsonMachine{Extensions: ext[:0]}
		err := dec.Decode(&jm)
		var te *json.UnmarshalTypeError
		if err != nil && !errors.As(err, &te) {
			return bad(err)
		}
		m = Machine{Line: line, Extensions: m.Extensions[:0]}
		fillJSONMachine(&m, &jm, idx)
		if te != nil && m.Problem == "" {
			field := te.Field
			if field == "" {
				field = "the machine"
			}
			m.Problem = fmt.Sprintf("%s must be a %s, not a JSON %s", field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		if err := fn(&m); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return bad(err)
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "slice":
		return "list"
	case "struct":
		return "object"
	}
	return k
}

// leadingLines counts the newlines before the next value: in the
// decoder's buffer (after whitespace and the separating comma) and, when
// the buffer ends first, in the bytes not yet read (peeked, not consumed).
func leadingLines(buffered io.Reader, ahead *bufio.Reader) int {
	n := 0
	skip := func(c byte) bool {
		switch c {
		case '\n':
			n++
		case ' ', '\t', '\r', ',':
		default:
			return false
		}
		return true
	}
	var b [1]byte
	for {
		if _, err := buffered.Read(b[:]); err != nil {
			break
		}
		if !skip(b[0]) {
			return n
		}
	}
	for i := 1; ; i++ {
		p, err := ahead.Peek(i)
		if err != nil || !skip(p[i-1]) {
			return n
		}
	}
}

func fillJSONMachine(m *Machine, jm *jsonMachine, idx int) {
	m.Name = strings.TrimSpace(firstNonEmpty(jm.Name, jm.Machine))
	if jm.Agent.set {
		m.Agent, m.Problem = strings.TrimSpace(jm.Agent.version), jm.Agent.problem
	} else {
		m.Agent = strings.TrimSpace(firstNonEmpty(jm.AgentVersion, jm.AgentVersion2))
	}
	if m.Name == "" && m.Problem == "" {
		m.Problem = "the machine has no name"
	}
	if m.Name == "" {
		m.Name = fmt.Sprintf("#%d", idx)
	}
	exts := jm.Extensions
	if len(exts) == 0 && jm.ReportedStatus != nil {
		exts = jm.ReportedStatus.Extensions
	}
	for i, x := range exts {
		p := ProductName(x.Name)
		if p == "" && x.Publisher != "" && x.Type != "" {
			p = ExtensionProduct(x.Publisher, x.Type)
		}
		if p == "" {
			if m.Problem == "" {
				m.Problem = fmt.Sprintf("extension %d has no name (PUBLISHER.TYPE)", i+1)
			}
			continue
		}
		m.Extensions = append(m.Extensions, InstalledExtension{Product: p, Version: strings.TrimSpace(x.Version)})
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if strings.TrimSpace(x) != "" {
			return x
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func readCSVInventory(r io.Reader, fn func(*Machine) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	cr.Comment = '#'
	head, err := cr.Read()
	if err == io.EOF {
		return newErr(CodeBadInventory, "", nil, "the CSV inventory is empty: it needs a header machine,agent,extensions")
	}
	if err != nil {
		return newErr(CodeBadInventory, "", err, "the CSV inventory header cannot be read")
	}
	col := map[string]int{"machine": -1, "agent": -1, "extensions": -1}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch h {
		case "machine", "name", "machine_name", "hostname":
			col["machine"] = i
		case "agent", "agent_version", "agentversion", "version":
			col["agent"] = i
		case "extensions":
			col["extensions"] = i
		}
	}
	if col["machine"] < 0 || col["agent"] < 0 {
		return newErr(CodeBadInventory, "", nil, "the CSV inventory header %q must name the columns machine and agent (and extensions)", strings.Join(head, ","))
	}
	var m Machine
	for idx := 1; ; idx++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		line := 0
		if err == nil && len(rec) > 0 {
			line, _ = cr.FieldPos(0)
		}
		m = Machine{Line: line, Extensions: m.Extensions[:0]}
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return newErr(CodeBadInventory, "", err, "the CSV inventory cannot be read at line %d", line)
		}
		if pe != nil {
			if pe.StartLine > 0 {
				m.Line = pe.StartLine
			}
			m.Name = fmt.Sprintf("#%d", idx)
			m.Problem = "not valid CSV: " + pe.Err.Error()
			if e := fn(&m); e != nil {
				return e
			}
			continue
		}
		get := func(k string) string {
			if i := col[k]; i >= 0 && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		m.Name, m.Agent = get("machine"), get("agent")
		if len(rec) != len(head) {
			m.Problem = fmt.Sprintf("the row has %d fields, the header %d", len(rec), len(head))
		}
		if m.Name == "" {
			if m.Problem == "" {
				m.Problem = "the machine has no name"
			}
			m.Name = fmt.Sprintf("#%d", idx)
		}
		for pair := range strings.SplitSeq(get("extensions"), ";") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			name, ver, ok := strings.Cut(pair, "=")
			if !ok {
				name, ver, ok = strings.Cut(pair, "@")
			}
			name = ProductName(name)
			if !ok || name == "" {
				if m.Problem == "" {
					m.Problem = fmt.Sprintf("extension %q is not NAME=VERSION", truncate(pair, 60))
				}
				continue
			}
			m.Extensions = append(m.Extensions, InstalledExtension{Product: name, Version: strings.TrimSpace(ver)})
		}
		if err := fn(&m); err != nil {
			return err
		}
	}
}
