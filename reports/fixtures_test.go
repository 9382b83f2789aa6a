package reports

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The -update flag rewrites the golden files under testdata/:
//
//	go test ./reports/ -run Golden -update
//
// It is registered only if no other test file of the package did.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/")
	}
}

func updatingGoldens() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updatingGoldens() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden %s: %v (run `go test ./reports/ -run %s -update` to create it)", path, err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; if the change is intended, run `go test ./reports/ -run %s -update` and review the diff.\n%s", path, strings.SplitN(t.Name(), "/", 2)[0], firstDiff(want, got))
	}
}

// firstDiff shows the first line where two outputs differ.
func firstDiff(want, got []byte) string {
	wl, gl := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g []byte
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if !bytes.Equal(w, g) {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + string(w) + "\n  got:  " + string(g)
		}
	}
	return "(no line differs)"
}

var fixtureStart = time.Date(2026, 11, 28, 10, 15, 0, 0, time.UTC)

// fixtureRules are rule metadata as the built-in packs describe them.
func fixtureRules() []Rule {
	return []Rule{
		{
			ID: "ARC-T0-001", Title: "Extensions are limited to an allowlist", Severity: SeverityCritical, Profiles: []string{"tier0", "baseline"},
			Rationale:   "Without an allowlist anyone who can write the machine's representation in the control plane can run any extension, as root, on this server.",
			Remediation: `sudo arcagent config set extensions.allowlist "Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"`,
			References:  []string{"https://learn.microsoft.com/azure/azure-arc/servers/security-extensions", "docs/architecture.md"},
			Source:      "builtin:tier0",
		},
		{
			ID: "ARC-T0-002", Title: "Incoming remote connections are disabled", Severity: SeverityHigh, Profiles: []string{"tier0"},
			Rationale:   "Arc SSH and remote connectivity give the control plane an interactive path onto a Tier 0 server.",
			Remediation: "sudo arcagent config set incomingconnections.enabled false",
			Source:      "builtin:tier0",
		},
		{
			ID: "ARC-T0-003", Title: "Guest configuration cannot change the server", Severity: SeverityHigh, Profiles: []string{"tier0"},
			Rationale:   "Guest configuration in an enforce mode lets control plane policy change settings as root.",
			Remediation: "sudo arcagent config set guestconfiguration.enabled false",
			Source:      "builtin:tier0",
		},
		{
			ID: "ARC-T0-004", Title: "Local controls are locked in monitor mode", Severity: SeverityMedium, Profiles: []string{"tier0", "baseline"},
			Rationale:   "Monitor mode stops extension lists from being widened without a local change.",
			Remediation: "sudo arcagent config set config.mode monitor",
			Source:      "builtin:tier0",
		},
		{
			ID: "ARC-T0-010", Title: "No onboarding secrets are left on disk", Severity: SeverityHigh, Profiles: []string{"tier0", "baseline"},
			Rationale:   "A service principal secret in an onboarding script can connect other machines to your subscription.",
			Remediation: "sudo shred -u /root/onboard.sh   # and rotate the service principal secret",
			Source:      "builtin:tier0",
		},
		{
			ID: "ARC-T0-020", Title: "Agent directories have their documented modes", Severity: SeverityMedium, Profiles: []string{"baseline"},
			Rationale:   "Group- or world-readable key material lets local users impersonate the machine.",
			Remediation: "sudo chmod 0700 /var/opt/azcmagent/certs",
			Source:      "builtin:baseline",
		},
		{
			ID: "ARC-SR-001", Title: "The agent version is supported", Severity: SeverityLow, Profiles: []string{"baseline"},
			Rationale:   "Versions out of support receive no security fixes.",
			Remediation: "sudo apt-get install --only-upgrade arcagent",
			Source:      "builtin:baseline",
		},
		{
			ID: "ARC-SR-002", Title: "Egress goes through a proxy", Severity: SeverityInfo, Profiles: []string{"baseline"},
			Rationale:   "A proxy gives one place to log and restrict where the agent connects.",
			Remediation: "sudo arcagent config set proxy.url http://proxy.example:3128",
			Source:      "builtin:baseline",
		},
		{
			// Loaded but out of the audited profiles: never evaluated, so
			// SARIF must not list it.
			ID: "ARC-GC-001", Title: "Guest configuration assignments are signed", Severity: SeverityMedium, Profiles: []string{"guestconfig"},
			Rationale: "Unsigned assignments can be altered in transit.", Remediation: "arcagent gc verify", Source: "builtin:guestconfig",
		},
	}
}

const localconfig = "var/opt/azcmagent/localconfig.json"

func fxResult(host, rule string, sev Severity, st Status, resource, msg string, loc Location, ev map[string]any) Result {
	return Result{RuleID: rule, Severity: sev, Status: st, Message: msg, Resource: resource, Location: loc, Evidence: ev,
		Fingerprint: Fingerprint(rule, host, resource)}
}

