package reports

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/arcagent/arcagent/internal/safetext"
)

func init() { Register("csv", func(Options) Writer { return CSVWriter{} }) }

// CSVWriter writes one row per rule result (passes included, like the
// JSON report) for spreadsheets and ad-hoc analysis: host, rule, severity,
// status, resource, location, message, reason, fingerprint, waiver and
// baseline state. Text from the host is escaped and defused with CSVSafe. Rows are
// written one at a time, so memory stays flat.
type CSVWriter struct{}

// CSVHeader is the header row of the audit CSV report.
var CSVHeader = []string{"host", "rule_id", "severity", "status", "resource", "path", "line", "message", "reason", "fingerprint", "waiver", "waiver_expires", "baseline"}

// Write renders r as CSV.
func (CSVWriter) Write(w io.Writer, r *Report) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := csv.NewWriter(bw)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	host := CSVSafe(r.Target.Host)
	rec := make([]string, len(CSVHeader))
	for i := range r.Results {
		res := &r.Results[i]
		waiver, expires := "", ""
		if res.Waiver != nil {
			waiver, expires = res.Waiver.Justification, res.Waiver.Expires.UTC().Format("2006-01-02")
		}
		rec = append(rec[:0], host, CSVSafe(res.RuleID), string(res.Severity), string(res.Status), CSVSafe(res.Resource),
			CSVSafe(LocationPath(res.Location)), strconv.Itoa(LocationLine(res.Location)), CSVSafe(res.Message), CSVSafe(res.Reason),
			resultFingerprint(r, res), CSVSafe(waiver), expires, res.Baseline)
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write CSV row: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// CSVSafe makes a value taken from a host or an inventory safe for a
// person reading the CSV in a spreadsheet or a terminal: control, bidi and
// invalid characters are written as escapes (safetext.Text: \x1b, \u202e;
// line breaks and tabs are kept, CSV quotes them), then spreadsheet
// formulas are defused: a cell starting with =, +, -, @, a tab or a
// carriage return gets a leading apostrophe (a lone "-" is left as it is).
func CSVSafe(s string) string {
	s = safetext.Text(s)
	if s != "" && s != "-" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
