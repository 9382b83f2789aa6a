package audit

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/reports"
	"github.com/arcagent/arcagent/rules"
)

// goodFacts is a hardened, connected host where every built-in rule passes.
func goodFacts() *Facts {
	hb := testNow.Add(-3 * time.Minute)
	file := func(id, class, path, kind, owner, group, mode string) FileFact {
		return FileFact{ID: id, Class: class, Path: path, Exists: true, Kind: kind, Owner: owner, Group: group, Mode: mode, ExtraBits: "0",
			WantKind: kind, WantOwner: owner, WantGroup: group, WantMode: mode}
	}
	ext := ExtensionFact{Name: "Microsoft.Azure.Monitor/AzureMonitorLinuxAgent", Publisher: "Microsoft.Azure.Monitor", Type: "AzureMonitorLinuxAgent", Version: "1.2.0",
		Path: "var/lib/waagent/Microsoft.Azure.Monitor.AzureMonitorLinuxAgent-1.2.0", Managed: true, ManagedReason: "installed by this agent", Manifest: ManifestFact{Present: true, Valid: true},
		Signature: SignatureFact{Present: true, Verified: true, Signer: "ms", Reason: "signed"}, Tamper: TamperFact{Checked: true, Clean: true, Changed: []string{}},
		Policy: PolicyDecision{Allowed: true, Reason: "listed"}}
	cur := Currency{Product: "Microsoft.Azure.Monitor/AzureMonitorLinuxAgent", Installed: "1.2.0", Latest: "1.2.0", State: "current", Supported: true, Current: true}
	return &Facts{
		Target: TargetFacts{Kind: "root", Root: "/r"},
		Host:   HostFacts{Section: Section{Available: true}, Name: "h", HimdsMembers: []string{"himds"}, HimdsGroup: true},
		Agent:  AgentFacts{Section: Section{Available: true}, Installed: true, Version: "1.0.0", Connected: true, Status: "Connected", LastHeartbeat: &hb, HeartbeatAgeMinutes: 3},
		Config: ConfigFacts{Section: Section{Available: true}, Source: "file", Path: "var/opt/azcmagent/localconfig.json",
			Values:    map[string]any{"incomingconnections.enabled": false, "guestconfiguration.enabled": false, "extensions.enabled": true, "extensions.allowlist": []string{"Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"}, "extensions.blocklist": []string{}},
			Effective: map[string]any{"incomingconnections.enabled": false, "guestconfiguration.enabled": false, "extensions.enabled": true, "extensions.allowlist": []string{"Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"}, "extensions.blocklist": []string{}},
			Lines:     map[string]int{"incomingconnections.enabled": 2}, Set: []string{}, ScriptExtensionsAllowed: []string{}, UnknownKeys: []string{}, Mode: "full"},
		Services: ServicesFacts{Section: Section{Available: true}, ProcAvailable: true,
			Units: map[string]UnitFacts{"himdsd": {Present: true, Path: "etc/systemd/system/himdsd.service", User: "himds"}, "arcproxyd": {Present: true, Path: "etc/systemd/system/arcproxyd.service", User: "arcproxy"},
				"extd": {Present: true, Path: "etc/systemd/system/extd.service", User: "root"}, "gcad": {Present: true, Path: "etc/systemd/system/gcad.service", User: "root"}},
			Processes: map[string][]Process{"himdsd": {{PID: 10, UID: 5001, User: "himds"}}, "arcproxyd": {{PID: 11, UID: 5002, User: "arcproxy"}}, "extd": {}, "gcad": {}},
			Listeners: map[string][]Listener{"himdsd": {{Address: "127.0.0.1", Port: 40342, Loopback: true}}, "arcproxyd": {{Address: "::1", Port: 40343, Loopback: true}}, "extd": {}, "gcad": {}},
			Expected:  expectedServices(), ProxyOn: true,
			ProxyProbes: []ProxyProbe{{Address: "[::1]:40343", Destination: ProbeDestination, Status: 403, Refused: true}}},
		Files: FilesFacts{Section: Section{Available: true}, Entries: []FileFact{
			file("tokens-dir", "tokens", "var/opt/azcmagent/tokens", "dir", "himds", "himds", "0710"),
			file("certs-dir", "certs", "var/opt/azcmagent/certs", "dir", "himds", "himds", "0700"),
			file("localconfig", "config", "var/opt/azcmagent/localconfig.json", "file", "root", "himds", "0640"),
			file("proxy-credentials", "proxy", "var/opt/azcmagent/proxy-credentials", "file", "root", "arcproxy", "0640"),
			file("binary", "binary", "opt/azcmagent/bin/arcagent", "file", "root", "root", "0755"),
			file("trust-dir", "trust", "var/opt/azcmagent/trust", "dir", "root", "root", "0755"),
			file("extension-dir", "extensions", "var/lib/waagent/x", "dir", "root", "root", "0700"),
			file("unit-himdsd", "units", "etc/systemd/system/himdsd.service", "file", "root", "root", "0644"),
		}},
		Extensions: ExtensionsFacts{Section: Section{Available: true}, Installed: []ExtensionFact{ext}},
		Secrets:    SecretsFacts{Section: Section{Available: true}, Found: []SecretFact{}, Places: []string{"/root"}},
		Releases:   ReleasesFacts{Section: Section{Available: true}, Agent: &Currency{Product: "agent", Installed: "1.0.0", Latest: "1.0.0", State: "current", Supported: true, Current: true}, Extensions: []Currency{cur}},
		Cloud:      CloudFacts{Section: Section{Available: true}, Subscription: "s", DedicatedSubscription: true, StandingAdmins: []string{"alice"}, InheritedAssignments: []string{}},
		Errors:     []CollectorError{},
	}
}

