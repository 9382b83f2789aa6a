package releases

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/testutil"
	"github.com/arcagent/arcagent/reports"
)

func testSource() *StaticSource {
	return &StaticSource{Name: "fake source", ByProduct: map[string][]Release{
		AgentProduct: {
			{Version: "1.27.02100.100", Published: day("2025-03-01")},
			{Version: "1.28.02260.736", Published: day("2025-09-01")},
			{Version: "1.29.02300.1", Published: day("2026-02-01")},
		},
		"Contoso.Monitoring.StatusReporter": testReleases,
	}}
}

// runCheck runs a fleet check writing every format; it returns the
// summary and each format's output.
func runCheck(t *testing.T, src Source, inv, failOn string, all bool) (*Summary, map[string][]byte, error) {
	t.Helper()
	bufs := map[string]*bytes.Buffer{}
	var ws []RowWriter
	for _, f := range Formats() {
		bufs[f] = &bytes.Buffer{}
		w, err := NewWriter(f, bufs[f], WriterOptions{All: all})
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	sum, err := Check(context.Background(), CheckOptions{
		Inventory: strings.NewReader(inv), Checker: &Checker{Source: src, Now: testNow}, Writers: ws,
		Header: Header{Tool: "arcagent", Version: "test", Inventory: "fleet.json", Source: src.String(), FailOn: failOn},
	})
	out := map[string][]byte{}
	for f, b := range bufs {
		out[f] = b.Bytes()
	}
	return sum, out, err
}

const checkInventory = `[
 {"name": "web-01", "agent": "1.29.02300.1", "extensions": [{"name": "Contoso.Monitoring.StatusReporter", "version": "1.3.0"}]},
 {"name": "web-02", "agent": "1.28.02260.736", "extensions": [{"name": "Contoso.Monitoring.StatusReporter", "version": "1.2.0"}, {"name": "Other.Vendor.Thing", "version": "1"}]},
 {"name": "db-\"01\"\n<&>", "agent": "1.27.02100.100", "extensions": [{"name": "Contoso.Monitoring.StatusReporter", "version": "1.1.0"}]},
 {"name": "db-02", "agent": "1.29.x"},
 {"name": "db-03", "agent": 7},
 {"name": "db-04", "agent": ""}
]`

func TestCheck(t *testing.T) {
	sum, out, err := runCheck(t, testSource(), checkInventory, "unsupported", false)
	if err != nil {
		t.Fatal(err)
	}
	// Agents: current, behind, unsupported, unknown (unparsable), bad row,
	// unknown (empty); extensions: current, behind, unsupported, untracked.
	if sum.Machines != 6 || sum.BadRows != 1 || sum.Results != 9 || sum.Current != 2 || sum.Behind != 2 || sum.Unsupported != 2 || sum.Unknown != 3 {
		t.Errorf("summary %+v", sum)
	}
	if sum.Untracked["Other.Vendor.Thing"] != 1 || !sum.Gate {
		t.Errorf("untracked %v, gate %v", sum.Untracked, sum.Gate)
	}
	if len(sum.Products) != 2 || sum.Products[0].Product != "Contoso.Monitoring.StatusReporter" || sum.Products[1] != (ProductSummary{Product: AgentProduct, Latest: "1.29.02300.1", Current: 1, Behind: 1, Unsupported: 1, Unknown: 2}) {
		t.Errorf("products %+v", sum.Products)
	}

	// JSON: every result, valid and complete.
	var doc struct {
		SchemaVersion int `json:"schemaVersion"`
		Kind          string
		Results       []map[string]any
		Summary       Summary
	}
	if err := json.Unmarshal(out["json"], &doc); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, out["json"])
	}
	if doc.SchemaVersion != 1 || doc.Kind != "fleet-currency" || len(doc.Results) != 9 || doc.Summary.Results != 9 {
		t.Errorf("JSON: %d results, summary %+v", len(doc.Results), doc.Summary)
	}
	if doc.Results[4]["machine"] != "db-\"01\"\n<&>" || doc.Results[4]["state"] != StateUnsupported || doc.Results[4]["line"] != float64(4) {
		t.Errorf("JSON result %v", doc.Results[4])
	}
	var bad map[string]any
	for _, r := range doc.Results {
		if r["machine"] == "db-03" {
			bad = r
		}
	}
	if bad == nil || bad["product"] != "-" || !strings.Contains(bad["reason"].(string), "bad inventory row: agent must be a version string") {
		t.Errorf("bad row %v", bad)
	}

	// CSV: a header and every result.
	recs, err := csv.NewReader(bytes.NewReader(out["csv"])).ReadAll()
	if err != nil || len(recs) != 10 || recs[0][0] != "machine" || len(recs[1]) != 13 {
		t.Errorf("CSV: %d records, %v", len(recs), err)
	}

	// Table and Markdown: findings only, and the summary.
	table := string(out["table"])
	for _, want := range []string{"web-02", "1 release behind 1.29.02300.1", "older than the support window", `version "1.29.x" cannot be parsed`, "no agent version is given", "6 machines, 9 results: 2 current, 2 behind, 2 unsupported, 3 unknown (1 bad inventory rows)", "Other.Vendor.Thing"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "web-01") {
		t.Errorf("table lists a current machine:\n%s", table)
	}
	md := string(out["markdown"])
	for _, want := range []string{"# Fleet version currency", "**❌ failed** (`--fail-on unsupported`)", "| arcagent | 1.29.02300.1 | 1 | 1 | 1 | 2 |", `db-"01" &lt;&amp;&gt;`} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}

	// SARIF: valid 2.1.0, one result per finding, stable fingerprints.
	testutil.ValidateSARIF(t, out["sarif"])
	var sarif struct {
		Runs []struct {
			Results []struct {
				RuleID              string
				Level               string
				PartialFingerprints map[string]string
				Locations           []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }
						Region           struct{ StartLine int }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(out["sarif"], &sarif); err != nil {
		t.Fatal(err)
	}
	res := sarif.Runs[0].Results
	if len(res) != 7 {
		t.Fatalf("SARIF results %d, want 7 findings", len(res))
	}
	rules := map[string]int{}
	for _, r := range res {
		rules[r.RuleID]++
		if r.Locations[0].PhysicalLocation.ArtifactLocation.URI != "fleet.json" || r.Locations[0].PhysicalLocation.Region.StartLine < 2 || r.PartialFingerprints["arcagentFingerprint/v1"] == "" {
			t.Errorf("SARIF result %+v", r)
		}
	}
	if rules[RuleBehind] != 2 || rules[RuleUnsupported] != 2 || rules[RuleUnknown] != 3 {
		t.Errorf("SARIF rules %v", rules)
	}

	// JUnit: one test case per result, the findings failed; HTML: one
	// page through the audit's writer, inventory text escaped.
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(out["junit"], &suites); err != nil {
		t.Fatalf("JUnit: %v\n%s", err, out["junit"])
	}
	if suites.Tests != 9 || suites.Failures != 7 || len(suites.Suites) != 1 || len(suites.Suites[0].Cases) != 9 {
		t.Errorf("JUnit: %d tests, %d failures\n%s", suites.Tests, suites.Failures, out["junit"])
	}
	html := string(out["html"])
	for _, want := range []string{"<!DOCTYPE html>", RuleUnsupported, "An agent or extension version is out of support", "db-&#34;01&#34;"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(html, "<&>") {
		t.Error("HTML holds inventory text unescaped")
	}

	// --all lists current results in the table too.
	_, out, _ = runCheck(t, testSource(), checkInventory, "", true)
	if !strings.Contains(string(out["table"]), "web-01") {
		t.Error("--all table lacks current machines")
	}
}

func TestCheckGate(t *testing.T) {
	inv := func(agent string) string { return `[{"name": "m", "agent": "` + agent + `"}]` }
	tests := []struct {
		agent, failOn string
		gate          bool
	}{
		{"1.29.02300.1", "behind", false},
		{"1.28.02260.736", "behind", true},
		{"1.28.02260.736", "unsupported", false},
		{"1.27.02100.100", "unsupported", true},
		{"1.27.02100.100", "", false},
		{"garbage", "unsupported", true},
		{"garbage", "behind", true},
	}
	for _, tt := range tests {
		sum, _, err := runCheck(t, testSource(), inv(tt.agent), tt.failOn, false)
		if err != nil || sum.Gate != tt.gate {
			t.Errorf("%s --fail-on %q: gate %v, %v; want %v", tt.agent, tt.failOn, sum != nil && sum.Gate, err, tt.gate)
		}
	}
	for _, s := range []string{"", "none", "never", "behind", "unsupported", " Behind "} {
		if _, err := ParseFailOn(s); err != nil {
			t.Errorf("ParseFailOn(%q): %v", s, err)
		}
	}
	if _, err := ParseFailOn("current"); !isCode(err, CodeBadPolicy) {
		t.Errorf("ParseFailOn(current): %v", err)
	}
}

func TestCheckErrors(t *testing.T) {
	// The agent product must be known to the source.
	src := &StaticSource{Name: "fake source", ByProduct: map[string][]Release{"X.Y": nil}}
	_, _, err := runCheck(t, src, checkInventory, "", false)
	wantCode(t, err, CodeUnknownProduct, "fake source")

	// A source failing for an extension stops the run with its error.
	src = testSource()
	src.Err = newErr(CodeRateLimited, "GitHub api.github.com repository o/r", nil, "API rate limit exhausted")
	_, _, err = runCheck(t, src, checkInventory, "", false)
	wantCode(t, err, CodeRateLimited, "repository o/r")
	if !errcode.Is(err, CodeRateLimited) && !errcode.Is(err, CodeSecondaryLimit) {
		t.Errorf("not rate limited (%s or %s): %v", CodeRateLimited, CodeSecondaryLimit, err)
	}

	// An inventory that is not one names the inventory.
	_, _, err = runCheck(t, testSource(), "[{\"name\": ", "", false)
	wantCode(t, err, CodeBadInventory, "inventory fleet.json")

	if _, err := NewWriter("xml", nil, WriterOptions{}); !isCode(err, CodeBadOutput) {
		t.Errorf("unknown writer: %v", err)
	}
	if got := errcode.ExitCode(err); got != errcode.ExitUsage {
		t.Errorf("exit %d", got)
	}
}

// Any text an inventory holds comes back unchanged from the JSON report.
func TestJSONReportStrings(t *testing.T) {
	names := []string{"plain", "q\"b\\s", "\x01\x1f\r\tx", "é – 🙂", "a\u2028b\u2029c", "<&>"}
	var inv strings.Builder
	inv.WriteString("[")
	for i, n := range names {
		if i > 0 {
			inv.WriteString(",")
		}
		b, _ := json.Marshal(n)
		fmt.Fprintf(&inv, `{"name": %s, "agent": "1.29.02300.1"}`, b)
	}
	inv.WriteString("]")
	_, out, err := runCheck(t, testSource(), inv.String(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Results []Row }
	if err := json.Unmarshal(out["json"], &doc); err != nil {
		t.Fatalf("%v\n%s", err, out["json"])
	}
	if len(doc.Results) != len(names) {
		t.Fatalf("%d results for %d machines", len(doc.Results), len(names))
	}
	for i, n := range names {
		if doc.Results[i].Machine != n {
			t.Errorf("machine %q came back as %q", n, doc.Results[i].Machine)
		}
	}
	if !strings.Contains(string(out["json"]), `"machine":"<&>"`) {
		t.Errorf("HTML characters escaped in the JSON report:\n%s", out["json"])
	}
}

// Above GitHub's per-run limit the SARIF writer keeps the first results and
// says in a notification how many it left out; the log stays valid.
func TestSARIFLimit(t *testing.T) {
	var b bytes.Buffer
	w := &sarifWriter{w: &b, max: 2}
	h := &Header{Tool: "arcagent", Inventory: "fleet.csv", Source: "fake"}
	if err := w.Begin(h); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := w.Row(&Row{Machine: fmt.Sprint("m", i), Line: i + 2, Product: AgentProduct, Installed: "1.0", State: StateBehind, Behind: 1}); err != nil {
			t.Fatal(err)
		}
	}
	w.Row(&Row{Machine: "ok", State: StateCurrent})
	if err := w.End(&Summary{Untracked: map[string]int{}}); err != nil {
		t.Fatal(err)
	}
	testutil.ValidateSARIF(t, b.Bytes())
	if !strings.Contains(b.String(), "3 findings were left out") || strings.Count(b.String(), `"ruleId"`) != 2 {
		t.Errorf("SARIF limit:\n%s", b.String())
	}
}

// The currency table fits the width it is given: the reason wraps, the
// other columns stay whole; without a width every finding is one line.
func TestTableWidth(t *testing.T) {
	render := func(width int) string {
		var b bytes.Buffer
		w, err := NewWriter("table", &b, WriterOptions{Width: width})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Check(context.Background(), CheckOptions{Inventory: strings.NewReader(checkInventory), Checker: &Checker{Source: testSource(), Now: testNow},
			Writers: []RowWriter{w}, Header: Header{Inventory: "fleet.json", Source: "fake source"}}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	wide := render(0)
	narrow := render(120)
	findings := narrow[strings.Index(narrow, "MACHINE"):strings.Index(narrow, "\n\nPRODUCT")]
	for _, l := range strings.Split(findings, "\n") {
		if n := utf8.RuneCountInString(l); n > 120 {
			t.Errorf("line of %d: %q", n, l)
		}
	}
	if strings.Count(narrow, "\n") <= strings.Count(wide, "\n") {
		t.Errorf("nothing wrapped:\n%s", narrow)
	}
	if !strings.Contains(strings.Join(strings.Fields(narrow), " "), "the oldest supported release is 1.28.02260.736 (latest 1.29.02300.1)") {
		t.Errorf("the reason is lost:\n%s", narrow)
	}
	if !strings.Contains(wide, "older than the support window of 1y: the oldest supported release is 1.28.02260.736 (latest 1.29.02300.1)\n") {
		t.Errorf("unlimited width wrapped:\n%s", wide)
	}
}

// WriteReports writes every output in one pass; a failed run leaves no file.
func TestWriteReports(t *testing.T) {
	dir := t.TempDir()
	sarif, csvFile := filepath.Join(dir, "c.sarif"), filepath.Join(dir, "c.csv")
	outs := []reports.Output{{Format: "table"}, {Format: "sarif", File: sarif}, {Format: "csv", File: csvFile}}
	run := func(inv string) (*Summary, string, error) {
		var stdout bytes.Buffer
		sum, err := WriteReports(context.Background(), ReportOptions{
			CheckOptions: CheckOptions{Inventory: strings.NewReader(inv), Checker: &Checker{Source: testSource(), Now: testNow}, Header: Header{Inventory: "fleet.json"}},
			Outputs:      outs, Stdout: &stdout,
		})
		return sum, stdout.String(), err
	}
	sum, stdout, err := run(checkInventory)
	if err != nil || sum.Results != 9 || !strings.Contains(stdout, "6 machines, 9 results") {
		t.Fatalf("%v %+v\n%s", err, sum, stdout)
	}
	for _, p := range []string{sarif, csvFile} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: %v %v", p, fi, err)
		}
	}
	os.Remove(sarif)
	os.Remove(csvFile)
	if _, _, err := run(`[{"name": `); !isCode(err, CodeBadInventory) {
		t.Errorf("bad inventory: %v", err)
	}
	for _, p := range []string{sarif, csvFile} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left by a failed run: %v", p, err)
		}
	}
}
