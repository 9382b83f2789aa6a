package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/audit/fixture"
	"github.com/arcagent/arcagent/reports"
	"github.com/arcagent/arcagent/rules"
)

func TestAdaptRemedy(t *testing.T) {
	root := reports.Target{Kind: reports.TargetRoot, Root: "/srv/img"}
	spaced := reports.Target{Kind: reports.TargetRoot, Root: "/tmp/my img"}
	ids := map[string]string{"user:himds": "999", "group:himds": "995", "user:root": "0", "group:root": "0"}
	plan := reports.Target{Kind: reports.TargetPlanned, Planned: "ci/plan.json"}
	host := reports.Target{Kind: reports.TargetHost, Root: "/"}
	for _, c := range []struct {
		name string
		t    reports.Target
		in   string
		want string
	}{
		{"host unchanged", host, "arcagent config set incomingconnections.enabled false", "arcagent config set incomingconnections.enabled false"},
		{"root config set", root, "arcagent config set incomingconnections.enabled false", "arcagent --root /srv/img config set incomingconnections.enabled false"},
		// Owners by the tree's own ids: this host's himds may be another uid.
		{"root paths", root, "chown -R himds:himds /var/opt/azcmagent/tokens && chmod 0640 /var/opt/azcmagent/tokens/*.key",
			"chown -R 999:995 /srv/img/var/opt/azcmagent/tokens && chmod 0640 /srv/img/var/opt/azcmagent/tokens/*.key"},
		{"root owner only", root, "chown root /opt/azcmagent/bin", "chown 0 /srv/img/opt/azcmagent/bin"},
		{"root unknown account kept", root, "chown arcproxy:arcproxy /var/opt/azcmagent/log", "chown arcproxy:arcproxy /srv/img/var/opt/azcmagent/log"},
		{"host keeps names", host, "chown -R himds:himds /var/opt/azcmagent/tokens", "chown -R himds:himds /var/opt/azcmagent/tokens"},
		{"root in prose", root, "or turn on automatic upgrades: arcagent config set automaticupgrade.enabled true",
			"or turn on automatic upgrades: arcagent --root /srv/img config set automaticupgrade.enabled true"},
		// /tmp and /var/tmp are secret-scan places: a fix for a file found
		// there must name the tree's file, never the host's.
		{"root tmp", root, "shred -u /tmp/onboard.sh /var/tmp/x.json", "shred -u /srv/img/tmp/onboard.sh /srv/img/var/tmp/x.json"},
		{"root quoted", spaced, "shred -u /home/alice/connect.json", "shred -u '/tmp/my img'/home/alice/connect.json"},
		{"root leaves URLs and names", root, "arcagent config set proxy.url http://PROXY-HOST:PORT --add Publisher/Type",
			"arcagent --root /srv/img config set proxy.url http://PROXY-HOST:PORT --add Publisher/Type"},
		{"root units", root, "systemctl edit himdsd   # add [Service] User=himds\nsystemctl restart himdsd",
			"systemctl --root /srv/img edit himdsd   # add [Service] User=himds\non the machine that runs this tree: systemctl restart himdsd"},
		{"root groups", root, "gpasswd -d alice himds", "gpasswd -R /srv/img -d alice himds"},
		{"planned bool", plan, "arcagent config set incomingconnections.enabled false", `edit ci/plan.json: set "incomingconnections.enabled" to false`},
		{"planned list", plan, `arcagent config set extensions.allowlist "A.B/C,D.E/F"`, `edit ci/plan.json: set "extensions.allowlist" to ["A.B/C", "D.E/F"]`},
		{"planned add", plan, "arcagent config set extensions.blocklist --add A.B/C\nThen remove it.", `edit ci/plan.json: add "A.B/C" to the "extensions.blocklist" list` + "\nThen remove it."},
		{"planned url", plan, "arcagent config set proxy.url http://PROXY-HOST:PORT", `edit ci/plan.json: set "proxy.url" to "http://PROXY-HOST:PORT"`},
	} {
		if got := adaptRemedy(c.in, c.t, ids); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

func remedyOf(r *reports.Report, id string) string {
	ru, _, _ := r.RuleByID(id)
	return ru.Remediation
}

// The extension allowlist advice names the agents of the target's OS, and
// every fix of a --root audit acts on the tree, not on this host.
func TestRemediationFitsTheTarget(t *testing.T) {
	root := t.TempDir()
	tr := fixture.New(t, root)
	tr.DefaultInstall()
	tr.File("/home/alice/connect.json", `{"onboarding-token": "abcdefabcdefabcdefabcdefabcdefabcdef"}`, "alice", "alice", 0o600)
	r := auditTree(t, root, nil)
	for _, id := range []string{"ARC-T0-002", "ARC-T0-004"} {
		fix := remedyOf(r, id)
		if strings.Contains(fix, "Windows") || !strings.Contains(fix, "Microsoft.Azure.Monitor/AzureMonitorLinuxAgent,Microsoft.Azure.AzureDefenderForServers/MDE.Linux") {
			t.Errorf("%s on a Linux tree: %q", id, fix)
		}
		if !strings.HasPrefix(fix, "arcagent --root "+root+" config set") {
			t.Errorf("%s does not act on the root: %q", id, fix)
		}
	}
	if fix := remedyOf(r, "ARC-PR-010"); strings.Contains(fix, " /var/opt") || !strings.Contains(fix, root+"/var/opt/azcmagent/tokens") {
		t.Errorf("chown fix outside the root: %q", fix)
	}
	if statusOf(r, "ARC-BL-005") == reports.StatusFail {
		if fix := remedyOf(r, "ARC-BL-005"); !strings.Contains(fix, "shred -u "+root+"/home/alice/connect.json") {
			t.Errorf("shred names no real file: %q", fix)
		}
	} else {
		t.Errorf("the credential left on disk is not found: %s", statusOf(r, "ARC-BL-005"))
	}
	// A Windows host gets the Windows agents.
	set, err := rules.Compile(builtinRules(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range set.Rules {
		if c.ID != "ARC-T0-002" {
			continue
		}
		fix, err := c.RenderRemediation(context.Background(), map[string]any{"host": map[string]any{"os": "Windows Server 2022"}})
		if err != nil || !strings.Contains(fix, "AzureMonitorWindowsAgent") || !strings.Contains(fix, "MDE.Windows") {
			t.Errorf("Windows advice: %q %v", fix, err)
		}
	}
}

func statusOf(r *reports.Report, id string) reports.Status {
	for _, res := range r.Results {
		if res.RuleID == id {
			return res.Status
		}
	}
	return ""
}

// A planned configuration: fixes edit the file, findings point at it as
// given, and unknown keys are warned about with a suggestion.
func TestPlannedConfigFixesAndLocations(t *testing.T) {
	dir := t.TempDir()
	plan := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(plan, []byte("{\n  \"incomingconnection.enabled\": false,\n  \"guestconfiguration.enabled\": true\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, plan)
	if err != nil {
		t.Fatal(err)
	}
	var warnings []string
	r := auditTree(t, t.TempDir(), func(o *RunOptions) {
		o.Collect.PlannedConfig = rel
		o.Warn = func(s string) { warnings = append(warnings, s) }
	})
	if fix := remedyOf(r, "ARC-T0-001"); fix != `edit `+rel+`: set "incomingconnections.enabled" to false` {
		t.Errorf("planned fix: %q", fix)
	}
	if fix := remedyOf(r, "ARC-T0-002"); !strings.HasPrefix(fix, "edit "+rel+`: set "extensions.allowlist" to ["Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"`) {
		t.Errorf("planned allowlist fix: %q", fix)
	}
	for _, res := range r.Results {
		if res.Location.Path == "var/opt/azcmagent/localconfig.json" {
			t.Errorf("%s points at the host's localconfig.json, not at %s", res.RuleID, rel)
		}
	}
	for _, res := range r.Results {
		if res.RuleID == "ARC-T0-003" && (res.Location.Path != filepath.ToSlash(rel) || res.Location.Line != 3) {
			t.Errorf("ARC-T0-003 location = %+v, want %s:3", res.Location, rel)
		}
	}
	if !slices.ContainsFunc(warnings, func(s string) bool {
		return strings.Contains(s, `unknown key "incomingconnection.enabled"`) && strings.Contains(s, "did you mean incomingconnections.enabled?")
	}) {
		t.Errorf("no warning for the unknown key: %q", warnings)
	}
}

// Not-applicable reasons are sentences, never the rule's CEL.
func TestNotApplicableReasonsAreSentences(t *testing.T) {
	for _, sc := range scenarios() {
		root := t.TempDir()
		sc.build(t, fixture.New(t, root))
		r := auditTree(t, root, nil)
		for _, res := range r.Results {
			if res.Status == reports.StatusNotApplicable && (strings.Contains(res.Reason, "facts.") || strings.Contains(res.Reason, "&&") || res.Reason == "") {
				t.Errorf("%s %s: reason %q", sc.name, res.RuleID, res.Reason)
			}
		}
	}
}

// A cancelled context stops the audit with the context's error.
func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, RunOptions{Collect: Options{Root: t.TempDir(), Now: testNow}, Rules: builtinRules(t)})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context: %v", err)
	}
}

// A cancelled audit stops in the middle of a hostile rule (each item under
// the cost budget, far too many items) and says it was interrupted.
func TestRunInterruptsHostileRule(t *testing.T) {
	rs, err := rules.LoadDir("testdata/hostile-rules")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := RunOptions{Collect: Options{Root: t.TempDir(), Now: testNow}, Rules: rs, RunID: "x"}
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, o)
		done <- err
	}()
	// Cancel while the rule runs (not a timing assertion: without the
	// interrupt checks the test would run for minutes, not fail).
	time.AfterFunc(200*time.Millisecond, cancel)
	if err := <-done; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "EVIL-SLOW-001") {
		t.Errorf("Run of a hostile rule, cancelled: %v", err)
	}
}

// Unknown keys of a tree's localconfig.json are warned about with the
// file's path under the root.
func TestUnknownKeysOfARootWarned(t *testing.T) {
	root := t.TempDir()
	tr := fixture.New(t, root)
	tr.DefaultInstall()
	tr.LocalConfig(map[string]any{"proxy.ulr": "http://p:3128"})
	var warnings []string
	auditTree(t, root, func(o *RunOptions) { o.Warn = func(s string) { warnings = append(warnings, s) } })
	want := filepath.Join(root, "var/opt/azcmagent/localconfig.json") + `:2: unknown key "proxy.ulr"`
	if !slices.ContainsFunc(warnings, func(s string) bool {
		return strings.HasPrefix(s, want) && strings.Contains(s, "did you mean proxy.url?")
	}) {
		t.Errorf("warnings %q lack %q", warnings, want)
	}
}
