package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sarifDoc is the part of a SARIF log the GitHub checks read.
type sarifDoc struct {
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name            string `json:"name"`
				SemanticVersion string `json:"semanticVersion"`
				InformationURI  string `json:"informationUri"`
				Rules           []struct {
					ID               string `json:"id"`
					ShortDescription struct {
						Text string `json:"text"`
					} `json:"shortDescription"`
					FullDescription struct {
						Text string `json:"text"`
					} `json:"fullDescription"`
					Help struct {
						Text     string `json:"text"`
						Markdown string `json:"markdown"`
					} `json:"help"`
					DefaultConfiguration struct {
						Level string `json:"level"`
					} `json:"defaultConfiguration"`
					Properties map[string]any `json:"properties"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		AutomationDetails struct {
			ID string `json:"id"`
		} `json:"automationDetails"`
		Invocations []struct {
			ExecutionSuccessful        *bool `json:"executionSuccessful"`
			ToolExecutionNotifications []struct {
				Level   string `json:"level"`
				Message struct {
					Text string `json:"text"`
				} `json:"message"`
				Descriptor struct {
					ID string `json:"id"`
				} `json:"descriptor"`
			} `json:"toolExecutionNotifications"`
		} `json:"invocations"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex *int   `json:"ruleIndex"`
			Level     string `json:"level"`
			Message   struct {
				Text string `json:"text"`
			} `json:"message"`
			Locations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct {
						URI string `json:"uri"`
					} `json:"artifactLocation"`
					Region struct {
						StartLine int `json:"startLine"`
					} `json:"region"`
				} `json:"physicalLocation"`
			} `json:"locations"`
			PartialFingerprints map[string]string `json:"partialFingerprints"`
			Suppressions        []struct {
				Kind          string `json:"kind"`
				Justification string `json:"justification"`
			} `json:"suppressions"`
			Properties struct {
				Severity Severity `json:"severity"`
				Status   Status   `json:"status"`
			} `json:"properties"`
		} `json:"results"`
	} `json:"runs"`
}

func parseSARIF(t *testing.T, b []byte) sarifDoc {
	t.Helper()
	var d sarifDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("SARIF is not JSON: %v", err)
	}
	return d
}

// TestSARIFGitHubRequirements checks what GitHub code scanning needs
// beyond the SARIF schema, for every fixture.
func TestSARIFGitHubRequirements(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) { checkGitHubSARIF(t, fx.report()) })
	}
}

