//go:build !windows

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// TestFleetCurrencyLiveInventoryEndToEnd runs a real arcserver, connects a
// machine with the real binary and starts its HIMDS: the heartbeats report
// the machine's inventory (the OS changed since registration), the machine
// reports an extension, and `fleet currency` without --inventory lists the
// agent version and the extension from the control plane.
func TestFleetCurrencyLiveInventoryEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	bin := buildArcagent(t)
	tmp := worldTraversableTemp(t)
	if os.Geteuid() == 0 {
		ensureAccount(t, layout.UserHIMDS, layout.GroupHIMDS)
	}
	cp := startControlPlane(t, tmp)
	rg, secret := cp.onboarding(t, 1)
	root := filepath.Join(tmp, "machine")
	caFile := filepath.Join(tmp, "ca.crt")
	if err := os.WriteFile(caFile, cp.ca, 0o644); err != nil {
		t.Fatal(err)
	}
	osRelease := filepath.Join(root, "etc", "os-release")
	if err := os.MkdirAll(filepath.Dir(osRelease), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(osRelease, []byte("NAME=\"E2E Linux\"\nVERSION_ID=\"1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := runBin(t, bin, "connect", "--root", root, "--server", cp.url(), "--onboarding-token", secret, "--resource-group", rg, "--ca-file", caFile, "--name", "web01"); code != 0 {
		t.Fatalf("connect: %d %s %s", code, out, stderr)
	}
	l := layout.New(root)
	ac, err := himds.LoadAgentConfig(l)
	if err != nil || ac == nil {
		t.Fatalf("agentconfig.json: %v", err)
	}
	op := cp.operator(t)
	ctx := context.Background()
	if m, err := op.GetMachine(ctx, ac.MachineID); err != nil || m.Inventory.OSName != "E2E Linux" || m.Inventory.OSVersion != "1" {
		t.Fatalf("registered inventory: %+v %v", m.Inventory, err)
	}
	// The machine is upgraded to version 2 of its OS before HIMDS starts.
	if err := os.WriteFile(osRelease, []byte("NAME=\"E2E Linux\"\nVERSION_ID=\"2\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startHIMDS(t, bin, root)
	defer d.proc.stop(t)
	waitUntil(t, "the heartbeat's inventory on the server", func() bool {
		m, err := op.GetMachine(ctx, ac.MachineID)
		return err == nil && m.Inventory.OSVersion == "2"
	})

	// The extension manager's report (signed with the machine key, as
	// extd sends it).
	kp, err := os.ReadFile(l.MachineKey())
	if err != nil {
		t.Fatal(err)
	}
	key, err := cloud.ParsePrivateKey(kp)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloud.New(cp.url(), cloud.Options{CAPEM: cp.ca})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Machine(ac.MachineID, ac.Audience, key).PutStatus(ctx, apiv1.MachineStatus{Extensions: []apiv1.ExtensionStatus{
		{Name: "monitor", Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.1.0", State: apiv1.ExtensionSucceeded},
	}}); err != nil {
		t.Fatal(err)
	}

	fleetLogin(t, cp.url(), cp.ca, cp.owner)
	cat, trust := currencyCatalog(t, 3)
	out := fleetOK(t, "fleet", "currency", "--catalog", cat, "--trust-dir", trust, "-o", "csv")
	for _, want := range []string{
		"web01,0,arcagent," + ac.AgentVersion + ",1.29.02300.1,",
		"web01,0,Contoso.Monitoring.StatusReporter,1.1.0,1.2.0,behind",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("fleet currency from the control plane lacks %q:\n%s", want, out)
		}
	}
}
