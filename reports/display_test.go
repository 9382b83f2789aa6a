package reports

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostileReport is an audit of a target whose strings carry what a
// terminal or a renderer acts on: clear screen, bell, carriage return,
// right-to-left override, a C1 control and invalid UTF-8.
func hostileReport() *Report {
	r := waiversReport()
	r.Target.Host = "evil\x1b[2J\x1b[H"
	r.Target.Note = "note\x07 with a bell"
	r.Target.OS = "Linux\u202eexe.txt"
	r.Rules[1].Title = "title\x1b]0;owned\x07"
	r.Rules[1].Remediation = "sudo arcagent config set incomingconnections.enabled false\x1b[8m hidden"
	for i := range r.Results {
		res := &r.Results[i]
		res.Resource += "\x1b[31mred"
		res.Message += "\rgate: passed"
		res.Reason += "\u009b2J"
		res.Fingerprint = "" // computed from the original strings
		res.Evidence = map[string]any{"raw\x1b": "a\u202eb", "list": []any{"\x07", 1}, "bytes": "\xff\xfe"}
		if res.Waiver != nil {
			res.Waiver.Justification = "ok\x1b[2K"
		}
	}
	r.Waivers[1].Justification = "expired\x1b[1A"
	r.Baseline.Fixed[0].Message = "was\x1b[2J"
	r.CollectorErrors[0].Error = "denied\ngate: passed"
	r.Summarize()
	return r
}

// unsafeRune returns the first character of out a terminal or a bidi
// renderer would act on, and whether there is one. Newlines and tabs are
// the writers' own layout.
func unsafeRune(out []byte) (rune, bool) {
	for len(out) > 0 {
		r, size := utf8.DecodeRune(out)
		out = out[size:]
		switch {
		case r == utf8.RuneError && size == 1:
			return r, true
		case r == '\n' || r == '\t':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return r, true
		case r == '\u202e' || r == '\u202d' || r == '\u2066' || r == '\u2067' || r == '\u2068' || r == '\u2069':
			return r, true
		}
	}
	return 0, false
}

// TestHumanWritersEscapeControlCharacters: no control, bidi or invalid
// byte from the target reaches the output of a human-readable writer; each
// is shown as its escape, and fingerprints are those of the real strings.
func TestHumanWritersEscapeControlCharacters(t *testing.T) {
	orig := hostileReport()
	wantFP := Fingerprint(orig.Results[0].RuleID, orig.Target.Host, orig.Results[0].Resource)
	for _, tc := range []struct {
		format string
		want   []string // visible escapes in the output
	}{
		{"table", []string{`evil\x1b[2J\x1b[H`, `note\a with a bell`, `\x1b[31mred`, `\rgate: passed`, `denied\ngate: passed`, `[waived: ok\x1b[2K]`, `config set incomingconnections.enabled false\x1b[8m hidden`}},
		// Markdown escapes once: the backslash of an escape is not doubled.
		{"markdown", []string{`evil\x1b\[2J\x1b\[H`, `note\a with a bell`, `Linux\u202eexe.txt`, "`config.mode\\x1b[31mred`", "config.mode is full gate: passed", `title\x1b]0;owned\a`, `false\x1b[8m hidden`, `ok\x1b\[2K`, `expired\x1b\[1A`, `was\x1b\[2J`}},
		{"csv", []string{`evil\x1b[2J\x1b[H`, `\x1b[31mred`, `\rgate: passed`, `\u009b2J`, `ok\x1b[2K`}},
		{"html", []string{`evil\x1b[2J\x1b[H`, `note\a with a bell`, `Linux\u202eexe.txt`, `\x1b[31mred`, `\rgate: passed`, `title\x1b]0;owned\a`, `a\u202eb`, `\xff\xfe`, `raw\x1b`, wantFP}},
		{"junit", []string{`evil\x1b[2J\x1b[H`, `\x1b[31mred`, `\rgate: passed`, `a\u202eb`, `\u009b2J`, `false\x1b[8m hidden`, wantFP}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			r := hostileReport()
			before := renderFormat(t, "json", r)
			out := renderFormat(t, tc.format, r)
			if c, bad := unsafeRune(out); bad {
				i := bytes.IndexRune(out, c)
				t.Fatalf("%U reached the %s output: ...%q...", c, tc.format, out[max(0, i-40):min(len(out), i+40)])
			}
			for _, w := range tc.want {
				if !bytes.Contains(out, []byte(w)) {
					t.Errorf("%s output lacks %q", tc.format, w)
				}
			}
			if after := renderFormat(t, "json", r); !bytes.Equal(before, after) {
				t.Errorf("the %s writer changed the report", tc.format)
			}
			if tc.format == "junit" {
				d := xml.NewDecoder(bytes.NewReader(out))
				for {
					if _, err := d.Token(); err == io.EOF {
						break
					} else if err != nil {
						t.Fatalf("JUnit output is not XML: %v", err)
					}
				}
			}
		})
	}
}

// TestTableForgesNoLine: a newline in a value cannot start a line of its
// own in the table output, so it cannot forge the gate's verdict.
func TestTableForgesNoLine(t *testing.T) {
	out := string(renderFormat(t, "table", hostileReport()))
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "gate:") {
			n++
		}
	}
	if n != 1 || !strings.Contains(out, "\ngate: passed (nothing at or above critical)\n") {
		t.Errorf("want one verdict line, the writer's own; got %d:\n%s", n, out)
	}
}

// TestDisplayResultKeepsCleanEvidence: evidence that needs no escaping is
// shared, not copied for every result.
func TestDisplayResultKeepsCleanEvidence(t *testing.T) {
	r := defaultInstallReport()
	res := &r.Results[0]
	got := displayResult(r, res, func(s string) string { return s })
	got.Evidence["probe"] = true
	if _, ok := res.Evidence["probe"]; !ok {
		t.Error("clean evidence was copied")
	}
	delete(res.Evidence, "probe")
	res.Evidence["bad"] = "\x1b"
	got = displayResult(r, res, func(s string) string { return strings.ReplaceAll(s, "\x1b", "ESC") })
	if got.Evidence["bad"] != "ESC" || res.Evidence["bad"] != "\x1b" {
		t.Errorf("evidence to escape: got %v, original %v", got.Evidence["bad"], res.Evidence["bad"])
	}
}
