//go:build !windows

package main

import (
	"archive/zip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogsBundle runs `arcagent logs` on a scratch tree of a connected
// machine whose control plane is down, with secrets planted: the bundle
// holds show, check and audit output and the redacted files, no secret,
// and is written 0600 under its default name in the current directory.
func TestLogsBundle(t *testing.T) {
	root := t.TempDir()
	secrets := map[string]string{
		"machine key":       "MHcCAQEEIMachineKeyBodyLineValue0123456789abcdef",
		"challenge secret":  "ChallengeSecretFileContent0123456789",
		"proxy password":    "CliProxyPassw0rdSecret",
		"onboarding secret": "arcob_Q2xpT25ib2FyZGluZ1NlY3JldA",
		"api token":         "CliFleetApiTokenValue987654321",
	}
	for prod, data := range map[string]string{
		"var/opt/azcmagent/certs/machine.key":     "-----BEGIN EC PRIVATE KEY-----\n" + secrets["machine key"] + "\n-----END EC PRIVATE KEY-----\n",
		"var/opt/azcmagent/tokens/a1.key":         secrets["challenge secret"],
		"root/.config/arcagent/fleet.json":        `{"server":"https://cp","token":"` + secrets["api token"] + `"}`,
		"var/opt/azcmagent/localconfig.json":      `{"proxy.url": "http://ops:` + secrets["proxy password"] + `@127.0.0.1:9"}`,
		"var/opt/azcmagent/agentconfig.json":      `{"machineId":"m-1","name":"web01","server":"https://` + freeLoopbackAddr(t) + `","status":"Connected","connectedAt":"2026-12-03T10:00:00Z"}`,
		"var/opt/azcmagent/log/himds.log":         "level=INFO msg=up\nlevel=DEBUG onboarding-token=" + secrets["onboarding secret"] + " key=" + secrets["machine key"] + " used " + secrets["api token"] + " and " + secrets["challenge secret"] + "\n",
		"var/opt/azcmagent/log/connect-left.yaml": "onboarding-token: " + secrets["onboarding secret"] + "\n",
	} {
		p := filepath.Join(root, prod)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/shadow", filepath.Join(root, "var/opt/azcmagent/log/shadow")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	out, stderr, code := runCLI(t, "--root", root, "logs")
	if code != 0 {
		t.Fatalf("logs: exit %d\n%s%s", code, out, stderr)
	}
	matches, _ := filepath.Glob("arcagent-logs-*-*Z.zip")
	if len(matches) != 1 || !strings.Contains(out, "Wrote ") {
		t.Fatalf("bundle %v, output %q", matches, out)
	}
	if fi, err := os.Stat(matches[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bundle mode %v %v", fi.Mode(), err)
	}
	zr, err := zip.OpenReader(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = string(b)
		for what, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s holds the %s", f.Name, what)
			}
		}
		if strings.Contains(string(b), "root:") && strings.Contains(string(b), ":0:") {
			t.Errorf("%s looks like /etc/shadow or passwd content", f.Name)
		}
	}
	for name, want := range map[string]string{
		"show.json": `"name": "web01"`,
		// Credentials in proxy.url are refused, as every service refuses
		// them; the refusal, not the URL, is in the bundle.
		"check.txt":                          "ARC0502",
		"audit.json":                         `"results"`,
		"var/opt/azcmagent/localconfig.json": "http://[REDACTED]@127.0.0.1:9",
		"var/opt/azcmagent/log/himds.log":    "level=INFO msg=up",
		"MANIFEST.json":                      "var/opt/azcmagent/log/shadow",
		"services.json":                      "himdsd",
	} {
		if !strings.Contains(files[name], want) {
			t.Errorf("%s does not hold %q:\n%.600s", name, want, files[name])
		}
	}
	if _, stderr, code := runCLI(t, "--root", root, "logs", "--output", "x.tar"); code != 2 || !strings.Contains(stderr, "name it FILE.zip") {
		t.Errorf("--output x.tar: exit %d %s", code, stderr)
	}
}