func setFile(class string, mod func(*FileFact)) func(*Facts) {
	return func(f *Facts) {
		for i := range f.Files.Entries {
			if f.Files.Entries[i].Class == class {
				mod(&f.Files.Entries[i])
			}
		}
	}
}

func setExt(mod func(*ExtensionFact)) func(*Facts) {
	return func(f *Facts) { mod(&f.Extensions.Installed[0]) }
}

func setEff(k string, v any) func(*Facts) {
	return func(f *Facts) { f.Config.Effective[k] = v; f.Config.Values[k] = v }
}

var (
	looseMode = func(ff *FileFact) { ff.Mode, ff.ExtraBits = "0777", "67" }
	noFiles   = func(f *Facts) {
		f.Files = FilesFacts{Section: Section{Reason: "no agent is installed on this target"}, Entries: []FileFact{}}
	}
	noServices = func(f *Facts) {
		f.Services = ServicesFacts{Section: Section{Reason: "no agent"}, Units: map[string]UnitFacts{}, Processes: map[string][]Process{}, Listeners: map[string][]Listener{}}
	}
	noProc = func(f *Facts) { f.Services.ProcAvailable, f.Services.ProcReason = false, "not the live host" }
	noExt  = func(f *Facts) {
		f.Extensions = ExtensionsFacts{Section: Section{Reason: "no agent"}, Installed: []ExtensionFact{}}
	}
	noConfig = func(f *Facts) { f.Config.Available, f.Config.Reason = false, "planned only" }
	noRel    = func(f *Facts) {
		f.Releases = ReleasesFacts{Section: Section{Reason: "no release source is configured"}, Extensions: []Currency{}}
	}
	noCloud   = func(f *Facts) { f.Cloud.Available, f.Cloud.Reason = false, "not connected" }
	noSecrets = func(f *Facts) { f.Secrets.Available, f.Secrets.Reason = false, "planned" }
)

