//go:build !windows

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/arcagent/arcagent/reports"
)

// The reports package's golden files double as saved audit reports.
const reportsTestdata = "../../reports/testdata"

// TestReportConvertMatchesGoldens: converting a saved JSON report gives
// exactly what the writers give for the report itself.
func TestReportConvertMatchesGoldens(t *testing.T) {
	formats := []struct{ format, ext string }{
		{"json", "json"}, {"sarif", "sarif"}, {"junit", "junit.xml"}, {"markdown", "md"}, {"html", "html"},
	}
	for _, name := range []string{"default-install", "hardened", "waivers-baseline-errors"} {
		for _, f := range formats {
			t.Run(name+"/"+f.format, func(t *testing.T) {
				want, err := os.ReadFile(filepath.Join(reportsTestdata, name+"."+f.ext))
				if err != nil {
					t.Fatal(err)
				}
				out, stderr, code := runCLI(t, "report", "convert", filepath.Join(reportsTestdata, name+".json"), "-o", f.format)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				if out != string(want) {
					t.Errorf("convert -o %s differs from reports/testdata/%s.%s", f.format, name, f.ext)
				}
			})
		}
	}
}

// TestReportConvertFiles writes several formats in one run, reads the
// report from standard input, and defaults to the table.
func TestReportConvertFiles(t *testing.T) {
	src := filepath.Join(reportsTestdata, "default-install.json")
	dir := t.TempDir()
	out, stderr, code := runCLI(t, "report", "convert", src,
		"-o", "sarif="+filepath.Join(dir, "a.sarif"), "-o", "junit="+filepath.Join(dir, "junit.xml"),
		"-o", "html="+filepath.Join(dir, "a.html"), "-o", "markdown="+filepath.Join(dir, "a.md"), "-o", "table")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "ARC-T0-001") || !strings.Contains(out, "gate: FAILED") {
		t.Errorf("table on stdout lacks the findings: %q", out)
	}
	for _, f := range []string{"a.sarif", "junit.xml", "a.html", "a.md"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}

	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, errb bytes.Buffer
	if code := run([]string{"report", "convert", "-", "-o", "sarif"}, bytes.NewReader(b), &stdout, &errb); code != 0 || !strings.Contains(stdout.String(), `"arcagent-audit/web-01/"`) {
		t.Errorf("convert from standard input: exit %d, %s", code, errb.String())
	}

	out, _, code = runCLI(t, "report", "convert", src)
	if code != 0 || !strings.Contains(out, "gate: FAILED") {
		t.Errorf("default output is not the table: exit %d, %q", code, out)
	}
	out, _, code = runCLI(t, "report", "convert", src, "-j")
	if code != 0 || !json.Valid([]byte(out)) {
		t.Errorf("-j does not write JSON: exit %d", code)
	}
}

// writeReport saves r as a JSON report in dir.
func writeReport(t *testing.T, dir, name string, r *reports.Report) string {
	t.Helper()
	var buf bytes.Buffer
	if err := (reports.JSONWriter{}).Write(&buf, r); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func convertReport(results ...reports.Result) *reports.Report {
	r := &reports.Report{
		SchemaVersion: reports.SchemaVersion, Tool: reports.Tool{Name: "arcagent", Version: "0.3.0"},
		StartedAt: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC), Target: reports.Target{Kind: reports.TargetHost, Host: "h"},
		FailOn: reports.SeverityHigh, Results: results,
	}
	for i := range r.Results {
		r.Results[i].Fingerprint = reports.Fingerprint(r.Results[i].RuleID, "h", r.Results[i].Resource)
	}
	r.Summarize()
	return r
}