// checkGitHubSARIF renders r as SARIF and checks GitHub's requirements.
func checkGitHubSARIF(t *testing.T, r *Report) {
	t.Helper()
	d := parseSARIF(t, renderFormat(t, "sarif", r))
	if d.Version != "2.1.0" || len(d.Runs) != 1 {
		t.Fatalf("want one SARIF 2.1.0 run, got version %q with %d runs", d.Version, len(d.Runs))
	}
	run := d.Runs[0]
	if want := "arcagent-audit/" + r.Target.Host + "/"; run.AutomationDetails.ID != want {
		t.Errorf("automationDetails.id = %q, want %q", run.AutomationDetails.ID, want)
	}
	drv := run.Tool.Driver
	if drv.Name != "arcagent" || drv.SemanticVersion != semanticVersion(r.Tool.Version) || drv.InformationURI == "" {
		t.Errorf("tool.driver = %q %q %q", drv.Name, drv.SemanticVersion, drv.InformationURI)
	}

	// Only evaluated rules: exactly those with a result.
	evaluated := map[string]bool{}
	for _, res := range r.Results {
		evaluated[res.RuleID] = true
	}
	if len(drv.Rules) != len(evaluated) {
		t.Errorf("%d rules in the driver, want the %d evaluated", len(drv.Rules), len(evaluated))
	}
	for _, ru := range drv.Rules {
		if !evaluated[ru.ID] {
			t.Errorf("rule %s is listed but was not evaluated", ru.ID)
		}
		if ru.ShortDescription.Text == "" || ru.FullDescription.Text == "" || ru.Help.Text == "" || ru.Help.Markdown == "" {
			t.Errorf("rule %s lacks a description or help", ru.ID)
		}
		meta, _, _ := r.RuleByID(ru.ID)
		if !strings.Contains(ru.Help.Markdown, meta.Remediation) && !strings.Contains(ru.Help.Text, meta.Remediation) {
			t.Errorf("rule %s help does not carry its remediation command", ru.ID)
		}
		if ru.DefaultConfiguration.Level == "" {
			t.Errorf("rule %s has no defaultConfiguration.level", ru.ID)
		}
		tags, _ := ru.Properties["tags"].([]any)
		hasSec := false
		for _, tag := range tags {
			hasSec = hasSec || tag == "security"
		}
		if !hasSec {
			t.Errorf("rule %s tags %v lack \"security\"", ru.ID, tags)
		}
		s, ok := ru.Properties["security-severity"].(string)
		v, err := strconv.ParseFloat(s, 64)
		if !ok || err != nil || v <= 0 || v > 10 {
			t.Errorf("rule %s security-severity %v is not a number string in (0,10]", ru.ID, ru.Properties["security-severity"])
		}
	}

	if len(run.Invocations) != 1 || run.Invocations[0].ExecutionSuccessful == nil {
		t.Fatalf("want invocations[0].executionSuccessful")
	}
	if got, want := len(run.Invocations[0].ToolExecutionNotifications), len(r.CollectorErrors)+r.Summary.ByStatus[StatusError]; got != want {
		t.Errorf("%d notifications, want one per collector error and rule error (%d)", got, want)
	}

	if run.Results == nil {
		t.Fatal("results must be [] even with no findings, so fixed alerts close")
	}
	want := r.Summary.ByStatus[StatusFail] + r.Summary.ByStatus[StatusWaived]
	if len(run.Results) != want {
		t.Errorf("%d results, want %d (failed and waived)", len(run.Results), want)
	}
	for _, res := range run.Results {
		if res.RuleIndex == nil || *res.RuleIndex < 0 || *res.RuleIndex >= len(drv.Rules) || drv.Rules[*res.RuleIndex].ID != res.RuleID {
			t.Errorf("result for %s does not point at its rule (ruleIndex %v)", res.RuleID, res.RuleIndex)
		}
		if len(res.Locations) != 1 {
			t.Errorf("result for %s has %d locations, want exactly 1", res.RuleID, len(res.Locations))
			continue
		}
		loc := res.Locations[0].PhysicalLocation
		if u := loc.ArtifactLocation.URI; u == "" || strings.HasPrefix(u, "/") || strings.Contains(u, "://") || strings.Contains(u, "..") {
			t.Errorf("result for %s has uri %q, want a relative path", res.RuleID, u)
		}
		if loc.Region.StartLine < 1 {
			t.Errorf("result for %s has startLine %d", res.RuleID, loc.Region.StartLine)
		}
		if h := res.PartialFingerprints["primaryLocationLineHash"]; h == "" {
			t.Errorf("result for %s has no primaryLocationLineHash", res.RuleID)
		}
		if res.Message.Text == "" || res.Level == "" {
			t.Errorf("result for %s lacks message or level", res.RuleID)
		}
		waived := res.Properties.Status == StatusWaived
		if waived != (len(res.Suppressions) == 1) {
			t.Errorf("result for %s (status %s) has %d suppressions", res.RuleID, res.Properties.Status, len(res.Suppressions))
		}
		for _, s := range res.Suppressions {
			if s.Kind != "external" || s.Justification == "" {
				t.Errorf("suppression of %s = %+v, want external with a justification", res.RuleID, s)
			}
		}
	}
}

