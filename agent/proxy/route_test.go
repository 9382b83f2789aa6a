package proxy

import (
	"net/url"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/errcode"
)

// settingsOf builds settings from a localconfig.json text.
func settingsOf(t testing.TB, js string) *config.Settings {
	t.Helper()
	s, _, err := config.ParseFile("localconfig.json", []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoute(t *testing.T) {
	const server = "https://cp.example.test:8443"
	for _, tc := range []struct {
		name, local, httpsProxy, noProxy, arcAddr string
		dest                                      string
		via                                       Via
		proxy                                     string
	}{
		{name: "nothing configured", local: `{}`, dest: server, via: ViaDirect},
		{name: "HTTPS_PROXY when the arc proxy is off", local: `{}`, httpsProxy: "http://envproxy.test:3128", dest: server, via: ViaProxy, proxy: "http://envproxy.test:3128"},
		{name: "NO_PROXY honoured", local: `{}`, httpsProxy: "http://envproxy.test:3128", noProxy: "cp.example.test", dest: server, via: ViaDirect},
		{name: "proxy.url wins over HTTPS_PROXY: through the arc proxy", local: `{"proxy.url": "http://corp.test:3128"}`, httpsProxy: "http://envproxy.test:3128", dest: server, via: ViaArcProxy, proxy: "http://" + DefaultListen},
		{name: "gateway turns the arc proxy on", local: `{"connection.type": "gateway"}`, dest: server, via: ViaArcProxy, proxy: "http://" + DefaultListen},
		{name: "arc proxy address from the environment", local: `{"connection.type": "gateway"}`, arcAddr: "127.0.0.1:41000", dest: server, via: ViaArcProxy, proxy: "http://127.0.0.1:41000"},
		{name: "direct ignores proxy.url and HTTPS_PROXY", local: `{"connection.type": "direct", "proxy.url": "http://corp.test:3128"}`, httpsProxy: "http://envproxy.test:3128", dest: server, via: ViaDirect},
		{name: "bypass Arc: the control plane goes direct", local: `{"proxy.bypass": ["Arc"]}`, httpsProxy: "http://envproxy.test:3128", dest: server, via: ViaDirect},
		{name: "bypass AMA does not cover the control plane", local: `{"proxy.bypass": ["AMA"]}`, httpsProxy: "http://envproxy.test:3128", dest: server, via: ViaProxy, proxy: "http://envproxy.test:3128"},
		{name: "bypass AMA covers its Azure names", local: `{"proxy.bypass": ["AMA"]}`, httpsProxy: "http://envproxy.test:3128", dest: "https://x.ods.opinsights.azure.com", via: ViaDirect},
		{name: "bypass Arc: another port of the host is proxied", local: `{"proxy.bypass": ["Arc"]}`, httpsProxy: "http://envproxy.test:3128", dest: "https://cp.example.test:9443", via: ViaProxy, proxy: "http://envproxy.test:3128"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HTTPS_PROXY", tc.httpsProxy)
			t.Setenv("https_proxy", tc.httpsProxy)
			t.Setenv("NO_PROXY", tc.noProxy)
			t.Setenv("no_proxy", tc.noProxy)
			t.Setenv(EnvAddr, tc.arcAddr)
			r, err := NewRouter(settingsOf(t, tc.local), server)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := url.Parse(tc.dest)
			rt, err := r.Route(d)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if rt.Proxy != nil {
				got = rt.Proxy.String()
			}
			if rt.Via != tc.via || got != tc.proxy {
				t.Fatalf("route = %s %q, want %s %q (%s)", rt.Via, got, tc.via, tc.proxy, rt)
			}
		})
	}
}

func TestRouteRefusesCredentialsAndBadAddr(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://user:s3cret@envproxy.test:3128")
	t.Setenv("https_proxy", "http://user:s3cret@envproxy.test:3128")
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	r, err := NewRouter(config.NewSettings(), "https://cp.example.test")
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Route(&url.URL{Scheme: "https", Host: "cp.example.test"})
	if !errcode.Is(err, CodeCredentialsInURL) || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), CredentialsFile) {
		t.Fatalf("credentials in HTTPS_PROXY: %v", err)
	}
	if _, err := ParseUpstream("http://user:s3cret@corp.test:3128", "proxy.url"); !errcode.Is(err, CodeCredentialsInURL) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("credentials in proxy.url: %v", err)
	}
	t.Setenv(EnvAddr, "10.0.0.1:40343")
	if _, err := NewRouter(settingsOf(t, `{"connection.type": "gateway"}`), ""); !errcode.Is(err, CodeBadAddr) {
		t.Fatalf("non-loopback arc proxy address: %v", err)
	}
}
