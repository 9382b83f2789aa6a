//go:build !windows

package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/loadgen"
)

// fleetLogin logs the fleet CLI in to srv with token, in a config
// directory of its own.
func fleetLogin(t testing.TB, url string, caPEM []byte, token string) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("HOME", dir)
	t.Setenv("ARCAGENT_FLEET_CONFIG", filepath.Join(dir, "fleet-"+token[len(token)-6:]+".json"))
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	if code := run([]string{"fleet", "login", "--server", url, "--ca-file", ca, "--token", token}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("fleet login: exit %d %s%s", code, out.String(), errb.String())
	}
}

// csvWithoutLines drops the line column of a currency CSV report (a file
// has lines, the control plane none) and sorts the rows.
func csvWithoutLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.SplitN(l, ",", 3)
		if len(f) == 3 {
			l = f[0] + "," + f[2]
		}
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// TestFleetCurrencyFromControlPlane checks that `fleet currency` without
// --inventory reads the logged-in control plane's fleet, that the report is
// the one the same fleet as a file gives, and that an operator scoped to a
// resource group sees only its machines.
func TestFleetCurrencyFromControlPlane(t *testing.T) {
	ctx := context.Background()
	srv, err := loadgen.StartLocal(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	c, err := cloud.New(srv.URL, cloud.Options{CAPEM: srv.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	owner := c.Operator(srv.Token)
	sub, err := owner.CreateSubscription(ctx, apiv1.CreateSubscriptionRequest{DisplayName: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	type machine struct {
		rg, name, agent string
		exts            []apiv1.ExtensionStatus
		old             bool // an old agent: no inventory in its heartbeats
	}
	fleet := []machine{
		{"web", "web-01", "1.29.02300.1", []apiv1.ExtensionStatus{{Name: "monitor", Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.2.0", State: "Succeeded"}}, false},
		{"web", "web-02", "1.28.02260.736", []apiv1.ExtensionStatus{{Name: "monitor", Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.1.0", State: "Succeeded"}, {Name: "scripts", Publisher: "Contoso.Automation", Type: "ScriptRunner", Version: "2.0.x", State: "Failed"}}, false},
		{"db", "db-01", "1.27.02100.100", []apiv1.ExtensionStatus{{Name: "monitor", Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0", State: "Failed"}}, true},
	}
	type fileMachine struct {
		Name       string `json:"name"`
		Agent      string `json:"agent"`
		Extensions []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"extensions"`
	}
	var file []fileMachine
	for _, g := range []string{"web", "db"} {
		if _, err := owner.CreateResourceGroup(ctx, sub.SubID, apiv1.CreateResourceGroupRequest{Name: g}); err != nil {
			t.Fatal(err)
		}
	}
	for _, fm := range fleet {
		cred, err := owner.CreateOnboarding(ctx, apiv1.CreateOnboardingRequest{SubscriptionID: sub.SubID, ResourceGroup: fm.rg, ExpiresIn: "1h", Uses: 1})
		if err != nil {
			t.Fatal(err)
		}
		key, _ := cloud.GenerateKey()
		// Registration reports an older agent; the heartbeats say which
		// runs now.
		reg, err := c.Register(ctx, cred.Secret, key, apiv1.RegisterRequest{Inventory: apiv1.Inventory{Hostname: fm.name, OSType: "linux", AgentVersion: "1.0.0"}})
		if err != nil {
			t.Fatal(err)
		}
		m := c.Machine(reg.MachineID, reg.Audience, key)
		hb := apiv1.HeartbeatRequest{AgentVersion: fm.agent}
		if !fm.old {
			hb.Inventory = &apiv1.Inventory{Hostname: fm.name, OSType: "linux", OSName: "Debian GNU/Linux", OSVersion: "13", AgentVersion: fm.agent}
		}
		if _, err := m.Heartbeat(ctx, hb); err != nil {
			t.Fatal(err)
		}
		if err := m.PutStatus(ctx, apiv1.MachineStatus{Extensions: fm.exts}); err != nil {
			t.Fatal(err)
		}
		f := fileMachine{Name: fm.name, Agent: fm.agent}
		for _, x := range fm.exts {
			f.Extensions = append(f.Extensions, struct {
				Name    string `json:"name"`
				Version string `json:"version"`
			}{x.Publisher + "." + x.Type, x.Version})
		}
		file = append(file, f)
	}
	invFile := filepath.Join(t.TempDir(), "fleet.json")
	b, _ := json.Marshal(file)
	if err := os.WriteFile(invFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cat, trust := currencyCatalog(t, 3)
	src := []string{"--catalog", cat, "--trust-dir", trust}

	fleetLogin(t, srv.URL, srv.CAPEM, srv.Token)
	fromServer := fleetOK(t, append([]string{"fleet", "currency", "-o", "csv"}, src...)...)
	fromFile := fleetOK(t, append([]string{"fleet", "currency", "--inventory", invFile, "-o", "csv"}, src...)...)
	if got, want := csvWithoutLines(fromServer), csvWithoutLines(fromFile); !slices.Equal(got, want) {
		t.Fatalf("the control plane's report differs from the file's:\n%s\n---\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, want := range []string{
		"web-01,0,arcagent,1.29.02300.1,1.29.02300.1,current",
		"web-02,0,Contoso.Automation.ScriptRunner,2.0.x,",
		"db-01,0,arcagent,1.27.02100.100,1.29.02300.1,unsupported",
		"db-01,0,Contoso.Monitoring.StatusReporter,1.0.0,1.2.0,unsupported",
	} {
		if !strings.Contains(fromServer, want) {
			t.Errorf("the report lacks %q:\n%s", want, fromServer)
		}
	}
	// Every format works; the table names the control plane as the inventory.
	dir := t.TempDir()
	out := fleetOK(t, append([]string{"fleet", "currency", "-o", "table", "-o", "sarif=" + filepath.Join(dir, "c.sarif"), "-o", "junit=" + filepath.Join(dir, "c.xml"),
		"-o", "html=" + filepath.Join(dir, "c.html"), "-o", "markdown=" + filepath.Join(dir, "c.md"), "-o", "json=" + filepath.Join(dir, "c.json")}, src...)...)
	if !strings.Contains(out, srv.URL+"/v1/inventory") || !strings.Contains(out, "3 machines") {
		t.Errorf("table:\n%s", out)
	}
	// --resource-group narrows the fleet; it does not apply to a file.
	if out := fleetOK(t, append([]string{"fleet", "currency", "--resource-group", "db", "-o", "csv"}, src...)...); strings.Contains(out, "web-0") || !strings.Contains(out, "db-01") {
		t.Errorf("--resource-group db:\n%s", out)
	}
	if _, stderr, code := fleetCLI(t, "", append([]string{"fleet", "currency", "--inventory", invFile, "--resource-group", "db"}, src...)...); code != 2 || !strings.Contains(stderr, "--inventory") {
		t.Errorf("--resource-group with --inventory: exit %d %s", code, stderr)
	}

	// An operator holding Reader on the web group sees only its machines.
	if _, err := owner.AssignRole(ctx, apiv1.CreateRoleAssignmentRequest{Principal: "webops", Role: "Reader", Scope: "/subscriptions/" + sub.SubID + "/resourceGroups/web"}); err != nil {
		t.Fatal(err)
	}
	tok, err := owner.CreateAPIToken(ctx, apiv1.CreateAPITokenRequest{Principal: "webops"})
	if err != nil {
		t.Fatal(err)
	}
	fleetLogin(t, srv.URL, srv.CAPEM, tok.Token)
	scoped := fleetOK(t, append([]string{"fleet", "currency", "-o", "csv"}, src...)...)
	if !strings.Contains(scoped, "web-01") || !strings.Contains(scoped, "web-02") || strings.Contains(scoped, "db-01") {
		t.Errorf("a Reader of web sees:\n%s", scoped)
	}
	if _, stderr, code := fleetCLI(t, "", append([]string{"fleet", "currency", "--resource-group", "db", "--subscription", sub.SubID}, src...)...); code == 0 || !strings.Contains(stderr, "ARC0202") {
		t.Errorf("a Reader of web asking for db: exit %d %s", code, stderr)
	}
}
