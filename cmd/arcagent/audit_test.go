package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/audit/fixture"
	"github.com/arcagent/arcagent/reports"
)

func auditJSON(t *testing.T, args ...string) (*reports.Report, int, string) {
	t.Helper()
	out, stderr, code := runCLI(t, append(args, "-o", "json")...)
	var r reports.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("audit %v: not JSON (exit %d, stderr %q): %v\n%s", args, code, stderr, err, out)
	}
	return &r, code, stderr
}

func statusOf(r *reports.Report, id string) reports.Status {
	for _, res := range r.Results {
		if res.RuleID == id {
			return res.Status
		}
	}
	return ""
}

// The seed's lockdown commands, run through the CLI on a default install,
// turn the tier0 findings they address from fail to pass.
func TestLockdownTurnsTier0Green(t *testing.T) {
	root := t.TempDir()
	fixture.New(t, root).DefaultInstall()
	before, code, _ := auditJSON(t, "--root", root, "audit", "--profile", "tier0")
	if code != 1 {
		t.Fatalf("default install: exit %d, want 1", code)
	}
	addressed := []string{"ARC-T0-001", "ARC-T0-002", "ARC-T0-003", "ARC-T0-004"}
	for _, id := range addressed {
		if statusOf(before, id) != reports.StatusFail {
			t.Fatalf("before lockdown %s = %s, want fail", id, statusOf(before, id))
		}
	}
	for _, args := range [][]string{
		{"config", "set", "incomingconnections.enabled", "false"},
		{"config", "set", "guestconfiguration.enabled", "false"},
		{"config", "set", "extensions.allowlist", "Microsoft.Azure.Monitor/AzureMonitorWindowsAgent,Microsoft.Azure.AzureDefenderForServers/MDE.Windows"},
	} {
		if _, stderr, code := runCLI(t, append([]string{"--root", root}, args...)...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	after, code, _ := auditJSON(t, "--root", root, "audit", "--profile", "tier0")
	for _, id := range addressed {
		if statusOf(after, id) != reports.StatusPass {
			t.Errorf("after lockdown %s = %s, want pass", id, statusOf(after, id))
		}
	}
	if code != 0 {
		t.Errorf("after lockdown: exit %d, want 0", code)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuditExitCodesEveryFormat(t *testing.T) {
	dir := t.TempDir()
	defaultRoot := t.TempDir()
	fixture.New(t, defaultRoot).DefaultInstall()
	hardenedPlan := writeFile(t, dir, "planned.json", `{"incomingconnections.enabled": false, "guestconfiguration.enabled": false, "extensions.allowlist": ["Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"]}`)
	corruptRoot := t.TempDir()
	tr := fixture.New(t, corruptRoot)
	tr.DefaultInstall()
	tr.File("/var/opt/azcmagent/localconfig.json", "{oops", "root", "himds", 0o640)
	badRules := t.TempDir()
	writeFile(t, badRules, "bad.yaml", "rules:\n  - id: ORG-A-001\n    title: t\n    severity: high\n    profiles: [x]\n    check: facts.nope &&\n    message: m\n    rationale: r\n    remediation: fix\n")
	badWaivers := writeFile(t, dir, "w.yaml", "waivers:\n  - rule: ARC-T0-001\n")
	badBaseline := writeFile(t, dir, "b.json", "not json")

	cases := []struct {
		name string
		args []string
		code int
	}{
		{"findings at or above high", []string{"--root", defaultRoot, "audit"}, 1},
		{"fail-on critical still fails on criticals", []string{"--root", defaultRoot, "audit", "--fail-on", "critical"}, 1},
		{"a clean planned config passes", []string{"audit", "--config", hardenedPlan}, 0},
		{"medium findings under fail-on high pass", []string{"--root", defaultRoot, "audit", "--rule", "ARC-BL-007"}, 0},
		{"medium findings with fail-on medium fail", []string{"--root", defaultRoot, "audit", "--rule", "ARC-BL-007", "--fail-on", "medium"}, 1},
		{"corrupt localconfig cannot complete", []string{"--root", corruptRoot, "audit", "--profile", "tier0"}, 3},
		{"bad fail-on", []string{"--root", defaultRoot, "audit", "--fail-on", "severe"}, 2},
		{"unknown profile", []string{"--root", defaultRoot, "audit", "--profile", "tier9"}, 2},
		{"unknown rule", []string{"--root", defaultRoot, "audit", "--rule", "ARC-XX-1"}, 2},
		{"rule file that does not compile", []string{"--root", defaultRoot, "audit", "--rules", badRules}, 2},
		{"bad waiver file", []string{"--root", defaultRoot, "audit", "--waivers", badWaivers}, 2},
		{"bad baseline", []string{"--root", defaultRoot, "audit", "--baseline", badBaseline}, 2},
		{"missing root", []string{"--root", filepath.Join(dir, "nope"), "audit"}, 2},
		{"missing planned config", []string{"audit", "--config", filepath.Join(dir, "nope.json")}, 2},
	}
	for _, format := range reports.Formats() {
		for _, c := range cases {
			t.Run(format+"/"+c.name, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "report."+format)
				_, stderr, code := runCLI(t, append(c.args, "-o", format+"="+out)...)
				if code != c.code {
					t.Fatalf("exit %d, want %d; stderr: %s", code, c.code, stderr)
				}
				fi, err := os.Stat(out)
				switch {
				case c.code <= 1 && (err != nil || fi.Size() == 0):
					t.Errorf("no %s report written: %v", format, err)
				case c.code == 2 && err == nil:
					t.Errorf("a report was written for bad usage")
				}
				if c.code == 2 && !strings.Contains(stderr, "what to do:") {
					t.Errorf("usage error without a remedy: %s", stderr)
				}
			})
		}
	}
}

func TestAuditSeveralOutputsOneRun(t *testing.T) {
	root := t.TempDir()
	fixture.New(t, root).DefaultInstall()
	dir := t.TempDir()
	jsonFile, sarifFile := filepath.Join(dir, "a.json"), filepath.Join(dir, "a.sarif")
	out, stderr, code := runCLI(t, "--root", root, "audit", "-o", "table", "-o", "json="+jsonFile, "-o", "sarif="+sarifFile)
	if code != 1 || !strings.Contains(out, "ARC-T0-001") || !strings.Contains(out, "gate: FAILED") {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, stderr)
	}
	for _, f := range []string{jsonFile, sarifFile} {
		if b, err := os.ReadFile(f); err != nil || !json.Valid(b) {
			t.Errorf("%s: %v", f, err)
		}
	}
	_, stderr, code = runCLI(t, "--root", root, "audit", "-o", "json", "-o", "table")
	if code != 2 || !strings.Contains(stderr, "both write to standard output") {
		t.Errorf("two formats to stdout: exit %d %s", code, stderr)
	}
	_, stderr, code = runCLI(t, "--root", root, "audit", "-o", "pdf")
	if code != 2 || !strings.Contains(stderr, "unknown report format") {
		t.Errorf("unknown format: exit %d %s", code, stderr)
	}
}

func TestAuditDefaultInstallNoteAndDumpFacts(t *testing.T) {
	root := t.TempDir()
	out, _, code := runCLI(t, "--root", root, "audit")
	if code != 1 || !strings.Contains(out, "before you connect, this is what a default install would allow") {
		t.Errorf("no-agent audit: exit %d\n%s", code, out)
	}
	facts, _, code := runCLI(t, "--root", root, "audit", "--dump-facts")
	var m map[string]any
	if code != 0 || json.Unmarshal([]byte(facts), &m) != nil || m["config"] == nil || m["target"] == nil {
		t.Errorf("--dump-facts: exit %d %q", code, facts)
	}
}

func TestRulesListAndShow(t *testing.T) {
	out, _, code := runCLI(t, "rules", "list")
	if code != 0 || !strings.Contains(out, "ARC-T0-001") || !strings.Contains(out, "ARC-EX-003") {
		t.Errorf("rules list: %d %s", code, out)
	}
	out, _, code = runCLI(t, "rules", "show", "arc-t0-001")
	if code != 0 || !strings.Contains(out, "arcagent config set incomingconnections.enabled false") || !strings.Contains(out, "critical") {
		t.Errorf("rules show: %d %s", code, out)
	}
	if _, _, code := runCLI(t, "rules", "show", "NOPE-1"); code != 2 {
		t.Errorf("rules show unknown: exit %d", code)
	}
	out, _, code = runCLI(t, "rules", "list", "-j")
	var rs []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &rs) != nil || len(rs) < 30 {
		t.Errorf("rules list -j: %d", code)
	}
}

// An incomplete audit (exit 3) says so with its code and what to do, and
// the table does not claim the gate passed.
func TestAuditIncompleteExplains(t *testing.T) {
	root := t.TempDir()
	tr := fixture.New(t, root)
	tr.DefaultInstall()
	tr.File("/var/opt/azcmagent/localconfig.json", "{bad", "root", "himds", 0o640)
	out, stderr, code := runCLI(t, "--root", root, "audit", "--profile", "tier0")
	if code != 3 || !strings.Contains(stderr, "ARC0035") || !strings.Contains(stderr, "ARC-T0-001") || !strings.Contains(stderr, "what to do:") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(out, "gate: INCOMPLETE") || strings.Contains(out, "gate: passed") {
		t.Errorf("table verdict wrong:\n%s", out)
	}
	_, stderr, code = runCLI(t, "--root", root, "audit", "--config", "../../examples/ci/planned-localconfig.json")
	if code != 2 || !strings.Contains(stderr, "alternatives") {
		t.Errorf("--root with --config: exit %d %q", code, stderr)
	}
}
