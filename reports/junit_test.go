package reports

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
)

type junitDoc struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Skipped  int `xml:"skipped,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Errors   int    `xml:"errors,attr"`
		Skipped  int    `xml:"skipped,attr"`
		Cases    []struct {
			ClassName string       `xml:"classname,attr"`
			Name      string       `xml:"name,attr"`
			Failure   *junitDetail `xml:"failure"`
			Error     *junitDetail `xml:"error"`
			Skipped   *junitDetail `xml:"skipped"`
		} `xml:"testcase"`
		SystemErr string `xml:"system-err"`
	} `xml:"testsuite"`
}

func parseJUnit(t *testing.T, b []byte) junitDoc {
	t.Helper()
	var d junitDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("JUnit XML does not parse: %v", err)
	}
	return d
}

// TestJUnitCases: one test case per result, and each status becomes the
// element CI understands.
func TestJUnitCases(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			r := fx.report()
			d := parseJUnit(t, renderFormat(t, "junit", r))
			if len(d.Suites) != 1 {
				t.Fatalf("%d test suites, want 1", len(d.Suites))
			}
			s := d.Suites[0]
			sum := r.Summary.ByStatus
			if s.Tests != len(r.Results) || len(s.Cases) != len(r.Results) || d.Tests != s.Tests {
				t.Errorf("tests=%d cases=%d, want %d", s.Tests, len(s.Cases), len(r.Results))
			}
			if s.Failures != sum[StatusFail] || s.Errors != sum[StatusError] || s.Skipped != sum[StatusWaived]+sum[StatusNotApplicable] {
				t.Errorf("suite counts failures=%d errors=%d skipped=%d do not match the summary %v", s.Failures, s.Errors, s.Skipped, sum)
			}
			for i, c := range s.Cases {
				res := r.Results[i]
				ru, _, _ := r.RuleByID(res.RuleID)
				if !strings.HasPrefix(c.Name, res.RuleID) || (res.Resource != "" && !strings.Contains(c.Name, res.Resource)) {
					t.Errorf("case name %q lacks rule id or resource", c.Name)
				}
				if c.ClassName == "" {
					t.Errorf("case %q has no classname", c.Name)
				}
				var got string
				switch {
				case c.Failure != nil:
					got = "failure"
					if !strings.Contains(c.Failure.Body, ru.Remediation) || c.Failure.Message != res.Message {
						t.Errorf("failure of %q lacks message or remediation: %+v", c.Name, c.Failure)
					}
				case c.Error != nil:
					got = "error"
				case c.Skipped != nil:
					got = "skipped"
					if res.Status == StatusWaived && !strings.Contains(c.Skipped.Message, res.Waiver.Justification) {
						t.Errorf("waived case %q does not carry the justification: %q", c.Name, c.Skipped.Message)
					}
				default:
					got = "pass"
				}
				want := map[Status]string{StatusFail: "failure", StatusError: "error", StatusWaived: "skipped", StatusNotApplicable: "skipped", StatusPass: "pass"}[res.Status]
				if got != want {
					t.Errorf("case %q for a %s result is %s, want %s", c.Name, res.Status, got, want)
				}
			}
			if len(r.CollectorErrors) > 0 && !strings.Contains(s.SystemErr, r.CollectorErrors[0].Error) {
				t.Errorf("system-err does not report the collector errors: %q", s.SystemErr)
			}
		})
	}
}

// TestJUnitWellFormed: text XML cannot carry, and CDATA terminators, do
// not break the document.
func TestJUnitWellFormed(t *testing.T) {
	r := defaultInstallReport()
	r.Results[0].Message = "bad \x00\x1b[31m bytes ]]> and <tags> & \"quotes\""
	r.Results[0].Evidence = map[string]any{"raw": "]]><![CDATA[", "ctl": "\x07"}
	b := renderFormat(t, "junit", r)
	d := parseJUnit(t, b)
	c := d.Suites[0].Cases[0]
	if c.Failure == nil || !strings.Contains(c.Failure.Body, "]]> and <tags>") || !strings.Contains(c.Failure.Message, "<tags> & \"quotes\"") {
		t.Errorf("text did not survive the round trip: %+v", c.Failure)
	}
	if bytes.ContainsAny(b, "\x00\x07\x1b") {
		t.Error("control characters reached the XML")
	}
}