// TestSARIFFingerprintsStable: two runs of the same host give the same
// fingerprints, whatever else changes between them; another host differs.
func TestSARIFFingerprintsStable(t *testing.T) {
	fps := func(r *Report) []string {
		var out []string
		for _, res := range parseSARIF(t, renderFormat(t, "sarif", r)).Runs[0].Results {
			out = append(out, res.RuleID+" "+res.PartialFingerprints["primaryLocationLineHash"])
		}
		return out
	}
	first := defaultInstallReport()
	second := defaultInstallReport()
	second.RunID = "another-run"
	second.StartedAt = second.StartedAt.Add(24 * time.Hour)
	second.DurationMs = 99
	second.Tool.Version = "0.3.1"
	// The engine computes the fingerprint; a report without one gets the
	// same value from the writer.
	for i := range second.Results {
		second.Results[i].Fingerprint = ""
	}
	a, b := fps(first), fps(second)
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("fingerprints changed between two runs of the same host:\n%v\n%v", a, b)
	}
	seen := map[string]bool{}
	for _, f := range a {
		if seen[f] {
			t.Errorf("two results share the fingerprint %s", f)
		}
		seen[f] = true
	}
	other := defaultInstallReport()
	other.Target.Host = "web-02"
	for i := range other.Results {
		other.Results[i].Fingerprint = ""
	}
	for i, f := range fps(other) {
		if f == a[i] {
			t.Errorf("host web-02 has web-01's fingerprint %s", f)
		}
	}
}

// TestSARIFTruncation: above the per-run limit the most severe results
// are kept, failures before waived ones, and a notification says how many
// were left out.
func TestSARIFTruncation(t *testing.T) {
	mk := func(spec ...any) *Report {
		r := fixtureBase("big")
		for i := 0; i < len(spec); i += 3 {
			sev, st, n := spec[i].(Severity), spec[i+1].(Status), spec[i+2].(int)
			for j := 0; j < n; j++ {
				res := fmt.Sprintf("%s-%s-%d", sev, st, j)
				r.Results = append(r.Results, Result{RuleID: "ARC-T0-001", Severity: sev, Status: st, Resource: res, Message: res, Fingerprint: Fingerprint("ARC-T0-001", "big", res)})
			}
		}
		r.Summarize()
		return r
	}
	tests := []struct {
		name     string
		report   *Report
		limit    int
		kept     map[string]int // severity/status -> results kept
		leftOut  int
		notified bool
	}{
		{"under the limit", mk(SeverityLow, StatusFail, 3, SeverityHigh, StatusFail, 2), 5, map[string]int{"low/fail": 3, "high/fail": 2}, 0, false},
		{"keeps the most severe", mk(SeverityLow, StatusFail, 4, SeverityCritical, StatusFail, 2, SeverityMedium, StatusFail, 3), 4,
			map[string]int{"critical/fail": 2, "medium/fail": 2}, 5, true},
		{"failures before waived of one severity", mk(SeverityHigh, StatusWaived, 3, SeverityHigh, StatusFail, 3, SeverityInfo, StatusFail, 1), 4,
			map[string]int{"high/fail": 3, "high/waived": 1}, 3, true},
		{"passes never count", mk(SeverityCritical, StatusPass, 10, SeverityLow, StatusFail, 2), 2, map[string]int{"low/fail": 2}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := (SARIFWriter{MaxResults: tc.limit}).Write(&buf, tc.report); err != nil {
				t.Fatal(err)
			}
			validateSARIF(t, tc.name, buf.Bytes())
			run := parseSARIF(t, buf.Bytes()).Runs[0]
			got := map[string]int{}
			for _, res := range run.Results {
				got[string(res.Properties.Severity)+"/"+string(res.Properties.Status)]++
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.kept) {
				t.Errorf("kept %v, want %v", got, tc.kept)
			}
			var note string
			for _, n := range run.Invocations[0].ToolExecutionNotifications {
				if n.Descriptor.ID == "arcagent/results-truncated" {
					note = n.Message.Text
				}
			}
			if tc.notified != (note != "") {
				t.Fatalf("truncation notification %q, want one: %v", note, tc.notified)
			}
			if tc.notified && !strings.HasPrefix(note, fmt.Sprintf("%d of ", tc.leftOut)) {
				t.Errorf("notification %q does not say %d were left out", note, tc.leftOut)
			}
		})
	}
}

