package reports

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

func init() { Register("json", func(Options) Writer { return JSONWriter{} }) }

// JSONWriter writes the versioned JSON report. Results are encoded one at a
// time so memory stays flat however many there are.
type JSONWriter struct{}

// Write encodes r as indented JSON.
func (JSONWriter) Write(w io.Writer, r *Report) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	// Encode the report without its results, then splice the results in as
	// a stream: same document as json.MarshalIndent, without building it.
	head := *r
	head.Results = nil
	head.normalize()
	var hb bytes.Buffer
	henc := json.NewEncoder(&hb)
	henc.SetEscapeHTML(false) // keep "&&" and "<" readable in remediation commands
	henc.SetIndent("", "  ")
	if err := henc.Encode(head); err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	b := bytes.TrimSuffix(hb.Bytes(), []byte("\n"))
	const marker = "\n  \"results\": null,"
	i := bytes.Index(b, []byte(marker))
	if i < 0 {
		return fmt.Errorf("encode report: results field not found")
	}
	bw.Write(b[:i])
	if len(r.Results) == 0 {
		bw.WriteString("\n  \"results\": [],")
	} else {
		bw.WriteString("\n  \"results\": [")
		// One encoder and buffer for every result: the same bytes as
		// json.MarshalIndent, with far fewer allocations.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("    ", "  ")
		for n := range r.Results {
			if n > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString("\n    ")
			buf.Reset()
			if err := enc.Encode(&r.Results[n]); err != nil {
				return fmt.Errorf("encode result %d: %w", n, err)
			}
			bw.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
		}
		bw.WriteString("\n  ],")
	}
	bw.Write(b[i+len(marker):])
	bw.WriteByte('\n')
	return bw.Flush()
}

// ErrNewerSchema is wrapped by ReadJSON's error for a report written with a
// newer schemaVersion than this build understands.
var ErrNewerSchema = errors.New("report from a newer arcagent")

// ReadJSON decodes a JSON report and checks its schema version.
func ReadJSON(rd io.Reader) (*Report, error) {
	dec := json.NewDecoder(bufio.NewReader(rd))
	var r Report
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("not an arcagent JSON report: %w", err)
	}
	if r.SchemaVersion == 0 {
		return nil, fmt.Errorf("not an arcagent JSON report: schemaVersion is missing")
	}
	if r.SchemaVersion > SchemaVersion {
		return nil, fmt.Errorf("%w: its schemaVersion %d is newer than this arcagent understands (%d); upgrade arcagent", ErrNewerSchema, r.SchemaVersion, SchemaVersion)
	}
	return &r, nil
}
