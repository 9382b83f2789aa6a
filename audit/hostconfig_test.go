package audit

import (
	"context"
	"testing"

	"github.com/arcagent/arcagent/agent/guestconfig"
	"github.com/arcagent/arcagent/audit/fixture"
	"github.com/arcagent/arcagent/reports"
)

// runHost audits root with the host profile.
func runHost(t *testing.T, root string) *reports.Report {
	t.Helper()
	rs, err := HostRules()
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), RunOptions{Rules: rs, Select: Selection{Profiles: []string{HostProfile}}, Collect: Options{Root: root, Now: testNow}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Report
}

func TestHostProfileVerdicts(t *testing.T) {
	for _, tc := range []struct {
		name string
		weak bool
		want map[string]reports.Status
	}{
		{"hardened", false, map[string]reports.Status{
			"ARC-HOST-SSH-ROOT-LOGIN": reports.StatusPass, "ARC-HOST-PERM-SHADOW": reports.StatusPass,
			"ARC-HOST-SYSCTL-IP-FORWARD": reports.StatusPass, "ARC-HOST-UPDATES-UNATTENDED-INSTALLED": reports.StatusPass,
			"ARC-HOST-NO-HOSTS-EQUIV": reports.StatusPass, "ARC-HOST-LOGIN-PASS-MAX-DAYS": reports.StatusPass,
		}},
		{"weak", true, map[string]reports.Status{
			"ARC-HOST-SSH-ROOT-LOGIN": reports.StatusFail, "ARC-HOST-SSH-PASSWORD-AUTH": reports.StatusFail,
			"ARC-HOST-SSH-MAX-AUTH-TRIES": reports.StatusFail, "ARC-HOST-PERM-SHADOW": reports.StatusFail,
			"ARC-HOST-SYSCTL-IP-FORWARD": reports.StatusFail, "ARC-HOST-UPDATES-UNATTENDED-INSTALLED": reports.StatusFail,
			"ARC-HOST-LOGIN-PASS-MAX-DAYS": reports.StatusFail,
			// Not set in the weak sshd_config: sshd's own default applies.
			"ARC-HOST-SSH-EMPTY-PASSWORDS": reports.StatusPass,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The baseline judges owners: the tree's files must be root's.
			fixture.RequireRoot(t)
			tr := fixture.New(t, t.TempDir())
			tr.HostBaseline(tc.weak)
			rep := runHost(t, tr.Root)
			got := map[string]reports.Result{}
			for _, r := range rep.Results {
				got[r.RuleID] = r
			}
			for id, st := range tc.want {
				if got[id].Status != st {
					t.Errorf("%s: %s (%s %s), want %s", id, got[id].Status, got[id].Message, got[id].Reason, st)
				}
			}
			if !tc.weak {
				for id, r := range got {
					if r.Status != reports.StatusPass && r.Status != reports.StatusNotApplicable {
						t.Errorf("hardened tree: %s is %s: %s %s", id, r.Status, r.Message, r.Reason)
					}
				}
			}
			if r := got["ARC-HOST-PERM-SHADOW"]; tc.weak && r.Message != "/etc/shadow: mode is 0644, want at most 0640" {
				t.Errorf("shadow message = %q", r.Message)
			}
		})
	}
}

// TestHostProfileMatchesGuestConfigAudit: the audit's host verdicts are
// those of guest configuration's Audit mode over the same document.
func TestHostProfileMatchesGuestConfigAudit(t *testing.T) {
	tr := fixture.New(t, t.TempDir())
	tr.HostBaseline(true)
	rep := runHost(t, tr.Root)
	doc, err := guestconfig.Baseline()
	if err != nil {
		t.Fatal(err)
	}
	c, err := guestconfig.Compile(doc, nil, guestconfig.CompileContext{})
	if err != nil {
		t.Fatal(err)
	}
	env, err := guestconfig.NewEnv(tr.Root, guestconfig.EnvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	gc := guestconfig.Evaluate(context.Background(), env, c, guestconfig.EvalOptions{Mode: guestconfig.Audit})
	want := map[string]reports.Status{
		guestconfig.Compliant: reports.StatusPass, guestconfig.NonCompliant: reports.StatusFail,
		guestconfig.Error: reports.StatusError, guestconfig.NotApplicable: reports.StatusNotApplicable,
	}
	byRule := map[string]reports.Status{}
	for _, r := range rep.Results {
		byRule[r.RuleID] = r.Status
	}
	if len(byRule) != len(gc.Resources) {
		t.Fatalf("%d host results for %d baseline resources", len(byRule), len(gc.Resources))
	}
	for _, r := range gc.Resources {
		if got := byRule[HostRuleID(r.ID)]; got != want[r.Compliance] {
			t.Errorf("%s: audit %s, guest configuration %s (%s)", r.ID, got, r.Compliance, r.Reason)
		}
	}
}

func TestHostProfileIsOptIn(t *testing.T) {
	rs, err := HostRules()
	if err != nil {
		t.Fatal(err)
	}
	sel, _, err := SelectRules(rs, Selection{})
	if err != nil || len(sel) != 0 {
		t.Fatalf("default selection took %d host rules (%v)", len(sel), err)
	}
	for _, p := range []string{"host", "all"} {
		if sel, _, _ := SelectRules(rs, Selection{Profiles: []string{p}}); len(sel) != len(rs) {
			t.Errorf("--profile %s: %d of %d host rules", p, len(sel), len(rs))
		}
	}
}