// TestConvertExitCodes covers the audit's exit codes (README, "Exit codes") for convert.
func TestConvertExitCodes(t *testing.T) {
	dir := t.TempDir()
	withCritical := writeReport(t, dir, "critical.json", convertReport(
		reports.Result{RuleID: "ARC-T0-001", Severity: reports.SeverityCritical, Status: reports.StatusFail, Message: "m"},
		reports.Result{RuleID: "ARC-T0-004", Severity: reports.SeverityMedium, Status: reports.StatusFail, Message: "m"},
	))
	withMedium := writeReport(t, dir, "medium.json", convertReport(
		reports.Result{RuleID: "ARC-T0-004", Severity: reports.SeverityMedium, Status: reports.StatusFail, Message: "m"},
	))
	withError := writeReport(t, dir, "error.json", convertReport(
		reports.Result{RuleID: "ARC-T0-010", Severity: reports.SeverityHigh, Status: reports.StatusError, Reason: "permission denied"},
		reports.Result{RuleID: "ARC-T0-004", Severity: reports.SeverityLow, Status: reports.StatusFail, Message: "m"},
	))
	clean := writeReport(t, dir, "clean.json", convertReport(
		reports.Result{RuleID: "ARC-T0-001", Severity: reports.SeverityCritical, Status: reports.StatusPass, Message: "ok"},
	))
	garbage := filepath.Join(dir, "garbage.json")
	os.WriteFile(garbage, []byte("this is not JSON"), 0o644)
	notReport := filepath.Join(dir, "other.json")
	os.WriteFile(notReport, []byte(`{"name": "some other JSON"}`), 0o644)
	wrongShape := filepath.Join(dir, "shape.json")
	os.WriteFile(wrongShape, []byte(`{"schemaVersion": 1, "results": "none"}`), 0o644)
	newer := filepath.Join(dir, "newer.json")
	os.WriteFile(newer, []byte(`{"schemaVersion": 99, "results": []}`), 0o644)

	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"written", []string{withCritical, "-o", "sarif"}, 0, ""},
		{"no gate without --fail-on", []string{withCritical, "-o", "json"}, 0, ""},
		{"every format", []string{withCritical, "-o", "table", "-o", "json=" + filepath.Join(dir, "o.json"), "-o", "sarif=" + filepath.Join(dir, "o.sarif"), "-o", "junit=" + filepath.Join(dir, "o.xml"), "-o", "markdown=" + filepath.Join(dir, "o.md"), "-o", "html=" + filepath.Join(dir, "o.html")}, 0, ""},
		{"fail-on critical with a critical failure", []string{withCritical, "-o", "sarif", "--fail-on", "critical"}, 1, ""},
		{"fail-on high with a medium failure", []string{withMedium, "-o", "junit", "--fail-on", "high"}, 0, ""},
		{"fail-on medium with a medium failure", []string{withMedium, "-o", "markdown", "--fail-on", "medium"}, 1, ""},
		{"fail-on info on a clean report", []string{clean, "-o", "html", "--fail-on", "info"}, 0, ""},
		{"fail-on is case-insensitive", []string{withCritical, "-o", "json", "--fail-on", "CRITICAL"}, 1, ""},
		{"fail-on never does not gate, as in audit", []string{withCritical, "-o", "json", "--fail-on", "never"}, 0, ""},
		{"fail-on never on a rule error", []string{withError, "-o", "table", "--fail-on", "Never"}, 0, ""},
		{"rule error at the gate", []string{withError, "-o", "table", "--fail-on", "high"}, 3, ""},
		{"a rule error wins over a failure", []string{withError, "-o", "table", "--fail-on", "low"}, 3, ""},
		{"rule error below the gate", []string{withError, "-o", "table", "--fail-on", "critical"}, 0, ""},
		{"missing report", []string{filepath.Join(dir, "nope.json"), "-o", "sarif"}, 2, "ARC0040"},
		{"garbage report", []string{garbage, "-o", "sarif"}, 2, "ARC0040"},
		{"JSON that is not a report", []string{notReport, "-o", "sarif"}, 2, "schemaVersion is missing"},
		{"report of the wrong shape", []string{wrongShape, "-o", "sarif"}, 2, "ARC0040"},
		{"report from a newer arcagent", []string{newer, "-o", "sarif"}, 2, "ARC0041"},
		{"unknown format", []string{withCritical, "-o", "pdf"}, 2, "unknown report format"},
		{"two formats on stdout", []string{withCritical, "-o", "sarif", "-o", "json"}, 2, "both write to standard output"},
		{"format with an empty file", []string{withCritical, "-o", "sarif="}, 2, "ARC0001"},
		{"bad --fail-on", []string{withCritical, "--fail-on", "severe"}, 2, "ARC0001"},
		{"no report", []string{}, 2, "ARC0001"},
		{"two reports", []string{withCritical, clean}, 2, "ARC0001"},
		{"unwritable output", []string{withCritical, "-o", "sarif=" + filepath.Join(dir, "no", "such", "dir", "a.sarif")}, 3, "ARC0019"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, append([]string{"report", "convert"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, stderr)
			}
			if tc.stderr != "" && !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tc.stderr)
			}
			if tc.code == 2 && !strings.Contains(stderr, "what to do:") {
				t.Errorf("usage error without a remedy: %q", stderr)
			}
		})
	}
}

