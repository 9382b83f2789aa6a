//go:build !windows

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arcagent/arcagent/audit/fixture"
	"github.com/arcagent/arcagent/releases"
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

// shellWords splits a printed command line: words separated by spaces,
// "…" and '…' quoted.
func shellWords(line string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	in := false
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// Pasting the fixes a --root audit prints changes the tree (never this
// host) and turns the tier0 findings green; the allowlist advice names the
// Linux agents, so they stay installable.
func TestPastedFixesTurnTier0Green(t *testing.T) {
	root := t.TempDir()
	fixture.New(t, root).DefaultInstall()
	before, code, _ := auditJSON(t, "--root", root, "audit", "--profile", "tier0")
	if code != 1 {
		t.Fatalf("default install: exit %d, want 1", code)
	}
	addressed := []string{"ARC-T0-001", "ARC-T0-002", "ARC-T0-003", "ARC-T0-004"}
	done := map[string]bool{}
	for _, id := range addressed {
		if statusOf(before, id) != reports.StatusFail {
			t.Fatalf("before lockdown %s = %s, want fail", id, statusOf(before, id))
		}
		ru, _, _ := before.RuleByID(id)
		line := strings.SplitN(ru.Remediation, "\n", 2)[0]
		if strings.Contains(line, "Windows") {
			t.Errorf("%s advises Windows agents on a Linux tree: %s", id, line)
		}
		words := shellWords(line)
		if len(words) < 4 || words[0] != "arcagent" || words[1] != "--root" || words[2] != root {
			t.Fatalf("%s fix does not act on the tree: %q", id, line)
		}
		if done[line] {
			continue
		}
		done[line] = true
		if _, stderr, code := runCLI(t, words[1:]...); code != 0 {
			t.Fatalf("pasting %q: exit %d: %s", line, code, stderr)
		}
	}
	after, code, _ := auditJSON(t, "--root", root, "audit", "--profile", "tier0")
	for _, id := range addressed {
		if statusOf(after, id) != reports.StatusPass {
			t.Errorf("after the fixes %s = %s, want pass", id, statusOf(after, id))
		}
	}
	if code != 0 {
		t.Errorf("after the fixes: exit %d, want 0", code)
	}
	out, _, _ := runCLI(t, "--root", root, "config", "get", "extensions.allowlist")
	for _, agent := range []string{"Microsoft.Azure.Monitor/AzureMonitorLinuxAgent", "Microsoft.Azure.AzureDefenderForServers/MDE.Linux"} {
		if !strings.Contains(out, agent) {
			t.Errorf("the pasted allowlist lacks %s: %s", agent, out)
		}
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

// A planned configuration: bad files are bad input (exit 2) with a hint
// that never touches the host; findings point at the file as given, in
// SARIF and JUnit; fixes edit the file; unknown keys are warned about.
func TestAuditPlannedConfig(t *testing.T) {
	dir, err := os.MkdirTemp(".", "planned-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bad := writeFile(t, dir, "bad.json", `{"incomingconnections.enabled": "maybe"}`)
	_, stderr, code := runCLI(t, "audit", "--config", bad)
	if code != 2 || strings.Contains(stderr, "config clear") || !strings.Contains(stderr, "what to do:") {
		t.Errorf("invalid --config: exit %d, stderr %q", code, stderr)
	}
	plan := writeFile(t, dir, "plan.json", "{\n  \"incomingconnection.enabled\": false,\n  \"guestconfiguration.enabled\": false\n}\n")
	sarifFile, junitFile := filepath.Join(t.TempDir(), "a.sarif"), filepath.Join(t.TempDir(), "a.xml")
	out, stderr, code := runCLI(t, "audit", "--config", plan, "--profile", "tier0", "-o", "table", "-o", "sarif="+sarifFile, "-o", "junit="+junitFile)
	if code != 1 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, plan+`:2: unknown key "incomingconnection.enabled"`) || !strings.Contains(stderr, "did you mean incomingconnections.enabled?") {
		t.Errorf("no unknown-key warning: %q", stderr)
	}
	if !strings.Contains(out, "fix ARC-T0-001: edit "+plan+`: set "incomingconnections.enabled" to false`) || strings.Contains(out, "fix ARC-T0-001: arcagent config set") {
		t.Errorf("planned fix is not an edit of the file:\n%s", out)
	}
	// The plan does not set the key (it misspells it): its value is the
	// default's, and the message says so rather than naming the plan.
	if !strings.Contains(out, "(configured true, source default)") {
		t.Errorf("ARC-T0-001 names the wrong source for a key the plan does not set:\n%s", out)
	}
	sarif, _ := os.ReadFile(sarifFile)
	junit, _ := os.ReadFile(junitFile)
	want := filepath.ToSlash(filepath.Clean(plan))
	if !strings.Contains(string(sarif), `"uri": "`+want+`"`) || strings.Contains(string(sarif), "localconfig.json") {
		t.Errorf("SARIF does not locate results in %s:\n%s", want, sarif)
	}
	if !strings.Contains(string(junit), `file="`+want+`"`) || strings.Contains(string(junit), "localconfig.json") {
		t.Errorf("JUnit does not locate results in %s:\n%s", want, junit)
	}
}

// An audit that could not evaluate a rule at or above --fail-on exits 3
// even when it also has findings; --fail-on never reports without gating.
func TestAuditErrorWinsAndNever(t *testing.T) {
	root := t.TempDir()
	tr := fixture.New(t, root)
	tr.DefaultInstall()
	tr.File("/var/opt/azcmagent/localconfig.json", "{bad", "root", "himds", 0o640)
	tr.File("/home/alice/connect.json", `{"onboarding-token": "abcdefabcdefabcdefabcdefabcdefabcdef"}`, "alice", "alice", 0o600)
	r, code, _ := auditJSON(t, "--root", root, "audit")
	if statusOf(r, "ARC-BL-005") != reports.StatusFail || statusOf(r, "ARC-T0-001") != reports.StatusError {
		t.Fatalf("fixture: BL-005 %s, T0-001 %s", statusOf(r, "ARC-BL-005"), statusOf(r, "ARC-T0-001"))
	}
	if code != 3 {
		t.Errorf("findings and errors: exit %d, want 3", code)
	}
	out, stderr, code := runCLI(t, "--root", root, "audit", "--fail-on", "never")
	if code != 0 || !strings.Contains(out, "gate: off") || !strings.Contains(stderr, "could not be evaluated") {
		t.Errorf("--fail-on never: exit %d, stderr %q\n%s", code, stderr, out)
	}
	if _, _, code := runCLI(t, "--root", root, "audit", "--fail-on", "never", "--rule", "NOPE-1"); code != 2 {
		t.Errorf("--fail-on never with bad usage: exit %d, want 2", code)
	}
}

// -q prints one verdict line and no report; files are still written.
func TestAuditQuiet(t *testing.T) {
	root := t.TempDir()
	fixture.New(t, root).DefaultInstall()
	out, stderr, code := runCLI(t, "--root", root, "audit", "-q", "--profile", "tier0")
	if code != 1 || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "FAILED: 4 findings at or above high") || stderr != "" {
		t.Errorf("-q: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	file := filepath.Join(t.TempDir(), "r.json")
	out, _, code = runCLI(t, "--root", root, "audit", "--quiet", "-o", "json="+file, "--fail-on", "never")
	if b, err := os.ReadFile(file); code != 0 || err != nil || !json.Valid(b) || !strings.HasPrefix(out, "report only") {
		t.Errorf("-q with a file: exit %d, %v, stdout %q", code, err, out)
	}
	if _, stderr, code := runCLI(t, "--root", root, "audit", "-q", "-o", "json"); code != 2 || !strings.Contains(stderr, "-o json=FILE") {
		t.Errorf("-q with a report on stdout: exit %d %q", code, stderr)
	}
}

func TestAuditCompletion(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "audit", "--rule", ""}, []string{"ARC-T0-001\t", "ARC-PR-020\t"}},
		{[]string{"__complete", "audit", "--skip-rule", ""}, []string{"ARC-BL-005\t"}},
		{[]string{"__complete", "audit", "--profile", ""}, []string{"all\n", "tier0\n", "privilege\n"}},
		{[]string{"__complete", "audit", "-o", ""}, []string{"sarif\n", "sarif=\n", "junit\n"}},
		{[]string{"__complete", "audit", "--fail-on", ""}, []string{"critical\n", "never\n"}},
		{[]string{"__complete", "audit", "--min-severity", ""}, []string{"info\n"}},
		{[]string{"__complete", "audit", "--rules", "testdata/budget-rules", "--rule", ""}, []string{"EVIL-BUDGET-001\t", "ARC-T0-001\t"}},
		{[]string{"__complete", "rules", "show", "A"}, []string{"ARC-T0-001\t", "ARC-BL-005\t"}},
		{[]string{"__complete", "rules", "--rules", "testdata/budget-rules", "show", ""}, []string{"EVIL-BUDGET-002\t"}},
		{[]string{"__complete", "report", "convert", "r.json", "-o", ""}, []string{"csv\n", "sarif=\n", "html\n"}},
		{[]string{"__complete", "report", "convert", "r.json", "--fail-on", ""}, []string{"critical\n", "info\n", "never\n"}},
		{[]string{"__complete", "report", "convert", ""}, []string{"json\n:8\n"}},
		{[]string{"__complete", "fleet", "currency", "-o", ""}, []string{"csv\n", "junit=\n", "markdown\n"}},
		{[]string{"__complete", "fleet", "currency", "--fail-on", ""}, []string{"behind\n", "unsupported\n"}},
	} {
		out, _, _ := runCLI(t, c.args...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: no %q in\n%s", c.args, w, out)
			}
		}
	}
	// Once the rule id is given, rules show completes nothing more.
	if out, _, _ := runCLI(t, "__complete", "rules", "show", "ARC-T0-001", ""); strings.Contains(out, "ARC-") {
		t.Errorf("rules show ID completes a second id:\n%s", out)
	}
}