func fixtureBase(host string) *Report {
	return &Report{
		SchemaVersion: SchemaVersion,
		Tool:          Tool{Name: "arcagent", Version: "0.3.0", InformationURI: "https://github.com/arcagent/arcagent"},
		RunID:         "01JDQ7Z3K4M5N6P7Q8R9S0T1V2",
		StartedAt:     fixtureStart,
		DurationMs:    1234,
		Target:        Target{Kind: TargetHost, Host: host, MachineID: "5c1e7a1e-8d2b-4a47-9f0e-3b1f2a6c9d11", OS: "Debian GNU/Linux 12 (bookworm)"},
		Profiles:      []string{"tier0", "baseline"},
		FailOn:        SeverityHigh,
		Rules:         fixtureRules(),
	}
}

// defaultInstallReport is an audit of a freshly installed agent: the
// defaults allow everything, so Tier 0 rules fail.
func defaultInstallReport() *Report {
	const h = "web-01"
	r := fixtureBase(h)
	r.Results = []Result{
		fxResult(h, "ARC-T0-001", SeverityCritical, StatusFail, "extensions.allowlist", "extensions.allowlist is empty: any extension may be installed", Location{localconfig, 1}, map[string]any{"configured": []any{}, "effective": "allow all"}),
		fxResult(h, "ARC-T0-002", SeverityHigh, StatusFail, "incomingconnections.enabled", "incomingconnections.enabled is true", Location{localconfig, 1}, map[string]any{"configured": "unset", "effective": true}),
		fxResult(h, "ARC-T0-003", SeverityHigh, StatusFail, "guestconfiguration.enabled", "guest configuration is enabled in mode ApplyAndAutoCorrect", Location{localconfig, 1}, map[string]any{"effective": true}),
		fxResult(h, "ARC-T0-010", SeverityHigh, StatusFail, "/root/onboard.sh", "/root/onboard.sh contains a service principal secret", Location{"root/onboard.sh", 12}, map[string]any{"line": 12, "kind": "servicePrincipalSecret"}),
		fxResult(h, "ARC-T0-004", SeverityMedium, StatusFail, "config.mode", "config.mode is full", Location{localconfig, 1}, map[string]any{"effective": "full"}),
		fxResult(h, "ARC-T0-020", SeverityMedium, StatusFail, "/var/opt/azcmagent/certs", "/var/opt/azcmagent/certs has mode 0755, want 0700", Location{"var/opt/azcmagent/certs", 0}, map[string]any{"mode": "0755", "want": "0700", "owner": "himds:himds"}),
		fxResult(h, "ARC-SR-002", SeverityInfo, StatusFail, "proxy.url", "no proxy is configured", Location{}, nil),
		fxResult(h, "ARC-T0-020", SeverityMedium, StatusPass, "/var/opt/azcmagent/tokens", "/var/opt/azcmagent/tokens has mode 0710", Location{"var/opt/azcmagent/tokens", 0}, map[string]any{"mode": "0710"}),
		fxResult(h, "ARC-SR-001", SeverityLow, StatusPass, "agent", "arcagent 0.3.0 is supported until 2027-11-01", Location{"opt/azcmagent/bin/arcagent", 0}, map[string]any{"version": "0.3.0"}),
	}
	r.SortResults()
	r.Summarize()
	return r
}

// hardenedReport is an audit of a server with every control set: no
// findings at all.
func hardenedReport() *Report {
	const h = "dc-01.corp.example"
	r := fixtureBase(h)
	r.Target.Kind = TargetPlanned
	r.Target.Planned = "examples/ci/planned-localconfig.json"
	r.Target.MachineID = ""
	r.Target.OS = ""
	r.Target.Note = "a planned configuration: file and service rules are not applicable"
	r.Results = []Result{
		fxResult(h, "ARC-T0-001", SeverityCritical, StatusPass, "extensions.allowlist", "extensions.allowlist has 1 entry", Location{localconfig, 3}, map[string]any{"effective": []any{"Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"}}),
		fxResult(h, "ARC-T0-002", SeverityHigh, StatusPass, "incomingconnections.enabled", "incomingconnections.enabled is false", Location{localconfig, 4}, nil),
		fxResult(h, "ARC-T0-003", SeverityHigh, StatusPass, "guestconfiguration.enabled", "guest configuration is disabled", Location{localconfig, 5}, nil),
		fxResult(h, "ARC-T0-004", SeverityMedium, StatusPass, "config.mode", "config.mode is monitor", Location{localconfig, 6}, nil),
		{RuleID: "ARC-T0-020", Severity: SeverityMedium, Status: StatusNotApplicable, Reason: "a planned configuration has no files", Location: Location{"var/opt/azcmagent", 0}, Fingerprint: Fingerprint("ARC-T0-020", h, "")},
	}
	r.SortResults()
	r.Summarize()
	return r
}

