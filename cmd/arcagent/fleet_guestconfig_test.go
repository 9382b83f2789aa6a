//go:build !windows

package main

import (
	"archive/zip"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/signing"
)

// writeGuestConfigPackage writes a guest configuration package of p into
// dir, signed as one (or, with k, as another kind), and returns its path.
func writeGuestConfigPackage(t *testing.T, dir string, p signing.Package, k signing.Kind) string {
	t.Helper()
	path := filepath.Join(dir, p.FileName())
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	w, _ := zw.Create("guestconfig.yaml")
	_, _ = w.Write([]byte("apiVersion: guestconfig.arcagent.dev/v1\nname: " + p.Type + "\nversion: \"" + p.Version + "\"\nresources: []\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	kp, _ := signing.GenerateKey(signing.AlgECDSAP256, nil)
	signer, _ := signing.ParseSigner(kp.PrivatePEM, nil)
	env, _, err := signing.SignPackageKind(context.Background(), k, path, p, signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+signing.SignatureSuffix, env, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFleetGuestConfig drives `fleet guestconfig` against a real arcserver
// process: publish, assign at both scopes, read the status a machine
// reports, list, remove.
func TestFleetGuestConfig(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	cp := startControlPlane(t, root)
	defer cp.proc.stop(t)
	rg, secret := cp.onboarding(t, 1)
	cfgDir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgDir)
	t.Setenv("HOME", cfgDir)
	t.Setenv("ARCAGENT_FLEET_CONFIG", "")
	ca := filepath.Join(root, "ca.crt")
	if err := os.WriteFile(ca, cp.ca, 0o644); err != nil {
		t.Fatal(err)
	}
	fleetOK(t, "fleet", "login", "--server", cp.url(), "--ca-file", ca, "--token", cp.owner)
	c, err := cloud.New(cp.url(), cloud.Options{CAPEM: cp.ca})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := cloud.GenerateKey()
	reg, err := c.Register(ctx, secret, key, apiv1.RegisterRequest{Inventory: apiv1.Inventory{Hostname: "web01", OSType: "linux", AgentVersion: "0.1.0"}})
	if err != nil {
		t.Fatal(err)
	}
	mach := c.Machine(reg.MachineID, reg.Audience, key)

	work := t.TempDir()
	p := signing.Package{Publisher: "Contoso.Baseline", Type: "SSH", Version: "1.0"}
	pkg := writeGuestConfigPackage(t, work, p, signing.KindGuestConfig)
	wrongKind := writeGuestConfigPackage(t, t.TempDir(), signing.Package{Publisher: "Contoso.Baseline", Type: "Other", Version: "1.0"}, signing.KindExtension)
	if _, errOut, code := fleetCLI(t, "", "fleet", "guestconfig", "publish", wrongKind); code != errcode.ExitUsage || !strings.Contains(errOut, "signed as an extension package") {
		t.Fatalf("publish an extension signature: %d %s", code, errOut)
	}
	out := fleetOK(t, "fleet", "guestconfig", "publish", pkg)
	if !strings.Contains(out, "Published guest configuration package Contoso.Baseline.SSH-1.0.zip") || !strings.Contains(out, "--package Contoso.Baseline.SSH --version 1.0") {
		t.Fatalf("publish: %s", out)
	}
	if out := fleetOK(t, "fleet", "packages", "list", "--kind", "guestconfig"); !strings.Contains(out, "guestconfig") || !strings.Contains(out, "KIND") {
		t.Fatalf("packages list: %s", out)
	}
	if out := fleetOK(t, "fleet", "packages", "list", "--kind", "extension", "-j"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("extension packages: %s", out)
	}

	assign := []string{"fleet", "guestconfig", "assign", "--name", "ssh", "--package", "Contoso.Baseline.SSH", "--version", "1.0"}
	if _, errOut, code := fleetCLI(t, "", append(assign, "--mode", "Audit")...); code != errcode.ExitUsage || !strings.Contains(errOut, "--machine M and --resource-group RG") {
		t.Fatalf("no target: %d %s", code, errOut)
	}
	if _, errOut, code := fleetCLI(t, "", append(assign, "--machine", "web01", "--mode", "Audit", "--parameters", "1bad=x")...); code != errcode.ExitUsage || !strings.Contains(errOut, "1bad") {
		t.Fatalf("bad parameter: %d %s", code, errOut)
	}
	out = fleetOK(t, append(assign, "--machine", "web01", "--mode", "Audit", "--parameters", "maxAuthTries=4,ciphers=aes256-gcm,chacha20", "--parameters", "banner=hi")...)
	if !strings.Contains(out, "Assigned ssh to web01: Contoso.Baseline.SSH 1.0 in Audit mode") {
		t.Fatalf("assign: %s", out)
	}
	var g apiv1.GuestConfigurationAssignment
	if err := json.Unmarshal([]byte(fleetOK(t, "fleet", "guestconfig", "assign", "--resource-group", rg, "--name", "baseline", "--package", "Contoso.Baseline.SSH", "--version", "1.0", "--mode", "ApplyAndMonitor", "-j")), &g); err != nil || !strings.HasSuffix(g.Scope, "/resourceGroups/"+rg) {
		t.Fatalf("group assign: %+v %v", g, err)
	}
	if _, errOut, code := fleetCLI(t, "", append(assign, "--resource-group", rg, "--mode", "Audit")...); code == 0 || !strings.Contains(errOut, "own guest configuration assignment") {
		t.Fatalf("name clash: %d %s", code, errOut)
	}
	ds, _, err := mach.DesiredState(ctx, "")
	if err != nil || len(ds.GuestConfigurationAssignments) != 2 {
		t.Fatalf("desired state: %+v %v", ds, err)
	}
	if got := ds.GuestConfigurationAssignments[1].Parameters; !reflect.DeepEqual(got, map[string]string{"maxAuthTries": "4", "ciphers": "aes256-gcm,chacha20", "banner": "hi"}) {
		t.Fatalf("parameters: %v", got)
	}
	if out := fleetOK(t, "fleet", "guestconfig", "list", "--machine", "web01"); !strings.Contains(out, "baseline") || !strings.Contains(out, "maxAuthTries=4") || !strings.Contains(out, "ApplyAndMonitor") {
		t.Fatalf("list --machine: %s", out)
	}
	if out := fleetOK(t, "fleet", "guestconfig", "list", "--resource-group", rg); !strings.Contains(out, "baseline") || strings.Contains(out, "maxAuthTries") {
		t.Fatalf("list --resource-group: %s", out)
	}
	if out := fleetOK(t, "fleet", "guestconfig", "status", "--machine", "web01"); strings.Count(out, "Pending") != 2 {
		t.Fatalf("status before a report: %s", out)
	}

	// The machine reports (as gcad does): per-resource compliance.
	err = mach.PutStatus(ctx, apiv1.MachineStatus{GuestConfiguration: []apiv1.GuestConfigurationStatus{{
		Name: "ssh", Compliance: "NonCompliant", Policy: "Contoso.Baseline.SSH", Version: "1.0", Mode: "Audit",
		Resources: []apiv1.GuestConfigurationResourceStatus{
			{ID: "sshd-permit-root-login", Type: "file", Compliance: "NonCompliant", Reason: "PermitRootLogin is yes, want no"},
			{ID: "shadow-mode", Type: "file", Compliance: "Compliant"},
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	out = fleetOK(t, "fleet", "guestconfig", "status", "--machine", "web01")
	for _, want := range []string{"NonCompliant", "sshd-permit-root-login", "PermitRootLogin is yes, want no", "shadow-mode", "1 of 2 resources", "Pending"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status --machine lacks %q:\n%s", want, out)
		}
	}
	out = fleetOK(t, "fleet", "guestconfig", "status")
	if !strings.Contains(out, "web01") || !strings.Contains(out, "1/2") || !strings.Contains(out, "NON-COMPLIANT") {
		t.Fatalf("fleet status: %s", out)
	}
	var ms []apiv1.MachineGuestConfiguration
	if err := json.Unmarshal([]byte(fleetOK(t, "fleet", "guestconfig", "status", "-o", "json")), &ms); err != nil || len(ms) != 1 || len(ms[0].Assignments) != 2 {
		t.Fatalf("fleet status json: %+v %v", ms, err)
	}

	fleetOK(t, "fleet", "guestconfig", "remove", "--resource-group", rg, "--name", "baseline")
	if _, errOut, code := fleetCLI(t, "", "fleet", "guestconfig", "remove", "--machine", "web01", "--name", "baseline"); code == 0 || !strings.Contains(errOut, "baseline") {
		t.Fatalf("remove twice: %d %s", code, errOut)
	}
	fleetOK(t, "fleet", "guestconfig", "remove", "--machine", "web01", "--name", "ssh")
	if out := fleetOK(t, "fleet", "guestconfig", "list", "--machine", "web01", "-j"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("after remove: %s", out)
	}
}

func TestParseParameters(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want map[string]string
		err  string
	}{
		{nil, nil, ""},
		{[]string{"a=1"}, map[string]string{"a": "1"}, ""},
		{[]string{"a=1,b=2", "c="}, map[string]string{"a": "1", "b": "2", "c": ""}, ""},
		{[]string{"list=x,y,z=1"}, map[string]string{"list": "x,y", "z": "1"}, ""},
		{[]string{"eq=a=b"}, map[string]string{"eq": "a=b"}, ""},
		{[]string{"noval"}, nil, "KEY=VALUE"},
		{[]string{"a=1", "b"}, nil, "KEY=VALUE"},
		{[]string{"a=1", "a=2"}, nil, "given twice"},
		{[]string{"_a=1"}, nil, "name"},
		{[]string{"=1"}, nil, "name"},
		{[]string{"a=\x1b[31m"}, nil, "control characters"},
		{[]string{"a=" + strings.Repeat("v", 4097)}, nil, "4096"},
		{[]string{strings.Repeat("k", 65) + "=1"}, nil, "name"},
	} {
		got, err := parseParameters(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v %v, want an error about %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
	many := make([]string, 65)
	for i := range many {
		many[i] = "p" + strconv.Itoa(i) + "=1"
	}
	if _, err := parseParameters(many); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Errorf("65 parameters: %v", err)
	}
}

func FuzzParseParameters(f *testing.F) {
	for _, s := range []string{"a=1", "a=1,b=2", "list=x,y", "noval", "a=1,a=2", "=", ",,", "a=\x00", "k=v=w,"} {
		f.Add(s, "b=2")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		got, err := parseParameters([]string{a, b})
		if err != nil {
			return
		}
		if len(got) > fleetMaxParameters {
			t.Fatalf("%d parameters accepted", len(got))
		}
		for k, v := range got {
			if !validParamName(k) || len(v) > fleetMaxParameterValue || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("accepted %q=%q", k, v)
			}
			if !strings.Contains(a, k+"="+v) && !strings.Contains(b, k+"="+v) {
				t.Fatalf("%q=%q is not in the input %q %q", k, v, a, b)
			}
		}
	})
}
