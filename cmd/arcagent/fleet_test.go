//go:build !windows

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/loadgen"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/testutil"
)

// rfc3339 matches the one timestamp format of human output.
var rfc3339 = regexp.MustCompile(`\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b`)

func fleetCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func fleetOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := fleetCLI(t, "", args...)
	if code != 0 {
		t.Fatalf("arcagent %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// TestFleetCommands drives every fleet command against a real arcserver on
// a loopback port over TLS.
func TestFleetCommands(t *testing.T) {
	ctx := context.Background()
	srv, err := loadgen.StartLocal(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	cfgDir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgDir)
	t.Setenv("HOME", cfgDir)
	t.Setenv("ARCAGENT_FLEET_CONFIG", "")
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, srv.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}

	// Not logged in yet.
	if _, errOut, code := fleetCLI(t, "", "fleet", "machines", "list"); code != errcode.ExitUsage || !strings.Contains(errOut, string(apiv1.CodeNotLoggedIn)) {
		t.Fatalf("not logged in: %d %s", code, errOut)
	}
	// A wrong token is refused and nothing is saved.
	if _, errOut, code := fleetCLI(t, "", "fleet", "login", "--server", srv.URL, "--ca-file", ca, "--token", "arcp_wrong"); code != errcode.ExitFailed || !strings.Contains(errOut, "ARC0201") {
		t.Fatalf("wrong token: %d %s", code, errOut)
	}
	// Without the CA the server is not trusted.
	if _, errOut, code := fleetCLI(t, "", "fleet", "login", "--server", srv.URL, "--token", srv.Token); code != errcode.ExitFailed || !strings.Contains(errOut, "ARC0212") {
		t.Fatalf("untrusted server: %d %s", code, errOut)
	}
	out, errOut, code := fleetCLI(t, srv.Token+"\n", "fleet", "login", "--server", srv.URL, "--ca-file", ca, "--token", "-")
	if code != 0 || !strings.Contains(out, "as owner") {
		t.Fatalf("login: %d %s %s", code, out, errOut)
	}
	cfg := filepath.Join(cfgDir, "arcagent", "fleet.json")
	if fi, err := os.Stat(cfg); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("login file: %v %v", fi, err)
	}
	if fi, _ := os.Stat(filepath.Dir(cfg)); fi.Mode().Perm() != 0o700 {
		t.Fatalf("config dir mode %v", fi.Mode())
	}

	fleetOK(t, "fleet", "subscriptions", "create", "prod", "--tag", "env=prod")
	if out := fleetOK(t, "fleet", "subscriptions", "list"); !strings.Contains(out, "prod") || !strings.Contains(out, "env=prod") {
		t.Fatalf("subscriptions list: %s", out)
	}
	fleetOK(t, "fleet", "groups", "create", "web", "--subscription", "prod")
	if out := fleetOK(t, "fleet", "groups", "list", "--subscription", "prod"); !strings.Contains(out, "web") {
		t.Fatalf("groups list: %s", out)
	}
	var cred apiv1.OnboardingCredential
	if err := json.Unmarshal([]byte(fleetOK(t, "fleet", "onboarding", "create", "--resource-group", "web", "--expires", "1h", "--uses", "2", "--json")), &cred); err != nil || cred.Secret == "" {
		t.Fatalf("onboarding create: %+v %v", cred, err)
	}
	if out := fleetOK(t, "fleet", "onboarding", "list"); !strings.Contains(out, cred.ID) || !strings.Contains(out, "Active") || strings.Contains(out, cred.Secret) {
		t.Fatalf("onboarding list: %s", out)
	}

	// A machine registers with the credential through agent/cloud.
	c, err := cloud.New(srv.URL, cloud.Options{CAPEM: srv.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := cloud.GenerateKey()
	reg, err := c.Register(ctx, cred.Secret, key, apiv1.RegisterRequest{Inventory: apiv1.Inventory{Hostname: "web01.example.com", OSType: "linux", AgentVersion: "0.1.0"}})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Name != "web01" {
		t.Fatalf("machine name %q", reg.Name)
	}
	if out := fleetOK(t, "fleet", "machines", "list", "--resource-group", "web"); !strings.Contains(out, "web01") || !strings.Contains(out, "Connected") || !rfc3339.MatchString(out) {
		t.Fatalf("machines list (want RFC 3339 UTC times): %s", out)
	}
	// -o json is what -j prints; -o table is the default; anything else is refused.
	if j, o := fleetOK(t, "fleet", "machines", "list", "-j"), fleetOK(t, "fleet", "machines", "list", "-o", "json"); j != o || !strings.HasPrefix(j, "[") {
		t.Errorf("-o json printed %q, -j %q", o, j)
	}
	if tab := fleetOK(t, "fleet", "machines", "list", "--output", "table"); !strings.HasPrefix(tab, "NAME") {
		t.Errorf("-o table: %s", tab)
	}
	if _, errOut, code := fleetCLI(t, "", "fleet", "machines", "list", "-o", "yaml"); code != errcode.ExitUsage || !strings.Contains(errOut, "table or json") {
		t.Errorf("-o yaml: %d %s", code, errOut)
	}
	if out := fleetOK(t, "fleet", "onboarding", "list"); !rfc3339.MatchString(out) {
		t.Errorf("onboarding list (want RFC 3339 UTC times): %s", out)
	}
	var m apiv1.Machine
	if err := json.Unmarshal([]byte(fleetOK(t, "fleet", "machines", "show", "web01", "--json")), &m); err != nil || m.ID != reg.MachineID {
		t.Fatalf("machines show: %+v %v", m, err)
	}

	// A second principal with Reader on the group can list but not delete.
	var tok apiv1.APIToken
	if err := json.Unmarshal([]byte(fleetOK(t, "fleet", "tokens", "create", "--principal", "alice", "--json")), &tok); err != nil || tok.Token == "" {
		t.Fatalf("tokens create: %v", err)
	}
	fleetOK(t, "fleet", "roles", "assign", "--principal", "alice", "--role", "Reader", "--scope", "prod/web")
	if out := fleetOK(t, "fleet", "roles", "list", "--scope", "prod/web"); !strings.Contains(out, "alice") || !strings.Contains(out, "owner") {
		t.Fatalf("roles list: %s", out)
	}
	if out := fleetOK(t, "fleet", "roles", "definitions"); !strings.Contains(out, "Connected Machine Onboarding") {
		t.Fatalf("roles definitions: %s", out)
	}
	t.Setenv("ARCAGENT_FLEET_CONFIG", filepath.Join(t.TempDir(), "alice.json"))
	fleetOK(t, "fleet", "login", "--server", srv.URL, "--ca-file", ca, "--token", tok.Token)
	if out := fleetOK(t, "fleet", "machines", "list"); !strings.Contains(out, "web01") {
		t.Fatalf("alice machines list: %s", out)
	}
	_, errOut, code = fleetCLI(t, "", "fleet", "machines", "delete", reg.MachineID, "--yes")
	if code != errcode.ExitFailed || !strings.Contains(errOut, "Microsoft.HybridCompute/machines/delete") || !strings.Contains(errOut, "what to do:") {
		t.Fatalf("alice delete: %d %s", code, errOut)
	}
	fleetOK(t, "fleet", "logout")
	t.Setenv("ARCAGENT_FLEET_CONFIG", "")

	fleetOK(t, "fleet", "onboarding", "revoke", cred.ID)
	if out := fleetOK(t, "fleet", "onboarding", "list", "--resource-group", "web"); !strings.Contains(out, "Revoked") {
		t.Fatalf("after revoke: %s", out)
	}
	// Without a terminal, delete refuses without --yes; on a terminal it
	// asks, and only "y" deletes.
	if _, errOut, code := fleetCLI(t, "y\n", "fleet", "machines", "delete", "web01"); code != errcode.ExitUsage || !strings.Contains(errOut, "--yes") {
		t.Fatalf("delete without a terminal: %d %s", code, errOut)
	}
	for _, answer := range []string{"n\n", "y\n"} {
		master, tty := testutil.PTY(t)
		if _, err := master.WriteString(answer); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := run([]string{"fleet", "machines", "delete", "web01"}, tty, &out, &errb)
		if !strings.Contains(errb.String(), "Delete machine web01 ("+reg.MachineID+")? Its identity stops working at once. [y/N] ") {
			t.Errorf("no prompt: %q", errb.String())
		}
		if want := map[string]int{"n\n": errcode.ExitUsage, "y\n": 0}[answer]; code != want {
			t.Fatalf("answer %q: exit %d, want %d: %s", answer, code, want, errb.String())
		}
	}
	if out := fleetOK(t, "fleet", "machines", "list", "--json"); strings.Contains(out, "web01") {
		t.Fatalf("machine still listed: %s", out)
	}
	if out := fleetOK(t, "fleet", "tokens", "list"); !strings.Contains(out, tok.ID) || strings.Contains(out, tok.Token) {
		t.Fatalf("tokens list: %s", out)
	}
	fleetOK(t, "fleet", "tokens", "revoke", tok.ID)
	if out := fleetOK(t, "fleet", "whoami"); !strings.Contains(out, "Owner") {
		t.Fatalf("whoami: %s", out)
	}
	if _, errOut, code := fleetCLI(t, "", "fleet", "onboarding", "create", "--resource-group", "nope", "--expires", "1h", "--uses", "1"); code != errcode.ExitUsage || !strings.Contains(errOut, "nope") {
		t.Fatalf("unknown group: %d %s", code, errOut)
	}
}
