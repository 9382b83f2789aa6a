//go:build !windows

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/loadgen"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/sealed"
	"github.com/arcagent/arcagent/signing"
)

// TestFleetPackagesAndExtensions drives `fleet packages` and `fleet
// extensions` against a real arcserver: publish the example status-reporter
// package, assign it with settings and protected settings, follow its
// reported state, remove it.
func TestFleetPackagesAndExtensions(t *testing.T) {
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
	work := t.TempDir()
	ca := filepath.Join(work, "ca.crt")
	if err := os.WriteFile(ca, srv.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	fleetOK(t, "fleet", "login", "--server", srv.URL, "--ca-file", ca, "--token", srv.Token)
	fleetOK(t, "fleet", "subscriptions", "create", "prod")
	fleetOK(t, "fleet", "groups", "create", "web", "--subscription", "prod")
	var cred apiv1.OnboardingCredential
	if err := json.Unmarshal([]byte(fleetOK(t, "fleet", "onboarding", "create", "--resource-group", "web", "--expires", "1h", "--uses", "1", "-j")), &cred); err != nil {
		t.Fatal(err)
	}
	c, err := cloud.New(srv.URL, cloud.Options{CAPEM: srv.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := cloud.GenerateKey()
	reg, err := c.Register(ctx, cred.Secret, key, apiv1.RegisterRequest{Inventory: apiv1.Inventory{Hostname: "web01", OSType: "linux", AgentVersion: "0.1.0"}})
	if err != nil {
		t.Fatal(err)
	}
	mach := c.Machine(reg.MachineID, reg.Audience, key)

	// The example package, built and signed as a publisher would.
	p := signing.Package{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0"}
	built, err := extensions.BuildPackage(ctx, extensions.BuildOptions{Dir: filepath.Join("..", "..", "examples", "extensions", "status-reporter"), Package: p, OutDir: work})
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := signing.GenerateKey(signing.AlgECDSAP256, nil)
	signer, _ := signing.ParseSigner(kp.PrivatePEM, nil)
	env, _, err := extensions.SignPackage(ctx, built.Path, p, signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(built.Path+signing.SignatureSuffix, env, 0o644); err != nil {
		t.Fatal(err)
	}

	// Publishing without a signature file says how to make one.
	unsigned := filepath.Join(work, "Contoso.Monitoring.StatusReporter-9.0.0.zip")
	if err := os.WriteFile(unsigned, []byte("zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := fleetCLI(t, "", "fleet", "packages", "publish", unsigned); code != errcode.ExitUsage || !strings.Contains(errOut, "arcagent package sign") {
		t.Fatalf("publish unsigned: %d %s", code, errOut)
	}
	out := fleetOK(t, "fleet", "packages", "publish", built.Path)
	if !strings.Contains(out, "Published Contoso.Monitoring.StatusReporter-1.0.0.zip") || !strings.Contains(out, built.SHA256) {
		t.Fatalf("publish: %s", out)
	}
	// Again, with the signature named explicitly: the same entry.
	var info apiv1.PackageInfo
	if err := json.Unmarshal([]byte(fleetOK(t, "fleet", "packages", "publish", built.Path, "--signature", built.Path+signing.SignatureSuffix, "-j")), &info); err != nil || info.SHA256 != built.SHA256 {
		t.Fatalf("republish: %+v %v", info, err)
	}
	if out := fleetOK(t, "fleet", "packages", "list", "--publisher", "Contoso.Monitoring"); !strings.Contains(out, built.SHA256) || !strings.Contains(out, "StatusReporter") || !rfc3339.MatchString(out) {
		t.Fatalf("packages list: %s", out)
	}
	if out := fleetOK(t, "fleet", "packages", "list", "--type", "Other", "-j"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("filtered list: %s", out)
	}

	setArgs := []string{"fleet", "extensions", "set", "--machine", "web01", "--name", "monitor", "--publisher", "Contoso.Monitoring", "--type", "StatusReporter"}
	// Protected settings never from the command line.
	if _, errOut, code := fleetCLI(t, "", append(setArgs, "--version", "1.0.0", "--protected-settings", `{"password":"hunter2"}`)...); code != errcode.ExitUsage || !strings.Contains(errOut, "@FILE or @-") || strings.Contains(errOut, "hunter2") {
		t.Fatalf("literal protected settings: %d %s", code, errOut)
	}
	if _, errOut, code := fleetCLI(t, "", append(setArgs, "--version", "1.0.0", "--settings", "[1]")...); code != errcode.ExitUsage || !strings.Contains(errOut, "JSON object") {
		t.Fatalf("settings not an object: %d %s", code, errOut)
	}
	if _, errOut, code := fleetCLI(t, "", append(setArgs, "--version", "2.0.0")...); code != errcode.ExitUsage || !strings.Contains(errOut, "arcagent fleet packages publish Contoso.Monitoring.StatusReporter-2.0.0.zip") {
		t.Fatalf("unpublished version: %d %s", code, errOut)
	}
	secrets := filepath.Join(work, "secrets.json")
	if err := os.WriteFile(secrets, []byte(`{"password": "hunter2"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := fleetCLI(t, "", append(setArgs, "--version", "1.0.0", "--settings", `{"interval": 30, "big": 12345678901234567890}`, "--protected-settings", "@"+secrets)...)
	if code != 0 || !strings.Contains(out, "Assigned monitor to web01") || !strings.Contains(out, "sealed") || strings.Contains(out+errOut, "hunter2") || errOut != "" {
		t.Fatalf("set: %d %s %s", code, out, errOut)
	}
	// A secrets file others can read is used, with a warning.
	if err := os.Chmod(secrets, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := fleetCLI(t, "", append(setArgs, "--version", "1.0.0", "--settings", `{"interval": 30, "big": 12345678901234567890}`, "--protected-settings", "@"+secrets)...); code != 0 || !strings.Contains(errOut, "readable by other users") {
		t.Fatalf("world-readable secrets: %d %s", code, errOut)
	}
	doc, etag, err := mach.DesiredState(ctx, "")
	if err != nil || len(doc.Extensions) != 1 {
		t.Fatalf("desired state: %+v %v", doc, err)
	}
	got := doc.Extensions[0]
	// The machine's client keeps every digit too (json.Number).
	if got.PackageSHA256 != built.SHA256 || got.Settings["interval"] != json.Number("30") || got.Settings["big"] != json.Number("12345678901234567890") {
		t.Fatalf("desired %+v", got)
	}
	// The document as served (not as a float64 decoder reads it back)
	// keeps every digit.
	if raw := rawDesiredState(t, srv, reg, key); !strings.Contains(raw, `"big":12345678901234567890`) {
		t.Fatalf("a large number lost its digits on the way: %s", raw)
	}
	if plain, err := sealed.Open(key, reg.MachineID, "monitor", got.ProtectedSettings); err != nil || string(plain) != `{"password":"hunter2"}` {
		t.Fatalf("machine opens %q %v", plain, err)
	}
	// From stdin, the same values: nothing changes.
	fleetCLIOK := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := fleetCLI(t, stdin, args...)
		if code != 0 {
			t.Fatalf("arcagent %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	fleetCLIOK(`{"password":"hunter2"}`, append(setArgs, "--version", "1.0.0", "--settings", `{"interval": 30, "big": 12345678901234567890}`, "--protected-settings", "@-")...)
	if d, e2, err := mach.DesiredState(ctx, etag); err != nil || d != nil || e2 != etag {
		t.Fatalf("same values from stdin changed the desired state: %v %v", e2, err)
	}
	if _, errOut, code := fleetCLI(t, "{}", append(setArgs, "--version", "1.0.0", "--settings", "@-", "--protected-settings", "@-")...); code != errcode.ExitUsage || !strings.Contains(errOut, "standard input is already used") {
		t.Fatalf("stdin twice: %d %s", code, errOut)
	}

	out = fleetOK(t, "fleet", "extensions", "list", "--machine", "web01")
	if !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "monitor") || !strings.Contains(out, "Pending") || !strings.Contains(out, "not reported") {
		t.Fatalf("list before a report: %s", out)
	}
	// The machine reports; list shows it next to the desired version.
	if err := mach.PutStatus(ctx, apiv1.MachineStatus{DesiredStateETag: etag, Extensions: []apiv1.ExtensionStatus{
		{Name: "monitor", Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0", State: apiv1.ExtensionSucceeded, Message: "enabled", Operation: "Enable", Sequence: 0},
	}}); err != nil {
		t.Fatal(err)
	}
	out = fleetOK(t, "fleet", "extensions", "list", "--machine", reg.MachineID)
	if !strings.Contains(out, "Succeeded") || !strings.Contains(out, "enabled") || !strings.Contains(out, "Contoso.Monitoring.StatusReporter 1.0.0") {
		t.Fatalf("list after a report: %s", out)
	}
	var vs []apiv1.ExtensionView
	if err := json.Unmarshal([]byte(fleetOK(t, "fleet", "extensions", "list", "--machine", "web01", "-j")), &vs); err != nil || len(vs) != 1 || !vs[0].HasProtectedSettings || vs[0].Desired.ProtectedSettings != "" {
		t.Fatalf("list -j: %+v %v", vs, err)
	}

	out = fleetOK(t, "fleet", "extensions", "remove", "--machine", "web01", "--name", "monitor")
	if !strings.Contains(out, "Removed monitor from web01") {
		t.Fatalf("remove: %s", out)
	}
	if out := fleetOK(t, "fleet", "extensions", "list", "--machine", "web01"); !strings.Contains(out, "Removing") {
		t.Fatalf("list after remove: %s", out)
	}
	if _, errOut, code := fleetCLI(t, "", "fleet", "extensions", "remove", "--machine", "web01", "--name", "monitor"); code != errcode.ExitUsage || !strings.Contains(errOut, "not assigned") {
		t.Fatalf("remove twice: %d %s", code, errOut)
	}
	for _, args := range [][]string{
		{"fleet", "extensions", "set", "--machine", "web01"},
		{"fleet", "extensions", "list"},
		{"fleet", "extensions", "remove", "--machine", "web01"},
	} {
		if _, errOut, code := fleetCLI(t, "", args...); code != errcode.ExitUsage || !strings.Contains(errOut, "required") {
			t.Errorf("%v: %d %s", args, code, errOut)
		}
	}
}

// rawDesiredState fetches the machine's desired state as bytes.
func rawDesiredState(t *testing.T, srv *loadgen.Local, reg apiv1.Registration, key *ecdsa.PrivateKey) string {
	t.Helper()
	a, err := cloud.SignAssertion(key, reg.MachineID, reg.Audience, time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.CAPEM)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/machines/"+reg.MachineID+"/desiredState", nil)
	req.Header.Set("Authorization", "Bearer "+a)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
