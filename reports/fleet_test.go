package reports

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func fleetFixture() *FleetReport {
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	rid := func(rg, name string) string {
		return "/subscriptions/0b7c9d1e-0000-4000-8000-000000000001/resourceGroups/" + rg + "/providers/Microsoft.HybridCompute/machines/" + name
	}
	f := func(name, id, rg, rule string, sev Severity, title, msg, fix string) FleetFinding {
		return FleetFinding{Machine: name, MachineID: id, ResourceID: rid(rg, name), SubscriptionID: "0b7c9d1e-0000-4000-8000-000000000001", ResourceGroup: rg,
			Profile: "all", RuleID: rule, Severity: sev, Title: title, Message: msg, Remediation: fix, ReportedAt: at}
	}
	return &FleetReport{
		Tool:        Tool{Name: "arcagent", Version: "1.4.0", InformationURI: "https://github.com/arcagent/arcagent"},
		GeneratedAt: at.Add(time.Hour),
		Scope:       "severity high and above",
		Findings: []FleetFinding{
			f("web1", "7f1c2a4e-1111-4000-8000-000000000001", "web", "ARC-T0-001", SeverityCritical, "Extensions are restricted by an allowlist", "extensions.allowlist is empty: every extension may install", "arcagent config set extensions.allowlist Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"),
			f("db1", "7f1c2a4e-2222-4000-8000-000000000002", "db", "ARC-T0-001", SeverityCritical, "Extensions are restricted by an allowlist", "extensions.allowlist is empty: every extension may install", "arcagent config set extensions.allowlist Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"),
			f("web1", "7f1c2a4e-1111-4000-8000-000000000001", "web", "ARC-PRIV-003", SeverityHigh, "The machine key is readable only by himds", "/var/opt/azcmagent/certs/machine.key is mode 0644 <world-readable> & \"quoted\"", "chmod 0600 /var/opt/azcmagent/certs/machine.key"),
		},
	}
}

// TestFleetGoldens renders the fleet fixture in every format; SARIF has
// one run per machine and validates against the SARIF schema.
func TestFleetGoldens(t *testing.T) {
	for _, f := range goldenFormats {
		t.Run(f.format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteFleet(&buf, f.format, fleetFixture(), Options{}); err != nil {
				t.Fatal(err)
			}
			name := "fleet/fleet." + f.ext
			checkGolden(t, name, buf.Bytes())
			if f.format != "sarif" {
				return
			}
			validateSARIF(t, name, buf.Bytes())
			var log struct {
				Runs []struct {
					Properties struct {
						Machine FleetMachine `json:"machine"`
					} `json:"properties"`
					Results []struct {
						RuleID string `json:"ruleId"`
					} `json:"results"`
				} `json:"runs"`
			}
			if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
				t.Fatal(err)
			}
			if len(log.Runs) != 2 || log.Runs[0].Properties.Machine.Name != "db1" || log.Runs[1].Properties.Machine.Name != "web1" ||
				len(log.Runs[0].Results) != 1 || len(log.Runs[1].Results) != 2 {
				t.Fatalf("runs: %+v", log.Runs)
			}
		})
	}
	// No findings: still a valid log, with no runs.
	var buf bytes.Buffer
	if err := WriteFleet(&buf, "sarif", &FleetReport{GeneratedAt: time.Unix(0, 0)}, Options{}); err != nil {
		t.Fatal(err)
	}
	validateSARIF(t, "empty fleet", buf.Bytes())
}
