package reports

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The table fits the width it is given by wrapping the message column; the
// severity colour takes no room; unlimited, every finding is one line.
func TestTableWidth(t *testing.T) {
	r := waiversReport()
	render := func(o TableWriter) string {
		var b bytes.Buffer
		if err := o.Write(&b, r); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	wide := render(TableWriter{})
	for _, width := range []int{100, 80} {
		out := render(TableWriter{Width: width})
		table := out[strings.Index(out, "STATUS"):strings.Index(out, "\n\n"+"not applicable")]
		for _, l := range strings.Split(table, "\n") {
			if n := utf8.RuneCountInString(l); n > width {
				t.Errorf("width %d: line of %d: %q", width, n, l)
			}
		}
		if strings.Count(out, "\n") <= strings.Count(wide, "\n") {
			t.Errorf("width %d: the message column did not wrap:\n%s", width, out)
		}
		if !strings.Contains(strings.Join(strings.Fields(out), " "), "pipeline only (CHG-4711)]") {
			t.Errorf("width %d: the waiver text is lost:\n%s", width, out)
		}
	}
	colored := render(TableWriter{Color: true})
	if !strings.Contains(colored, "\x1b[31mhigh\x1b[0m      ARC-T0-002") {
		t.Errorf("colour moved the columns or is missing:\n%q", colored)
	}
}

// Values from the host that a spreadsheet would run as formulas are
// defused; the CSV parses back with one row per result.
func TestCSVWriter(t *testing.T) {
	r := defaultInstallReport()
	r.Results = append(r.Results, Result{RuleID: "ARC-X", Severity: SeverityLow, Status: StatusFail, Resource: "=HYPERLINK(\"http://x\")", Message: "@SUM(A1)"})
	var b bytes.Buffer
	if err := (CSVWriter{}).Write(&b, r); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(r.Results)+1 || strings.Join(recs[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("%d rows for %d results, header %q", len(recs), len(r.Results), recs[0])
	}
	last := recs[len(recs)-1]
	if last[4] != `'=HYPERLINK("http://x")` || last[7] != "'@SUM(A1)" {
		t.Errorf("formulas not defused: %q", last)
	}
	for _, tt := range []struct{ in, want string }{{"-", "-"}, {"-1", "'-1"}, {"+a", "'+a"}, {"\tx", "'\tx"}, {"a=b", "a=b"}, {"", ""},
		{"evil\x1b[31m\a", `evil\x1b[31m\a`}, {"two\nlines", "two\nlines"}, {"\r=cmd", `\r=cmd`}, {"=\x1b", `'=\x1b`}, {"gate \u202eexe", `gate \u202eexe`}} {
		if got := CSVSafe(tt.in); got != tt.want {
			t.Errorf("CSVSafe(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestOutputsAcceptCSV(t *testing.T) {
	outs, err := ParseOutputs([]string{"table", "csv=audit.csv"})
	if err != nil || len(outs) != 2 || outs[1] != (Output{Format: "csv", File: "audit.csv"}) {
		t.Errorf("-o csv: %+v %v", outs, err)
	}
}