// waiversReport exercises waivers (one applied, one expired), a baseline,
// collector errors, a rule error and text that needs escaping everywhere.
func waiversReport() *Report {
	const h = "build-07"
	r := fixtureBase(h)
	r.Target.Kind = TargetRoot
	r.Target.Root = "/srv/images/build-07"
	r.FailOn = SeverityCritical
	exp := time.Date(2027, 3, 31, 0, 0, 0, 0, time.UTC)
	r.Results = []Result{
		fxResult(h, "ARC-T0-002", SeverityHigh, StatusFail, "incomingconnections.enabled", `incomingconnections.enabled is "true" <script>alert('x')</script> | & *bold* `+"`tick`", Location{localconfig, 2}, map[string]any{"effective": true, "note": "</td><img src=x onerror=alert(1)>"}),
		fxResult(h, "ARC-T0-004", SeverityMedium, StatusFail, "config.mode", "config.mode is full", Location{localconfig, 7}, map[string]any{"effective": "full"}),
		fxResult(h, "ARC-T0-001", SeverityCritical, StatusWaived, "extensions.allowlist", "extensions.allowlist is empty: any extension may be installed", Location{localconfig, 1}, nil),
		fxResult(h, "ARC-T0-010", SeverityHigh, StatusError, "/root", "", Location{"root", 0}, nil),
		fxResult(h, "ARC-T0-020", SeverityMedium, StatusNotApplicable, "/var/opt/azcmagent/certs", "", Location{"var/opt/azcmagent/certs", 0}, nil),
		fxResult(h, "ARC-T0-003", SeverityHigh, StatusPass, "guestconfiguration.enabled", "guest configuration is disabled", Location{localconfig, 4}, nil),
	}
	r.Results[0].Baseline = BaselineNew
	r.Results[1].Baseline = BaselineUnchanged
	r.Results[2].Waiver = &WaiverRef{Justification: "build images install extensions from the golden pipeline only (CHG-4711)", Expires: exp, Source: "waivers.yaml"}
	r.Results[3].Reason = "cannot read /root: permission denied"
	r.Results[4].Reason = "/var/opt/azcmagent/certs does not exist in this image"
	r.Waivers = []AppliedWaiver{
		{RuleID: "ARC-T0-001", Host: h, Resource: "extensions.allowlist", Justification: "build images install extensions from the golden pipeline only (CHG-4711)", Expires: exp, Matched: 1},
		{RuleID: "ARC-T0-003", Justification: "legacy exception", Expires: time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC), Expired: true},
	}
	r.Baseline = &BaselineInfo{
		Source: "baseline/build-07.json", New: 1, Unchanged: 1,
		Fixed: []FixedFinding{{RuleID: "ARC-SR-001", Resource: "agent", Fingerprint: Fingerprint("ARC-SR-001", h, "agent"), Message: "arcagent 0.1.0 is out of support"}},
	}
	r.CollectorErrors = []CollectorError{
		{Collector: "secrets", Path: "/root", Error: "open /srv/images/build-07/root: permission denied"},
		{Collector: "releases", Error: "no release source reachable: offline"},
	}
	r.SortResults()
	r.Summarize()
	return r
}

// fixtures are the reports every golden test renders.
var fixtures = []struct {
	name   string
	report func() *Report
}{
	{"default-install", defaultInstallReport},
	{"hardened", hardenedReport},
	{"waivers-baseline-errors", waiversReport},
}

// bigReport is a report with n results spread over every severity and
// status, for the limits and the benchmarks.
func bigReport(n int) *Report {
	const h = "fleet-host-0042"
	r := fixtureBase(h)
	sts := []Status{StatusFail, StatusFail, StatusFail, StatusPass, StatusWaived, StatusNotApplicable, StatusPass, StatusFail}
	r.Results = make([]Result, n)
	for i := range r.Results {
		ru := r.Rules[i%8]
		resource := "/var/lib/waagent/Contoso.Ext-" + strconv.Itoa(i)
		r.Results[i] = Result{
			RuleID: ru.ID, Severity: ru.Severity, Status: sts[i%len(sts)], Resource: resource,
			Message:     resource + " is not signed by a trusted publisher",
			Location:    Location{Path: "var/lib/waagent/Contoso.Ext-" + strconv.Itoa(i) + "/HandlerManifest.json", Line: 1 + i%40},
			Evidence:    map[string]any{"publisher": "Contoso", "signature": "missing", "index": i},
			Fingerprint: Fingerprint(ru.ID, h, resource),
		}
		if r.Results[i].Status == StatusWaived {
			r.Results[i].Waiver = &WaiverRef{Justification: "lab machine", Expires: fixtureStart.AddDate(0, 3, 0)}
		}
	}
	r.Summarize()
	return r
}