// Every command that takes -o refuses an unknown format in one shape, its
// formats sorted, under the code README documents for it.
func TestUnknownFormatOneShape(t *testing.T) {
	dir := t.TempDir()
	rep := writeReport(t, dir, "r.json", convertReport(reports.Result{RuleID: "ARC-T0-001", Severity: reports.SeverityCritical, Status: reports.StatusPass, Message: "ok"}))
	inv := filepath.Join(dir, "fleet.json")
	if err := os.WriteFile(inv, []byte(`[]`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args    []string
		code    string
		formats []string
	}{
		{[]string{"--root", dir, "audit", "-o", "pdf"}, "ARC0001", reports.Formats()},
		{[]string{"report", "convert", rep, "-o", "pdf"}, "ARC0001", reports.Formats()},
		{[]string{"fleet", "currency", "--inventory", inv, "--github-repo", "a/b", "-o", "pdf"}, "ARC0311", releases.Formats()},
	} {
		_, stderr, code := runCLI(t, c.args...)
		want := c.code + `: -o: unknown report format "pdf" (known: ` + strings.Join(slices.Sorted(slices.Values(c.formats)), ", ") + ")"
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, stderr, want)
		}
	}
}

func TestConfigSetDidYouMean(t *testing.T) {
	_, stderr, code := runCLI(t, "--root", t.TempDir(), "config", "set", "incomingconnection.enabled", "x")
	if code != 2 || !strings.Contains(stderr, "did you mean incomingconnections.enabled?") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// A rule over its CEL cost budget is an error result naming the rule (exit
// 3 at its severity), not a crash or a hang; the other rules still run.
func TestAuditRuleOverBudget(t *testing.T) {
	root := t.TempDir()
	r, code, _ := auditJSON(t, "--root", root, "audit", "--rules", "testdata/budget-rules", "--profile", "evil")
	if code != 3 || statusOf(r, "EVIL-BUDGET-001") != reports.StatusError || statusOf(r, "EVIL-BUDGET-002") != reports.StatusPass {
		t.Fatalf("exit %d, statuses %s %s", code, statusOf(r, "EVIL-BUDGET-001"), statusOf(r, "EVIL-BUDGET-002"))
	}
	_, stderr, _ := runCLI(t, "--root", root, "audit", "--rules", "testdata/budget-rules", "--profile", "evil")
	if !strings.Contains(stderr, "EVIL-BUDGET-001") || !strings.Contains(stderr, "evaluation budget") {
		t.Errorf("stderr does not name the rule over budget: %q", stderr)
	}
}

// The table's not-applicable lines are sorted by reason, ids sorted within
// each, every reason a sentence rather than CEL.
func TestAuditNotApplicableSorted(t *testing.T) {
	root := t.TempDir()
	fixture.New(t, root).DefaultInstall()
	out, _, _ := runCLI(t, "--root", root, "audit", "-o", "table")
	var reasons []string
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, "not applicable (")
		if !ok {
			continue
		}
		i := strings.LastIndex(rest, "): ")
		why, ids := rest[:i], strings.Split(rest[i+3:], ", ")
		reasons = append(reasons, why)
		if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
			t.Errorf("ids not sorted or repeated: %s", line)
		}
		if strings.Contains(why, "facts.") || strings.Contains(why, "&&") {
			t.Errorf("raw CEL in a reason: %s", line)
		}
	}
	if len(reasons) < 2 || !slices.IsSorted(reasons) {
		t.Errorf("reasons not sorted: %q\n%s", reasons, out)
	}
}

