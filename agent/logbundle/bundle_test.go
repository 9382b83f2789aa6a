package logbundle

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
)

func ecKeyPEM(t *testing.T, typ string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// plant writes data at the production path prod under root.
func plant(t *testing.T, root, prod, data string) {
	t.Helper()
	p := filepath.Join(root, prod)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// pemBody is the base64 body of a PEM block, without its armour lines.
func pemBody(p string) []string {
	var out []string
	for _, l := range strings.Split(p, "\n") {
		if l != "" && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

// secretTree is a scratch --root with secrets planted where an agent
// keeps them, and copies of them in the logs; it returns each secret.
func secretTree(t *testing.T) (string, map[string]string) {
	root := t.TempDir()
	machineKey := ecKeyPEM(t, "EC PRIVATE KEY")
	prv := ecKeyPEM(t, "PRIVATE KEY")
	logged := ecKeyPEM(t, "RSA PRIVATE KEY")
	s := map[string]string{
		"api token":              "arcp_Q2h1bmt5QXBpVG9rZW5WYWx1ZQ",
		"fleet token (no shape)": "zq9FleetTokenValue1234567",
		"onboarding secret":      "arcob_T25ib2FyZGluZ1NlY3JldFZhbA",
		"proxy password":         "Pr0xyPassw0rdSecret",
		"proxy credential file":  "basic-cred-user:FileCredPassw0rd",
		"challenge secret":       "ChallengeSecretValue0123456789abcdef",
		"protected settings":     "ExtProtectedPassw0rdValue",
		"sealed settings":        "c2VhbGVkUHJvdGVjdGVkU2V0dGluZ3NCbG9i",
		"bearer jwt":             "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJtMSJ9.c2lnbmF0dXJlc2lnbmF0dXJl",
		"outside file":           "OutsideTheTreeShadowLine",
		"arc proxy password":     "ArcProxyUpstreamPw9",
	}
	for i, l := range pemBody(machineKey) {
		s["machine key line "+string(rune('a'+i))] = l
	}
	for i, l := range pemBody(prv) {
		s["settings .prv line "+string(rune('a'+i))] = l
	}
	for i, l := range pemBody(logged) {
		s["logged PEM line "+string(rune('a'+i))] = l
	}

	plant(t, root, layout.MachineKey, machineKey)
	plant(t, root, layout.ExtensionsDir+"/0123ABCD.prv", prv)
	plant(t, root, layout.ExtensionsDir+"/0123ABCD.crt", "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n")
	plant(t, root, layout.TokensDir+"/3f2a.key", s["challenge secret"])
	// The arc proxy's upstream credentials, and a log that printed the
	// password bare (no URL or header shape a pattern would find).
	plant(t, root, layout.ProxyCredentials, "upstream-user:"+s["arc proxy password"]+"\n")
	plant(t, root, layout.LogDir+"/arcproxy.log", `time=2026-12-03T10:00:08Z level=DEBUG msg="upstream auth" pw=`+s["arc proxy password"]+"\n")
	plant(t, root, "/root/.config/arcagent/fleet.json", `{"server":"https://cp:8443","token":"`+s["fleet token (no shape)"]+`"}`)
	plant(t, root, layout.LocalConfig, `{"proxy.url": "http://ops:`+s["proxy password"]+`@proxy.corp:3128", "extensions.enabled": true}`)
	plant(t, root, layout.AgentConfig, `{"machineId":"m-1","server":"https://cp:8443","resourceId":"/subscriptions/s/resourceGroups/web/providers/Microsoft.HybridCompute/machines/web01","onboardingToken":"`+s["onboarding secret"]+`"}`)

	// The logs repeat the secrets in the ways logs do.
	plant(t, root, layout.LogDir+"/himds.log", strings.Join([]string{
		`time=2026-12-03T10:00:00Z level=INFO msg="registered" server=https://cp:8443`,
		`time=2026-12-03T10:00:01Z level=DEBUG msg="fleet call" authorization="Bearer ` + s["api token"] + `"`,
		`time=2026-12-03T10:00:02Z level=DEBUG msg="used the login" value=` + s["fleet token (no shape)"],
		`time=2026-12-03T10:00:03Z level=WARN msg="proxy failed" proxy=http://ops:` + s["proxy password"] + `@proxy.corp:3128`,
		`time=2026-12-03T10:00:04Z level=DEBUG msg="challenge" file=/var/opt/azcmagent/tokens/3f2a.key content=` + s["challenge secret"],
		`time=2026-12-03T10:00:05Z level=DEBUG msg="token issued" access_token=` + s["bearer jwt"],
		`time=2026-12-03T10:00:06Z level=DEBUG msg="key dump"`,
		logged,
		`Authorization: Basic ` + "YmFzaWMtY3JlZC11c2VyOkZpbGVDcmVkUGFzc3cwcmQ=",
		`time=2026-12-03T10:00:07Z level=INFO msg="heartbeat ok"`,
	}, "\n")+"\n")
	// A connect config left on disk, and the proxy's credential file.
	plant(t, root, layout.LogDir+"/connect.yaml", "server: https://cp:8443\nonboarding-token: "+s["onboarding secret"]+"\nresource-group: web\n")
	plant(t, root, layout.LogDir+"/proxy-credentials", s["proxy credential file"])
	plant(t, root, layout.LogDir+"/stray.prv", prv)
	// The extension manager's state with the sealed desired state, and a
	// handler log that printed its protected settings.
	plant(t, root, layout.ExtMgrDir+"/state.json", `{"schema":"v1","desired":{"extensions":[{"name":"mon","protectedSettings":"`+s["sealed settings"]+`"}]},"extensions":[{"name":"mon","phase":"enabled","protectedSettings":{"password":"`+s["protected settings"]+`"}}]}`)
	plant(t, root, layout.ExtDownloadsDir+"/pkg.zip", "PK package bytes")
	plant(t, root, layout.ExtensionLogsDir+"/Contoso.Mon/handler.log", `enable: settings {"protectedSettings": {"password": "`+s["protected settings"]+`"}}`+"\n")
	// A long log whose kept tail starts in the middle of a PEM block.
	tail := strings.Repeat("filler line of a long log\n", 400) + logged + strings.Repeat("after the key\n", 20)
	plant(t, root, layout.LogDir+"/long.log", tail)
	// Hostile links: to a file outside the tree and to a directory.
	outside := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(outside, []byte(s["outside file"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"shadow": outside, "etc": filepath.Dir(outside), "passwd": "/etc/shadow"} {
		if err := os.Symlink(target, filepath.Join(root, layout.LogDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	plant(t, root, layout.UnitDir+"/himdsd.service", "[Service]\nExecStart=/opt/azcmagent/bin/arcagent daemon himds\n")
	return root, s
}

// unzip returns the bundle's files.
func unzip(t *testing.T, data []byte) map[string]string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		out[f.Name] = string(b)
	}
	return out
}

func TestBundleHoldsNoPlantedSecret(t *testing.T) {
	root, secrets := secretTree(t)
	for _, full := range []bool{false, true} {
		var buf bytes.Buffer
		m, err := Write(context.Background(), &buf, Options{Layout: layout.New(root), Full: full, MaxFile: 4096,
			Extra: []File{{Name: "show.json", Data: []byte(`{"proxyUrl":"http://ops:` + secrets["proxy password"] + `@proxy.corp:3128"}`)}},
			Now:   func() time.Time { return time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC) }})
		if err != nil {
			t.Fatal(err)
		}
		files := unzip(t, buf.Bytes())
		for name, content := range files {
			for what, s := range secrets {
				if strings.Contains(content, s) {
					t.Errorf("full=%v: %s holds the %s %q", full, name, what, s)
				}
			}
			if strings.Contains(content, "PRIVATE KEY") {
				t.Errorf("full=%v: %s holds a PEM armour line", full, name)
			}
		}
		// The redacted files are there, still useful.
		for _, want := range []struct{ name, text string }{
			{"var/opt/azcmagent/localconfig.json", "http://[REDACTED]@proxy.corp:3128"},
			{"var/opt/azcmagent/agentconfig.json", `"machineId": "m-1"`},
			{"var/opt/azcmagent/log/himds.log", `msg="heartbeat ok"`},
			{"var/opt/azcmagent/log/himds.log", "[REDACTED PEM BLOCK]"},
			{"var/opt/azcmagent/log/connect.yaml", "resource-group: web"},
			{"var/opt/azcmagent/log/long.log", "after the key"},
			{"var/lib/GuestConfig/ext_mgr/state.json", `"phase": "enabled"`},
			{"var/lib/GuestConfig/extension_logs/Contoso.Mon/handler.log", "enable: settings"},
			{"etc/systemd/system/himdsd.service", "daemon himds"},
			{"services.json", `"unitFile": "present"`},
			{"show.json", "proxy.corp"},
			{"MANIFEST.json", "a symbolic link: not followed"},
		} {
			if !strings.Contains(files[want.name], want.text) {
				t.Errorf("full=%v: %s does not hold %q:\n%s", full, want.name, want.text, files[want.name])
			}
		}
		for _, gone := range []string{"var/opt/azcmagent/log/shadow", "var/opt/azcmagent/log/passwd", "var/opt/azcmagent/log/stray.prv",
			"var/opt/azcmagent/log/proxy-credentials", "var/lib/GuestConfig/ext_mgr/downloads/pkg.zip", "var/opt/azcmagent/certs/machine.key"} {
			if _, ok := files[gone]; ok {
				t.Errorf("full=%v: the bundle holds %s", full, gone)
			}
		}
		long := false
		for _, e := range m.Files {
			if e.Name == "var/opt/azcmagent/log/long.log" {
				long = e.Truncated
			}
		}
		if long == full {
			t.Errorf("full=%v: long.log truncated %v", full, long)
		}
		var mf Manifest
		if err := json.Unmarshal([]byte(files["MANIFEST.json"]), &mf); err != nil || len(mf.Files) != len(files)-1 {
			t.Errorf("manifest %v: %d files for %d in the zip", err, len(mf.Files), len(files))
		}
	}
}

func TestWriteFileMode(t *testing.T) {
	root, _ := secretTree(t)
	out := filepath.Join(t.TempDir(), DefaultName("web01/x", time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)))
	if filepath.Base(out) != "arcagent-logs-web01_x-20261203T120000Z.zip" {
		t.Errorf("name %s", filepath.Base(out))
	}
	if _, err := WriteFile(context.Background(), out, Options{Layout: layout.New(root)}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bundle %v mode %v", err, fi.Mode())
	}
}

func TestRedact(t *testing.T) {
	var r Redactor
	r.AddSecret([]byte("short"))
	r.AddSecret([]byte("KnownSecretValue42"))
	for _, tc := range []struct{ in, want string }{
		{"nothing secret here", "nothing secret here"},
		{"x KnownSecretValue42 y", "x [REDACTED] y"},
		{"short stays", "short stays"},
		{"Authorization: Bearer abcdefghij", "Authorization: Bearer [REDACTED]"},
		{"auth=Basic dXNlcjpwYXNz", "auth=Basic [REDACTED]"},
		{"https://u:p@host:1/x", "https://[REDACTED]@host:1/x"},
		{`{"apiToken": "v"}`, `{"apiToken": "[REDACTED]"}`},
		{"password: hunter2hunter2", `password: "[REDACTED]"`},
		{"tok arcob_abc123 end", "tok arcob_[REDACTED] end"},
		// A known secret's marker is not mistaken for an array opening.
		{`authorization="Bearer arcp_abcdefghij" secret=KnownSecretValue42`, `authorization="[REDACTED]" secret=[REDACTED]`},
		{"x secret=[REDACTED] password={\"a\": \"1\", \"b\": \"leak\"} y", "x secret=[REDACTED] password=\"[REDACTED]\" y"},
		{"protectedSettings: {\n  \"user\": \"u\",\n  \"key\": \"multi-line\"\n}\nnext", "protectedSettings: \"[REDACTED]\"\nnext"},
		{"a\n-----BEGIN X-----\nQUJD\n-----END X-----\nb", "a\n[REDACTED PEM BLOCK]\nb"},
		{"QUJD\n-----END X-----\nb\n-----BEGIN Y-----\nRA==", "[REDACTED PEM BLOCK]\nb\n[REDACTED PEM BLOCK]"},
	} {
		if got, _ := r.Redact([]byte(tc.in)); string(got) != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Without Full the logs together stay within MaxTotal; with Full all are
// kept.
func TestBundleBounded(t *testing.T) {
	root := t.TempDir()
	for i := range 5 {
		plant(t, root, layout.LogDir+"/svc"+string(rune('a'+i))+".log", strings.Repeat("a log line\n", 400))
	}
	for _, full := range []bool{false, true} {
		var buf bytes.Buffer
		m, err := Write(context.Background(), &buf, Options{Layout: layout.New(root), Full: full, MaxFile: 4096, MaxTotal: 10000})
		if err != nil {
			t.Fatal(err)
		}
		logs, budget := 0, 0
		for _, f := range m.Files {
			if strings.HasPrefix(f.Name, "var/opt/azcmagent/log/") {
				logs++
			}
		}
		for _, s := range m.Skipped {
			if strings.Contains(s.Reason, "use --full") {
				budget++
			}
		}
		if full && (logs != 5 || budget != 0) || !full && (logs != 2 || budget != 3) {
			t.Errorf("full=%v: %d logs kept, %d over the budget: %+v", full, logs, budget, m.Skipped)
		}
	}
}
