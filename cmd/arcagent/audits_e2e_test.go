//go:build !windows

package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/extd"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/internal/testutil"
	"github.com/arcagent/arcagent/reports"
)

// TestAuditUploadEndToEnd: a real arcserver, two machines connected in two
// resource groups, `audit --upload` from each, `fleet audits -o sarif`
// with one run per machine, and an operator scoped to one resource group
// who sees only its machine's findings.
func TestAuditUploadEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	ctx := context.Background()
	bin := buildArcagent(t)
	tmp := worldTraversableTemp(t)
	cp := startControlPlane(t, tmp)
	op := cp.operator(t)
	sub, err := op.CreateSubscription(ctx, apiv1.CreateSubscriptionRequest{DisplayName: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(tmp, "ca.crt")
	if err := os.WriteFile(ca, cp.ca, 0o644); err != nil {
		t.Fatal(err)
	}
	ok := func(args ...string) string {
		t.Helper()
		out, stderr, code := runBin(t, bin, args...)
		if code != 0 {
			t.Fatalf("arcagent %s: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
		}
		return out
	}
	roots := map[string]string{}
	for _, m := range []struct{ name, rg string }{{"web01", "web"}, {"db01", "db"}} {
		if _, err := op.CreateResourceGroup(ctx, sub.SubID, apiv1.CreateResourceGroupRequest{Name: m.rg}); err != nil {
			t.Fatal(err)
		}
		cred, err := op.CreateOnboarding(ctx, apiv1.CreateOnboardingRequest{SubscriptionID: sub.SubID, ResourceGroup: m.rg, ExpiresIn: "1h", Uses: 1})
		if err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(tmp, m.name)
		roots[m.name] = root
		ok("connect", "--root", root, "--server", cp.url(), "--onboarding-token", cred.Secret, "--resource-group", m.rg, "--ca-file", ca, "--name", m.name)
	}

	// Not connected: a clear error, exit 2, the report still written.
	bare := filepath.Join(tmp, "bare")
	if err := os.MkdirAll(bare, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runBin(t, bin, "audit", "--root", bare, "--upload", "-q", "--fail-on", "never", "-o", "json="+filepath.Join(tmp, "bare.json")); code != 2 || !strings.Contains(stderr, string(extd.CodeUploadNotConnected)) && !strings.Contains(stderr, string(extd.CodeUploadPlanned)) {
		t.Fatalf("upload without a registration: exit %d %s", code, stderr)
	}

	for name, root := range roots {
		jsonOut := filepath.Join(tmp, name+".json")
		_, stderr, code := runBin(t, bin, "audit", "--root", root, "--upload", "--fail-on", "never", "-o", "json="+jsonOut)
		if code != 0 || !strings.Contains(stderr, "uploaded audit report") {
			t.Fatalf("audit --upload of %s: exit %d %s", name, code, stderr)
		}
		if _, err := os.Stat(jsonOut); err != nil {
			t.Fatalf("the -o report of %s was not written: %v", name, err)
		}
	}

	t.Setenv("ARCAGENT_FLEET_CONFIG", filepath.Join(tmp, "fleet-owner.json"))
	ok("fleet", "login", "--server", cp.url(), "--ca-file", ca, "--token", cp.owner)
	sarifPath := filepath.Join(tmp, "fleet.sarif")
	ok("fleet", "audits", "-o", "sarif", "--file", sarifPath)
	b, err := os.ReadFile(sarifPath)
	if err != nil {
		t.Fatal(err)
	}
	testutil.ValidateSARIF(t, b)
	var log struct {
		Runs []struct {
			Properties struct {
				Machine reports.FleetMachine `json:"machine"`
			} `json:"properties"`
			Results []json.RawMessage `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b, &log); err != nil {
		t.Fatal(err)
	}
	if len(log.Runs) != 2 || log.Runs[0].Properties.Machine.Name != "db01" || log.Runs[1].Properties.Machine.Name != "web01" || len(log.Runs[0].Results) == 0 {
		t.Fatalf("SARIF runs: %+v", log.Runs)
	}
	for _, format := range reports.Formats() {
		if out := ok("fleet", "audits", "-o", format, "--severity", "info"); !strings.Contains(out, "web01") {
			t.Fatalf("fleet audits -o %s does not name web01:\n%s", format, out)
		}
	}

	// An operator scoped to resource group web sees only web01.
	if _, err := op.AssignRole(ctx, apiv1.CreateRoleAssignmentRequest{Principal: "web-reader", Role: rbac.Reader, Scope: rbac.ResourceGroupScope(sub.SubID, "web")}); err != nil {
		t.Fatal(err)
	}
	tok, err := op.CreateAPIToken(ctx, apiv1.CreateAPITokenRequest{Principal: "web-reader"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ARCAGENT_FLEET_CONFIG", filepath.Join(tmp, "fleet-reader.json"))
	ok("fleet", "login", "--server", cp.url(), "--ca-file", ca, "--token", tok.Token)
	var doc struct {
		Machines int                    `json:"machines"`
		Findings []reports.FleetFinding `json:"findings"`
	}
	mustJSONOut(t, ok("fleet", "audits", "-o", "json"), &doc)
	if doc.Machines != 1 || len(doc.Findings) == 0 {
		t.Fatalf("web reader: %+v", doc)
	}
	for _, f := range doc.Findings {
		if f.Machine != "web01" || f.ResourceGroup != "web" {
			t.Fatalf("web reader sees %s in %s", f.Machine, f.ResourceGroup)
		}
	}
}

// TestExtdPeriodicAuditUpload: a real extd with audit.upload.enabled
// uploads the machine's audit at once and again after the (test) interval;
// with the setting off it uploads nothing.
func TestExtdPeriodicAuditUpload(t *testing.T) {
	w := newExtdWorld(t)
	ctx := context.Background()
	op := w.cp.operator(t)
	ms, err := op.ListMachines(ctx, "", "")
	if err != nil || len(ms) != 1 {
		t.Fatalf("machines: %v %v", ms, err)
	}
	reportsOf := func() int {
		rs, err := op.MachineAudits(ctx, ms[0].ID, "")
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	p := startProc(t, w.bin, "daemon", "extd", "--root", w.root, "--interval", "1h", "--reload-every", "100ms",
		"--cgroup-root", filepath.Join(w.tmp, "no-cgroup"), "--audit-every", "2s", "--audit-check", "50ms")
	defer p.stop(t)
	// Off by default: several checks pass without an upload.
	for range 10 {
		if reportsOf() != 0 {
			t.Fatalf("uploaded while audit.upload.enabled is false:\n%s", p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.ok("config", "set", "--root", w.root, config.AuditUploadEnabled, "true")
	deadline := time.Now().Add(90 * time.Second)
	for reportsOf() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("extd uploaded %d reports:\n%s", reportsOf(), p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(extd.AuditStatePath(w.l)); err != nil {
		t.Fatalf("no periodic audit state: %v", err)
	}
}