// TestSARIFGitHubLimit writes more results than GitHub accepts in a run.
func TestSARIFGitHubLimit(t *testing.T) {
	r := bigReport(MaxSARIFResults * 2)
	d := parseSARIF(t, renderFormat(t, "sarif", r))
	run := d.Runs[0]
	if len(run.Results) != MaxSARIFResults {
		t.Fatalf("%d results, want GitHub's limit %d", len(run.Results), MaxSARIFResults)
	}
	// The fixture fails critical, high, high, medium, ...: every critical
	// and high failure fits and comes first.
	sarifTotal := r.Summary.ByStatus[StatusFail] + r.Summary.ByStatus[StatusWaived]
	found := false
	for _, n := range run.Invocations[0].ToolExecutionNotifications {
		found = found || strings.HasPrefix(n.Message.Text, fmt.Sprintf("%d of %d results were left out", sarifTotal-MaxSARIFResults, sarifTotal))
	}
	if !found {
		t.Errorf("no notification says %d of %d results were left out", sarifTotal-MaxSARIFResults, sarifTotal)
	}
	kept := map[Severity]int{}
	for _, res := range run.Results {
		if res.Properties.Status == StatusFail {
			kept[res.Properties.Severity]++
		}
	}
	for _, sev := range []Severity{SeverityCritical, SeverityHigh} {
		if kept[sev] != r.Summary.BySeverity[sev] {
			t.Errorf("kept %d %s failures of %d", kept[sev], sev, r.Summary.BySeverity[sev])
		}
	}
	if kept[SeverityInfo] != 0 && kept[SeverityMedium] < r.Summary.BySeverity[SeverityMedium] {
		t.Errorf("info results kept while medium ones were left out: %v", kept)
	}
}

func TestLocationPath(t *testing.T) {
	tests := []struct {
		in   Location
		path string
		line int
	}{
		{Location{"var/opt/azcmagent/localconfig.json", 3}, "var/opt/azcmagent/localconfig.json", 3},
		{Location{"/var/opt/azcmagent/localconfig.json", 0}, "var/opt/azcmagent/localconfig.json", 1},
		{Location{"", -4}, DefaultLocationPath, 1},
		{Location{"/", 1}, DefaultLocationPath, 1},
		{Location{"../../etc/shadow", 1}, "etc/shadow", 1},
		{Location{"./root//onboard.sh", 12}, "root/onboard.sh", 12},
	}
	for _, tc := range tests {
		if p, l := LocationPath(tc.in), LocationLine(tc.in); p != tc.path || l != tc.line {
			t.Errorf("%+v: got %s:%d, want %s:%d", tc.in, p, l, tc.path, tc.line)
		}
	}
}

func TestSemanticVersion(t *testing.T) {
	for in, want := range map[string]string{"0.3.0": "0.3.0", "v1.2.3": "1.2.3", "0.1.0-dev": "0.1.0-dev", "1.0.0+abc.1": "1.0.0+abc.1", "test": "", "1.2": "", "": ""} {
		if got := semanticVersion(in); got != want {
			t.Errorf("semanticVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecuritySeverity(t *testing.T) {
	want := map[Severity]string{SeverityCritical: "9.5", SeverityHigh: "8.0", SeverityMedium: "5.5", SeverityLow: "3.0", SeverityInfo: "1.0"}
	for sev, s := range want {
		if got := SecuritySeverity(sev); got != s {
			t.Errorf("%s: %s, want %s", sev, got, s)
		}
	}
}