// SIGTERM stops an audit stuck in a hostile rule (every item under the
// cost budget, far too many items): exit 3, ARC0036, the rule named.
func TestAuditSIGTERMStopsHostileRule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildArcagent(t)
	cmd := exec.Command(bin, "--root", t.TempDir(), "audit", "--rules", "testdata/slow-rules", "--profile", "evil")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Let it reach the rule (signal handling is set up long before).
	time.Sleep(time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// A safety net, not a timing assertion: without interrupts the
	// process would run for many minutes.
	stop := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	defer stop.Stop()
	err := cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if code != 3 || !strings.Contains(stderr.String(), "ARC0036") || !strings.Contains(stderr.String(), "EVIL-SLOW-001") {
		t.Errorf("after SIGTERM: exit %d (%v), stderr %q", code, err, stderr.String())
	}
}

// --strict makes a tree without an install record a critical signature
// failure (ARC-EX-001) on a --root target; without it the tree is only
// ARC-EX-004's medium finding, below the default gate. Rules and
// --dump-facts see the option as facts.options.strict.
func TestAuditStrict(t *testing.T) {
	root := t.TempDir()
	tr := fixture.New(t, root)
	tr.DefaultInstall()
	tr.LocalConfig(fixture.Tier0Config())
	tr.Connect(time.Now().Add(-time.Minute))
	pub := tr.TrustPublisher("microsoft-monitor", "Microsoft.Azure.Monitor")
	tr.InstallExtension(pub, "Microsoft.Azure.Monitor", "AzureMonitorLinuxAgent", "1.2.0")
	tr.UnsignedExtension("Microsoft.Azure.Monitor", "AzureMonitorLinuxAgent", "0.9.0")
	const unmanaged = "var/lib/waagent/Microsoft.Azure.Monitor.AzureMonitorLinuxAgent-0.9.0"
	find := func(r *reports.Report, id string) (reports.Result, bool) {
		for _, res := range r.Results {
			if res.RuleID == id && res.Location.Path == unmanaged {
				return res, true
			}
		}
		return reports.Result{}, false
	}
	for _, tc := range []struct {
		args     []string
		code     int
		ex001    reports.Status // "" : no ARC-EX-001 result for the tree
		strictIn bool
	}{
		{nil, 0, "", false},
		{[]string{"--strict"}, 1, reports.StatusFail, true},
	} {
		r, code, stderr := auditJSON(t, append([]string{"--root", root, "audit", "--profile", "extensions"}, tc.args...)...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, stderr)
		}
		if res, ok := find(r, "ARC-EX-004"); !ok || res.Status != reports.StatusFail || res.Severity != reports.SeverityMedium {
			t.Errorf("%v: ARC-EX-004 for the unmanaged tree: %+v", tc.args, res)
		}
		res, ok := find(r, "ARC-EX-001")
		switch {
		case tc.ex001 == "" && ok:
			t.Errorf("%v: ARC-EX-001 judged the unmanaged tree: %s %s", tc.args, res.Status, res.Message)
		case tc.ex001 != "" && (!ok || res.Status != tc.ex001 || res.Severity != reports.SeverityCritical):
			t.Errorf("%v: ARC-EX-001 for the unmanaged tree: %+v, want critical %s", tc.args, res, tc.ex001)
		}
		out, _, code := runCLI(t, append([]string{"--root", root, "audit", "--dump-facts"}, tc.args...)...)
		var facts struct {
			Options struct {
				Strict bool `json:"strict"`
			} `json:"options"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &facts) != nil || facts.Options.Strict != tc.strictIn {
			t.Errorf("%v --dump-facts: exit %d, options.strict %v, want %v", tc.args, code, facts.Options.Strict, tc.strictIn)
		}
	}
	// A planned configuration has no extensions: --strict is accepted and
	// changes nothing there.
	cfg := writeFile(t, t.TempDir(), "planned.json", `{"incomingconnections.enabled": false}`)
	a, codeA, _ := auditJSON(t, "audit", "--config", cfg)
	b, codeB, _ := auditJSON(t, "audit", "--config", cfg, "--strict")
	if codeA != codeB || a.Summary.ByStatus[reports.StatusFail] != b.Summary.ByStatus[reports.StatusFail] {
		t.Errorf("--config with --strict: exit %d vs %d, fails %d vs %d", codeA, codeB, a.Summary.ByStatus[reports.StatusFail], b.Summary.ByStatus[reports.StatusFail])
	}
}

// An install record the audit cannot read (here: audited as user nobody,
// the record directory root's 0700) is neither "not installed by this
// agent" nor a pass: every ARC-EX rule on that extension is an error, and
// the audit is incomplete (exit 3).
func TestAuditUnreadableRecordIsError(t *testing.T) {
	fixture.RequireRoot(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody to drop to")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	bin := buildArcagent(t)
	root := t.TempDir()
	tr := fixture.New(t, root)
	tr.DefaultInstall()
	tr.LocalConfig(fixture.Tier0Config())
	pub := tr.TrustPublisher("microsoft-monitor", "Microsoft.Azure.Monitor")
	name := tr.InstallExtension(pub, "Microsoft.Azure.Monitor", "AzureMonitorLinuxAgent", "1.2.0")
	// nobody may list the extensions and the records, not read the record.
	for d := root; d != filepath.Clean(os.TempDir()) && d != "/" && d != "."; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	_ = os.Chmod(filepath.Dir(bin), 0o755)
	for _, d := range []string{"/var/lib/waagent", "/var/lib/waagent/.arcagent"} {
		if err := os.Chmod(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "/var/lib/waagent/.arcagent", name), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--root", root, "audit", "--profile", "extensions", "-o", "json")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.Output()
	ee, _ := err.(*exec.ExitError)
	if ee == nil || ee.ExitCode() != 3 {
		t.Fatalf("exit %v, want 3 (incomplete)\n%s", err, out)
	}
	var r reports.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	got := map[string]reports.Status{}
	for _, res := range r.Results {
		got[res.RuleID] = res.Status
		if res.Status == reports.StatusError && !strings.Contains(res.Reason, "install record cannot be read") {
			t.Errorf("%s: reason %q", res.RuleID, res.Reason)
		}
	}
	for _, id := range []string{"ARC-EX-001", "ARC-EX-002", "ARC-EX-003", "ARC-EX-004"} {
		if got[id] != reports.StatusError {
			t.Errorf("%s: %s, want error", id, got[id])
		}
	}
}