func TestReportSchema(t *testing.T) {
	out, _, code := runCLI(t, "report", "schema")
	var s map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s["$id"] != reports.SchemaID {
		t.Errorf("report schema: exit %d, $id %v", code, s["$id"])
	}
}

// TestReportCIExamples runs the audit command of each CI example, as
// written there, against the committed planned configuration, and checks
// that it passes the gate and writes every report the example uploads.
func TestReportCIExamples(t *testing.T) {
	if _, _, code := runCLI(t, "audit", "--help"); code != 0 {
		t.Skip("this build has no audit command")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range []struct {
		file    string
		uploads []string
	}{
		{"examples/ci/github-actions.yml", []string{"arcagent.sarif", "arcagent.json", "arcagent-junit.xml", "arcagent.md", "arcagent.html"}},
		{"examples/ci/gitlab-ci.yml", []string{"arcagent-junit.xml", "arcagent.json", "arcagent.sarif", "arcagent.html"}},
	} {
		t.Run(filepath.Base(ex.file), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(repo, ex.file))
			if err != nil {
				t.Fatal(err)
			}
			var doc any
			if err := yaml.Unmarshal(b, &doc); err != nil {
				t.Fatalf("%s is not valid YAML: %v", ex.file, err)
			}
			var command string
			walkStrings(doc, func(s string) {
				// The longest: the workflow's name is "arcagent audit" too.
				if s = strings.TrimSpace(s); strings.HasPrefix(s, "arcagent audit ") && len(s) > len(command) {
					command = s
				}
			})
			if command == "" {
				t.Fatalf("%s runs no `arcagent audit`", ex.file)
			}
			args := strings.Fields(command)[1:]
			for i := range args {
				if i > 0 && args[i-1] == "--config" {
					args[i] = filepath.Join(repo, args[i])
				}
			}
			t.Chdir(t.TempDir())
			stdout, stderr, code := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("%s: exit %d, want 0 for the hardened planned configuration:\n%s%s", command, code, stdout, stderr)
			}
			for _, f := range ex.uploads {
				if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
					t.Errorf("%s uploads %s, which the audit did not write: %v", ex.file, f, err)
				}
				if !strings.Contains(string(b), f) {
					t.Errorf("%s does not mention %s", ex.file, f)
				}
			}
		})
	}
}

// walkStrings calls f for every string in a decoded YAML document.
func walkStrings(v any, f func(string)) {
	switch v := v.(type) {
	case string:
		f(v)
	case []any:
		for _, e := range v {
			walkStrings(e, f)
		}
	case map[string]any:
		for _, e := range v {
			walkStrings(e, f)
		}
	}
}

// TestReportSARIFStableAcrossAudits audits the same (empty) root twice:
// the SARIF runs carry the same category and the same fingerprints, so
// GitHub matches the alerts of the second upload to the first.
func TestReportSARIFStableAcrossAudits(t *testing.T) {
	if _, _, code := runCLI(t, "audit", "--help"); code != 0 {
		t.Skip("this build has no audit command")
	}
	root := t.TempDir()
	type run struct {
		AutomationDetails struct{ ID string } `json:"automationDetails"`
		Results           []struct {
			RuleID              string            `json:"ruleId"`
			PartialFingerprints map[string]string `json:"partialFingerprints"`
		} `json:"results"`
	}
	audit := func() (string, []string) {
		out, stderr, code := runCLI(t, "audit", "--root", root, "-o", "sarif")
		if code != 0 && code != 1 {
			t.Fatalf("audit: exit %d: %s", code, stderr)
		}
		var log struct{ Runs []run }
		if err := json.Unmarshal([]byte(out), &log); err != nil || len(log.Runs) != 1 {
			t.Fatalf("audit -o sarif wrote no single run: %v", err)
		}
		var fps []string
		for _, r := range log.Runs[0].Results {
			fps = append(fps, r.RuleID+" "+r.PartialFingerprints["primaryLocationLineHash"])
		}
		return log.Runs[0].AutomationDetails.ID, fps
	}
	id1, fp1 := audit()
	id2, fp2 := audit()
	if len(fp1) == 0 {
		t.Fatal("the default install of an empty root has no findings; the test needs some")
	}
	if id1 != id2 || strings.Join(fp1, "\n") != strings.Join(fp2, "\n") {
		t.Errorf("two audits of the same root differ:\n%s %v\n%s %v", id1, fp1, id2, fp2)
	}
}
