package netcheck

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
)

func TestPlanProxy(t *testing.T) {
	for _, tc := range []struct {
		name, localconfig, env, want string
		code                         errcode.Code
	}{
		{name: "none"},
		{name: "HTTPS_PROXY", env: "http://env-proxy:3128", want: "env-proxy:3128"},
		{name: "HTTPS_PROXY without scheme", env: "env-proxy:3128", want: "env-proxy:3128"},
		// proxy.url turns the arc proxy on: the agent's traffic, and so the
		// check, goes through it (it goes on to proxy.url with the credentials).
		{name: "proxy.url: through the arc proxy", localconfig: `{"proxy.url": "http://cfg-proxy:8080"}`, env: "http://env-proxy:3128", want: "127.0.0.1:40343"},
		{name: "gateway: through the arc proxy", localconfig: `{"connection.type": "gateway"}`, env: "http://env-proxy:3128", want: "127.0.0.1:40343"},
		{name: "direct ignores HTTPS_PROXY", localconfig: `{"connection.type": "direct"}`, env: "http://env-proxy:3128"},
		{name: "bypass Arc", localconfig: `{"proxy.bypass": ["Arc"]}`, env: "http://env-proxy:3128"},
		{name: "socks refused", env: "socks5://p:1", code: errcode.Usage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			l := layout.New(root)
			if tc.localconfig != "" {
				if err := os.MkdirAll(filepath.Dir(l.LocalConfig()), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(l.LocalConfig(), []byte(tc.localconfig), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			o, err := Plan{Layout: l, Server: "https://cp:8443", Getenv: func(k string) string {
				if k == "HTTPS_PROXY" {
					return tc.env
				}
				return ""
			}}.Options()
			if tc.code != "" {
				if !errcode.Is(err, tc.code) {
					t.Fatalf("err %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if o.Proxy != nil {
				got = o.Proxy.Host
			}
			if got != tc.want || len(o.Endpoints) != 3 {
				t.Errorf("proxy %q, want %q; endpoints %d", got, tc.want, len(o.Endpoints))
			}
		})
	}
}

// After connect the plan reads the server, the issuer and the stored CA.
func TestPlanConnected(t *testing.T) {
	root := t.TempDir()
	l := layout.New(root)
	for p, data := range map[string]string{
		l.AgentConfig(): `{"machineId":"m-1","server":"https://cp:8443","issuer":"https://issuer:9443","serverCAPath":"/var/opt/azcmagent/certs/server-ca.crt"}`,
		l.ServerCA():    "CA PEM",
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o, err := Plan{Layout: l, Getenv: func(string) string { return "" }}.Options()
	if err != nil {
		t.Fatal(err)
	}
	if string(o.CAPEM) != "CA PEM" || o.Endpoints[0].URL != "https://cp:8443/healthz" || o.Endpoints[1].URL != "https://issuer:9443/.well-known/openid-configuration" {
		t.Errorf("options %+v", o)
	}
	if _, err := (Plan{Layout: layout.New(t.TempDir())}).Options(); !errcode.Is(err, errcode.Usage) {
		t.Errorf("not connected: %v", err)
	}
}

// TestPlanExtensionEndpoints: the proxy.allowed endpoints are checked too
// (not the control plane twice, not a wildcard).
func TestPlanExtensionEndpoints(t *testing.T) {
	l := layout.New(t.TempDir())
	if err := os.MkdirAll(filepath.Dir(l.LocalConfig()), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.LocalConfig(), []byte(`{"proxy.allowed": ["ext.example:8443", "cp:8443", "monitor.example"]}`), 0o640); err != nil {
		t.Fatal(err)
	}
	o, err := Plan{Layout: l, Server: "https://cp:8443", Getenv: func(string) string { return "" }}.Options()
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, e := range o.Endpoints {
		urls = append(urls, e.URL)
	}
	want := []string{"https://ext.example:8443/", "https://monitor.example:443/"}
	for _, w := range want {
		if !slices.Contains(urls, w) {
			t.Errorf("endpoints %v lack %s", urls, w)
		}
	}
	if len(urls) != 3+len(want) {
		t.Errorf("endpoints %v, want the three of the control plane and %v", urls, want)
	}
}