// ruleCases makes every built-in rule fail and not apply. TestEveryRuleTested
// keeps the table complete.
var ruleCases = map[string]struct {
	fail func(*Facts)
	na   func(*Facts) // nil: the rule always applies
}{
	"ARC-T0-001": {setEff("incomingconnections.enabled", true), noConfig},
	"ARC-T0-002": {setEff("extensions.allowlist", []string{}), noConfig},
	"ARC-T0-003": {setEff("guestconfiguration.enabled", true), noConfig},
	"ARC-T0-004": {func(f *Facts) { f.Config.ScriptExtensionsAllowed = []string{"Microsoft.Compute/CustomScriptExtension"} }, noConfig},
	"ARC-T0-005": {setExt(func(x *ExtensionFact) { x.Type, x.ScriptCapable = "CustomScript", true }), noExt},
	"ARC-T0-006": {func(f *Facts) { f.Cloud.DedicatedSubscription = false; f.Cloud.OtherMachines = 12 }, noCloud},
	"ARC-T0-007": {func(f *Facts) { f.Cloud.StandingAdmins = []string{"a", "b", "c"} }, noCloud},
	"ARC-T0-008": {func(f *Facts) { f.Cloud.InheritedAssignments = []string{"Owner at /subscriptions/s"} }, noCloud},
	"ARC-BL-001": {func(f *Facts) { f.Releases.Agent.Supported, f.Releases.Agent.State = false, "unsupported" }, noRel},
	"ARC-BL-002": {func(f *Facts) { f.Releases.Agent.Current, f.Releases.Agent.Behind = false, 3 }, noRel},
	"ARC-BL-003": {func(f *Facts) { f.Releases.Extensions[0].Supported = false }, noRel},
	"ARC-BL-004": {func(f *Facts) { f.Releases.Extensions[0].Current = false }, noRel},
	"ARC-BL-005": {func(f *Facts) {
		f.Secrets.Found = []SecretFact{{Path: "root/connect.json", Line: 3, Kind: "onboarding-token"}}
	}, noSecrets},
	"ARC-BL-006": {func(f *Facts) { f.Config.ProxyHasCredentials = true }, noConfig},
	"ARC-BL-007": {func(f *Facts) { f.Agent.HeartbeatAgeMinutes = 40 }, func(f *Facts) { f.Agent.Installed = false }},
	"ARC-PR-001": {func(f *Facts) {
		f.Services.Units["himdsd"] = UnitFacts{Present: true, User: "root", Path: "etc/systemd/system/himdsd.service"}
	}, noServices},
	"ARC-PR-002": {func(f *Facts) { f.Services.Units["arcproxyd"] = UnitFacts{Present: true, User: "root", Path: "p"} }, noServices},
	"ARC-PR-003": {func(f *Facts) { f.Services.Units["gcad"] = UnitFacts{Present: true, User: "nobody", Path: "p"} }, noServices},
	"ARC-PR-004": {func(f *Facts) { f.Services.Processes["himdsd"][0].User = "root" }, noProc},
	"ARC-PR-005": {func(f *Facts) { f.Services.Processes["arcproxyd"][0].User = "root" }, noProc},
	"ARC-PR-006": {func(f *Facts) { f.Services.Listeners["himdsd"][0] = Listener{Address: "0.0.0.0", Port: 40342} }, noProc},
	"ARC-PR-007": {func(f *Facts) { f.Services.Listeners["arcproxyd"][0] = Listener{Address: "10.0.0.5", Port: 40343} }, noProc},
	"ARC-PR-008": {func(f *Facts) { f.Services.ProxyProbes[0].Status, f.Services.ProxyProbes[0].Refused = 502, false },
		func(f *Facts) { f.Services.ProxyOn, f.Services.ProxyProbes = false, []ProxyProbe{} }},
	"ARC-PR-010": {setFile("tokens", looseMode), noFiles},
	"ARC-PR-011": {setFile("certs", func(ff *FileFact) { ff.Owner = "root" }), noFiles},
	"ARC-PR-012": {setFile("config", func(ff *FileFact) { ff.Group = "users" }), noFiles},
	"ARC-PR-013": {setFile("binary", looseMode), noFiles},
	"ARC-PR-014": {setFile("trust", func(ff *FileFact) { ff.Mode, ff.ExtraBits = "0777", "22" }), noFiles},
	"ARC-PR-015": {setFile("extensions", func(ff *FileFact) { ff.Kind = "symlink" }), noFiles},
	"ARC-PR-016": {setFile("units", looseMode), noFiles},
	"ARC-PR-017": {setFile("proxy", func(ff *FileFact) { ff.Mode, ff.ExtraBits = "0644", "4" }), noFiles},
	"ARC-PR-020": {func(f *Facts) { f.Host.HimdsMembers = []string{"alice", "himds"} }, func(f *Facts) { f.Host.HimdsGroup = false; f.Host.Reason = "no group" }},
	"ARC-EX-001": {setExt(func(x *ExtensionFact) { x.Signature = SignatureFact{Reason: "untrusted key"} }), noExt},
	"ARC-EX-002": {setExt(func(x *ExtensionFact) { x.Tamper.Clean, x.Tamper.Changed = false, []string{"changed: bin/x"} }), noExt},
	"ARC-EX-003": {setExt(func(x *ExtensionFact) { x.Policy = PolicyDecision{Reason: "not listed in extensions.allowlist"} }), noExt},
	"ARC-EX-004": {setExt(func(x *ExtensionFact) { x.Managed, x.ManagedReason = false, "not installed by this agent" }), noExt},
}

