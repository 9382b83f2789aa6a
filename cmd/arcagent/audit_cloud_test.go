//go:build !windows

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/audit"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/loadgen"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/reports"
)

// TestAuditCloudFacts: a machine connected to a real arcserver (connect
// under --root) has its cloud-side Tier 0 rules evaluated from the control
// plane's cloud facts: alone in its subscription with only the tenant's
// Owner, ARC-T0-006 and 007 pass and 008 fails (the tenant Owner is
// inherited); a third standing administrator fails 007; eleven more
// machines in the subscription fail 006; --offline makes the three not
// applicable; a control plane that is away makes them errors naming it.
func TestAuditCloudFacts(t *testing.T) {
	ctx := t.Context()
	srv, err := loadgen.StartLocal(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Stop()
		}
	}()
	c, err := cloud.New(srv.URL, cloud.Options{CAPEM: srv.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	op := c.Operator(srv.Token)
	sub, err := op.CreateSubscription(ctx, apiv1.CreateSubscriptionRequest{DisplayName: "tier0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.CreateResourceGroup(ctx, sub.SubID, apiv1.CreateResourceGroupRequest{Name: "dc"}); err != nil {
		t.Fatal(err)
	}
	cred, err := op.CreateOnboarding(ctx, apiv1.CreateOnboardingRequest{SubscriptionID: sub.SubID, ResourceGroup: "dc", ExpiresIn: "1h", Uses: 20})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, srv.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := runCLI(t, "--root", root, "connect", "--server", srv.URL, "--ca-file", ca, "--resource-group", "dc", "--onboarding-token", cred.Secret, "--name", "dc01"); code != 0 {
		t.Fatalf("connect: exit %d: %s%s", code, out, stderr)
	}
	cfg, err := himds.LoadAgentConfig(layout.New(root))
	if err != nil || cfg == nil {
		t.Fatalf("agentconfig.json: %+v %v", cfg, err)
	}

	cloudRules := []string{"ARC-T0-006", "ARC-T0-007", "ARC-T0-008"}
	check := func(name string, want map[string]reports.Status, args ...string) map[string]reports.Result {
		t.Helper()
		r, code, stderr := auditJSON(t, append([]string{"--root", root, "audit", "--profile", "tier0", "--fail-on", "never"}, args...)...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		got := map[string]reports.Result{}
		for _, res := range r.Results {
			if slices.Contains(cloudRules, res.RuleID) {
				got[res.RuleID] = res
			}
		}
		for _, id := range cloudRules {
			if got[id].Status != want[id] {
				t.Errorf("%s: %s is %s (%s %s), want %s", name, id, got[id].Status, got[id].Message, got[id].Reason, want[id])
			}
		}
		return got
	}
	pass, fail := reports.StatusPass, reports.StatusFail

	got := check("alone, tenant owner only", map[string]reports.Status{"ARC-T0-006": pass, "ARC-T0-007": pass, "ARC-T0-008": fail})
	if m := got["ARC-T0-008"].Message; !strings.Contains(m, "owner: Owner at the tenant") {
		t.Errorf("ARC-T0-008 message %q does not name the inherited tenant Owner", m)
	}

	for _, a := range []apiv1.CreateRoleAssignmentRequest{
		{Principal: "alice", Role: rbac.Owner, Scope: rbac.SubscriptionScope(sub.SubID)},
		{Principal: "bob", Role: rbac.ResourceAdministrator, Scope: rbac.ResourceGroupScope(sub.SubID, "dc")},
		{Principal: "rita", Role: rbac.Reader, Scope: cfg.ResourceID},
	} {
		if _, err := op.AssignRole(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	got = check("three standing admins", map[string]reports.Status{"ARC-T0-006": pass, "ARC-T0-007": fail, "ARC-T0-008": fail})
	if m := got["ARC-T0-007"].Message; !strings.Contains(m, "3 principals") || !strings.Contains(m, "alice") || !strings.Contains(m, "bob") || strings.Contains(m, "rita") {
		t.Errorf("ARC-T0-007 message %q: want alice, bob and owner, not the Reader", m)
	}

	for i := range 11 {
		key, _ := cloud.GenerateKey()
		if _, err := c.Register(ctx, cred.Secret, key, apiv1.RegisterRequest{Inventory: apiv1.Inventory{Hostname: fmt.Sprintf("app%02d", i), OSType: "linux", AgentVersion: "0.1.0"}}); err != nil {
			t.Fatal(err)
		}
	}
	got = check("12 machines in the subscription", map[string]reports.Status{"ARC-T0-006": fail, "ARC-T0-007": fail, "ARC-T0-008": fail})
	if m := got["ARC-T0-006"].Message; !strings.Contains(m, "11 other machines") || strings.Contains(m, "app0") {
		t.Errorf("ARC-T0-006 message %q: want the count of the other machines, never their names", m)
	}

	na := reports.StatusNotApplicable
	got = check("--offline", map[string]reports.Status{"ARC-T0-006": na, "ARC-T0-007": na, "ARC-T0-008": na}, "--offline")
	if got["ARC-T0-006"].Reason != audit.NoCloudReason {
		t.Errorf("--offline reason %q", got["ARC-T0-006"].Reason)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	e := reports.StatusError
	got = check("server away", map[string]reports.Status{"ARC-T0-006": e, "ARC-T0-007": e, "ARC-T0-008": e})
	if r := got["ARC-T0-007"].Reason; !strings.Contains(r, srv.URL) {
		t.Errorf("server away: reason %q does not name the server %s", r, srv.URL)
	}
	// The gate: an incomplete audit at the default --fail-on high.
	if _, _, code := runCLI(t, "--root", root, "audit", "--profile", "tier0", "-q"); code != 3 {
		t.Errorf("server away: exit %d, want 3 (rules could not be evaluated)", code)
	}
	auditCloudAsNobody(t, root)
}

// auditCloudAsNobody: not root, the audit cannot sign as the machine. A
// registration it may read with a machine key it may not makes the cloud
// rules not applicable (run as root); a registration it may not read makes
// them errors, never "not connected".
func auditCloudAsNobody(t *testing.T, root string) {
	if os.Geteuid() != 0 {
		t.Log("not root: the unprivileged audit is not tested")
		return
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Log("no user nobody to drop to")
		return
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	bin := buildArcagent(t)
	for d := root; d != filepath.Clean(os.TempDir()) && d != "/" && d != "."; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	_ = os.Chmod(filepath.Dir(bin), 0o755)
	l := layout.New(root)
	for _, tc := range []struct {
		mode   os.FileMode
		status reports.Status
		reason string
	}{
		{0o644, reports.StatusNotApplicable, "machine key is readable only by root"},
		{0o600, reports.StatusError, "registration cannot be read"},
	} {
		if err := os.Chmod(l.AgentConfig(), tc.mode); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--root", root, "audit", "--profile", "tier0", "--fail-on", "never", "-o", "json")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("agentconfig.json %v, as nobody: %v\n%s", tc.mode, err, out)
		}
		var r reports.Report
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(r.Results, func(res reports.Result) bool { return res.RuleID == "ARC-T0-007" })
		if i < 0 {
			t.Fatalf("agentconfig.json %v, as nobody: no ARC-T0-007 result", tc.mode)
		}
		if res := r.Results[i]; res.Status != tc.status || !strings.Contains(res.Reason, tc.reason) {
			t.Errorf("agentconfig.json %v, as nobody: ARC-T0-007 %s (%s), want %s (%s)", tc.mode, res.Status, res.Reason, tc.status, tc.reason)
		}
	}
}
