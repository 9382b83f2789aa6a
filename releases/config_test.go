package releases

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`
audit:
  profiles: [tier0]      # another section: not ours
releases:
  github:
    url: https://ghe.example.com/api/v3/
    repos:
      arcagent: platform/arcagent
      Contoso.Monitoring.StatusReporter: contoso/status-reporter
  support_window: 6mo
  products:
    arcagent: {supported: ">=1.28.02260.736"}
    Contoso.Monitoring.StatusReporter: {support_window: 90d}
  include_prereleases: true
  wait_rate_limit: 15m
`))
	if err != nil {
		t.Fatal(err)
	}
	repos, windows, supported := c.Flags()
	if !reflect.DeepEqual(repos, []string{"Contoso.Monitoring.StatusReporter=contoso/status-reporter", "arcagent=platform/arcagent"}) ||
		!reflect.DeepEqual(windows, []string{"6mo", "Contoso.Monitoring.StatusReporter=90d"}) ||
		!reflect.DeepEqual(supported, []string{"arcagent=>=1.28.02260.736"}) {
		t.Errorf("flags %q %q %q", repos, windows, supported)
	}
	if c.GitHub.URL != "https://ghe.example.com/api/v3/" || !c.IncludePrereleases || c.WaitRateLimit != 15*time.Minute {
		t.Errorf("config %+v", c)
	}
	for _, tt := range []struct{ in, want string }{
		{"releases: [", "not valid YAML"},
		{"audit: {}", "no `releases:` section"},
		{"releases:\n  githb: {}", "field githb not found"},
		{"releases:\n  github: {repos: {a: o/r}}\n  catalog: {location: x}", "both github and catalog"},
		{"releases:\n  support_window: 12m", "12mo for months"},
		{"releases:\n  products: {a: {supported: latest}}", "products.a.supported"},
	} {
		_, err := ParseConfig([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.in, err, tt.want)
		}
	}
	p := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(p, []byte("releases: {github: {repos: 3}}"), 0o644)
	_, err = LoadConfig(p)
	wantCode(t, err, CodeBadSource, "release configuration "+p)
	_, err = LoadConfig(filepath.Join(t.TempDir(), "none.yaml"))
	wantCode(t, err, CodeBadSource, "cannot read it")
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("releases:\n  github: {repos: {arcagent: o/r}}\n  support_window: 1y\n"))
	f.Add([]byte("releases:\n  catalog: {location: x, threshold: 2}\n  products: {a: {supported: '>=1'}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if !isCode(err, CodeBadSource) && !isCode(err, CodeBadPolicy) {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		c.Flags()
	})
}