func evalRule(t *testing.T, c *rules.Compiled, f *Facts) []rules.Outcome {
	t.Helper()
	doc, err := factsDocument(f)
	if err != nil {
		t.Fatal(err)
	}
	return c.Eval(doc)
}

func statuses(os []rules.Outcome) string {
	var s []string
	for _, o := range os {
		s = append(s, string(o.Status))
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}

func TestEveryRulePassFailNotApplicable(t *testing.T) {
	set, err := rules.Compile(builtinRules(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range set.Rules {
		t.Run(c.ID, func(t *testing.T) {
			tc, ok := ruleCases[c.ID]
			if !ok {
				t.Fatalf("rule %s has no test case in ruleCases", c.ID)
			}
			for _, o := range evalRule(t, c, goodFacts()) {
				if o.Status != reports.StatusPass {
					t.Fatalf("on good facts: %s (%s %s)", o.Status, o.Message, o.Reason)
				}
			}
			f := goodFacts()
			tc.fail(f)
			out := evalRule(t, c, f)
			if !strings.Contains(statuses(out), "fail") {
				t.Fatalf("fail case gave %s: %+v", statuses(out), out)
			}
			for _, o := range out {
				if o.Status == reports.StatusFail && (o.Message == "" || strings.Contains(o.Message, "${")) {
					t.Errorf("bad failure message %q", o.Message)
				}
			}
			if tc.na != nil {
				f := goodFacts()
				tc.na(f)
				out := evalRule(t, c, f)
				if statuses(out) != "not_applicable" || out[0].Reason == "" {
					t.Fatalf("not-applicable case gave %s: %+v", statuses(out), out)
				}
			}
		})
	}
	for id := range ruleCases {
		found := false
		for _, c := range set.Rules {
			found = found || c.ID == id
		}
		if !found {
			t.Errorf("ruleCases has %s, which is not a built-in rule", id)
		}
	}
}

// An unreadable section makes rules error (fail closed), never pass or N/A.
func TestUnreadableSectionIsError(t *testing.T) {
	set, err := rules.Compile(builtinRules(t))
	if err != nil {
		t.Fatal(err)
	}
	f := goodFacts()
	f.Config.Available, f.Config.Error, f.Config.Reason = false, true, "localconfig.json is not valid"
	for _, c := range set.Rules {
		if c.ID != "ARC-T0-001" {
			continue
		}
		out := evalRule(t, c, f)
		if out[0].Status != reports.StatusError || !strings.Contains(out[0].Reason, "not valid") {
			t.Fatalf("got %+v, want error with the reason", out)
		}
	}
}

// ARC-EX-001/002 leave out a tree without an install record unless
// facts.options.strict; an extension whose record could not be read
// (item error) is an error for every ARC-EX rule, never left out.
func TestExtensionRulesManagedStrictAndError(t *testing.T) {
	set, err := rules.Compile(builtinRules(t))
	if err != nil {
		t.Fatal(err)
	}
	unmanaged := func(x *ExtensionFact) {
		x.Managed, x.ManagedReason = false, "not installed by this agent"
		x.Signature, x.Tamper = SignatureFact{Reason: "no install record"}, TamperFact{Changed: []string{}, Reason: "no install record"}
	}
	unreadable := func(x *ExtensionFact) {
		unmanaged(x)
		x.Error = "the install record cannot be read: permission denied"
	}
	for _, tc := range []struct {
		name   string
		mod    func(*ExtensionFact)
		strict bool
		want   map[string]string // rule -> statuses
	}{
		{"unmanaged", unmanaged, false, map[string]string{"ARC-EX-001": "not_applicable", "ARC-EX-002": "not_applicable", "ARC-EX-003": "pass", "ARC-EX-004": "fail"}},
		{"unmanaged-strict", unmanaged, true, map[string]string{"ARC-EX-001": "fail", "ARC-EX-002": "fail", "ARC-EX-003": "pass", "ARC-EX-004": "fail"}},
		{"unreadable-record", unreadable, false, map[string]string{"ARC-EX-001": "error", "ARC-EX-002": "error", "ARC-EX-003": "error", "ARC-EX-004": "error"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := goodFacts()
			f.Options.Strict = tc.strict
			tc.mod(&f.Extensions.Installed[0])
			for _, c := range set.Rules {
				want, ok := tc.want[c.ID]
				if !ok {
					continue
				}
				if got := statuses(evalRule(t, c, f)); got != want {
					t.Errorf("%s: %s, want %s", c.ID, got, want)
				}
			}
		})
	}
}
