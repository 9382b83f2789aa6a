//go:build !windows

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/loadgen"
)

// TestConnectUnderRoot: connect with --root reads the product UUID under
// the root, and names the next command with the same --root.
func TestConnectUnderRoot(t *testing.T) {
	ctx := t.Context()
	srv, err := loadgen.StartLocal(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, err := cloud.New(srv.URL, cloud.Options{CAPEM: srv.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	op := c.Operator(srv.Token)
	sub, err := op.CreateSubscription(ctx, apiv1.CreateSubscriptionRequest{DisplayName: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.CreateResourceGroup(ctx, sub.SubID, apiv1.CreateResourceGroupRequest{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	cred, err := op.CreateOnboarding(ctx, apiv1.CreateOnboardingRequest{SubscriptionID: sub.SubID, ResourceGroup: "web", ExpiresIn: "1h", Uses: 1})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "my machine")
	uuid := filepath.Join(root, "sys/class/dmi/id/product_uuid")
	if err := os.MkdirAll(filepath.Dir(uuid), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(uuid, []byte("ABCDEF01-2345-6789-ABCD-EF0123456789\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, srv.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, "--root", root, "connect", "--server", srv.URL, "--ca-file", ca, "--resource-group", "web", "--onboarding-token", cred.Secret, "--name", "web01")
	if code != 0 {
		t.Fatalf("connect: exit %d: %s%s", code, out, stderr)
	}
	if want := "arcagent --root '" + root + "' daemon himds"; !strings.Contains(out, want) {
		t.Errorf("connect printed %q; want the next command %q", out, want)
	}
	cfg, err := himds.LoadAgentConfig(layout.New(root))
	if err != nil || cfg == nil || cfg.VMID != "abcdef01-2345-6789-abcd-ef0123456789" {
		t.Fatalf("agentconfig.json %+v %v: vmId not read under --root", cfg, err)
	}
	m, err := op.GetMachine(ctx, cfg.MachineID)
	if err != nil || m.Inventory.VMID != cfg.VMID {
		t.Errorf("server inventory %+v %v", m.Inventory, err)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"/tmp/x": "/tmp/x", "/tmp/my machine": "'/tmp/my machine'", "/tmp/it's": `'/tmp/it'\''s'`, "": "''"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
