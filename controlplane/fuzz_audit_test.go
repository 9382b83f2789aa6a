package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/reports"
)

// FuzzParseAuditUpload feeds upload bodies to the audit report parser: no
// panic, only 400 API errors, and an accepted report yields findings only
// for failing results of rules it describes, one per rule, each bounded.
func FuzzParseAuditUpload(f *testing.F) {
	for _, name := range []string{"default-install.json", "hardened.json"} {
		if b, err := os.ReadFile(filepath.Join("..", "reports", "testdata", name)); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{"schemaVersion":1,"tool":{"name":"arcagent","version":"1","informationUri":""},"runId":"r","startedAt":"2026-01-01T00:00:00Z","durationMs":1,"target":{"kind":"host","host":"h"},"profiles":["all"],"failOn":"high","summary":{"total":1,"byStatus":{},"failedBySeverity":{},"gateFailed":true},"rules":[{"id":"R1","title":"t","severity":"high","profiles":[],"rationale":"","remediation":"fix"}],"results":[{"ruleId":"R1","severity":"high","status":"fail","message":"m","location":{"path":"","line":1},"fingerprint":"0000000000000000"}],"waivers":[],"collectorErrors":[]}`,
		`{"schemaVersion":1,"tool":{"name":"arcagent"},"startedAt":"2026-01-01T00:00:00Z","target":{"kind":"host"},"rules":[{"id":"R1","severity":"low"}],"results":[{"ruleId":"r1","severity":"low","status":"fail"},{"ruleId":"R1","severity":"critical","status":"fail","resource":"x"}]}`,
		`{"schemaVersion":1,"tool":{"name":"arcagent"},"startedAt":"2026-01-01T00:00:00Z","target":{"kind":"planned"}}`,
		`{"schemaVersion":2}`,
		`{"schemaVersion":1,"schemaVersion":1}`,
		`{"SchemaVersion":1}`,
		`{"schemaVersion":"1"}`,
		`[]`,
		`null`,
		``,
		`{"schemaVersion":1,"tool":{"name":"a"},"startedAt":"2026-01-01T00:00:00Z","target":{"kind":"root"},"profiles":["Tier0","tier0","x y"]}`,
		"{\"schemaVersion\":1,\"tool\":{\"name\":\"a\xff\"}}",
		`{"schemaVersion":1,"x":` + strings.Repeat(`{"k":`, 200) + "1" + strings.Repeat("}", 200) + `}`,
		`{"schemaVersion":1,"tool":{"name":"arcagent"},"startedAt":"2026-01-01T00:00:00Z","target":{"kind":"host"},"rules":[{"id":"R1","severity":"high"}],"results":[{"ruleId":"R1","severity":"high","status":"fail","resource":"\u001b[2J\n"}]}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		pa, err := ParseAuditUpload(data, now)
		checkAPIError(t, err)
		if err != nil {
			return
		}
		if pa.Report.SchemaVersion != reports.SchemaVersion || pa.Profile == "" || len(pa.Profile) > 16*65 {
			t.Fatalf("accepted %+v profile %q", pa.Report.SchemaVersion, pa.Profile)
		}
		seen := map[string]bool{}
		for _, fd := range pa.Findings {
			key := strings.ToLower(fd.RuleID)
			if seen[key] {
				t.Fatalf("rule %s twice", fd.RuleID)
			}
			seen[key] = true
			if _, _, ok := pa.Report.RuleByID(fd.RuleID); !ok {
				t.Fatalf("finding of undescribed rule %s", fd.RuleID)
			}
			if reports.Severity(fd.Severity).Rank() < 0 || len(fd.Message) > maxFindingMessage+64 {
				t.Fatalf("finding %+v", fd)
			}
		}
	})
}

// TestParseAuditUploadGoldens: the reports package's golden JSON reports
// of a host or a root are accepted, with one finding per failing rule;
// those of a planned configuration are refused.
func TestParseAuditUploadGoldens(t *testing.T) {
	for _, name := range []string{"default-install.json", "hardened.json", "waivers-baseline-errors.json"} {
		b, err := os.ReadFile(filepath.Join("..", "reports", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		pa, err := ParseAuditUpload(b, time.Now())
		if strings.Contains(string(b), `"kind": "planned"`) {
			if err == nil || !strings.Contains(err.Error(), "planned configuration") {
				t.Fatalf("%s: a planned configuration's report was not refused: %v", name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rules := map[string]bool{}
		for _, r := range pa.Report.Results {
			if r.Status == reports.StatusFail {
				rules[r.RuleID] = true
			}
		}
		if len(pa.Findings) != len(rules) {
			t.Fatalf("%s: %d findings for %d failing rules", name, len(pa.Findings), len(rules))
		}
	}
}
