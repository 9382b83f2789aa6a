package releases

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestSetupPolicies(t *testing.T) {
	tests := []struct {
		name             string
		o                SetupOptions
		wantDefault      Policy
		wantByProduct    map[string]Policy
		wantNamed        []string
		wantCode, wantIn string
	}{
		{name: "none", wantByProduct: map[string]Policy{}},
		{name: "default window and pre-releases", o: SetupOptions{Windows: []string{"6mo"}, Prereleases: true},
			wantDefault: Policy{Window: Window{Months: 6}, IncludePrereleases: true}, wantByProduct: map[string]Policy{}},
		{name: "a later default reaches products without a window",
			o:             SetupOptions{Supported: []string{"arcagent=>=1.40.0"}, Windows: []string{"Contoso.X=90d", "1y"}},
			wantDefault:   Policy{Window: Window{Months: 12}},
			wantByProduct: map[string]Policy{"arcagent": {Window: Window{Months: 12}, Constraint: ">=1.40.0"}, "Contoso.X": {Window: Window{Days: 90}}},
			wantNamed:     []string{"Contoso.X", "arcagent"}},
		{name: "extension names fold", o: SetupOptions{Windows: []string{"Contoso/X=26w"}},
			wantByProduct: map[string]Policy{"Contoso.X": {Window: Window{Days: 182}}}, wantNamed: []string{"Contoso.X"}},
		{name: "bad window", o: SetupOptions{Windows: []string{"12m"}}, wantCode: string(CodeBadPolicy), wantIn: "write 12mo"},
		{name: "bad constraint", o: SetupOptions{Supported: []string{"arcagent=>>1"}}, wantCode: string(CodeBadPolicy), wantIn: "not a semver constraint"},
		{name: "no product", o: SetupOptions{Supported: []string{"=>=1.0"}}, wantCode: string(CodeBadPolicy), wantIn: "PRODUCT=CONSTRAINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol, named, err := tt.o.policies()
			if tt.wantCode != "" {
				wantCode(t, err, CodeBadPolicy, tt.wantIn)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pol.Default != tt.wantDefault || !reflect.DeepEqual(pol.ByProduct, tt.wantByProduct) {
				t.Errorf("policies %+v, want %+v %+v", pol, tt.wantDefault, tt.wantByProduct)
			}
			if len(named) != len(tt.wantNamed) {
				t.Errorf("named %q, want %q", named, tt.wantNamed)
			}
		})
	}
}

// The configuration file gives what the options leave unset; options win.
func TestSetupMerge(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "arcagent.yaml")
	if err := os.WriteFile(cfg, []byte(`releases:
  github:
    url: https://ghe.example.com/api/v3/
    repos: {arcagent: platform/arcagent}
  support_window: 6mo
  products:
    arcagent: {supported: ">=1.28.0"}
  offline: true
  cache: /var/cache/rel
  wait_rate_limit: 15m
`), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := SetupOptions{Config: cfg, Windows: []string{"1y"}}.merged()
	if err != nil {
		t.Fatal(err)
	}
	want := SetupOptions{Config: cfg, GitHubRepos: []string{"arcagent=platform/arcagent"}, GitHubURL: "https://ghe.example.com/api/v3/",
		Windows: []string{"6mo", "1y"}, Supported: []string{"arcagent=>=1.28.0"}, Offline: true, CacheDir: "/var/cache/rel", WaitRateLimit: 15 * time.Minute}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("merged\n %+v\nwant\n %+v", m, want)
	}
	// A source in the options replaces the file's.
	m, err = SetupOptions{Config: cfg, GitHubRepos: []string{"o/r"}, GitHubURL: "https://other/api/v3/"}.merged()
	if err != nil || !reflect.DeepEqual(m.GitHubRepos, []string{"o/r"}) || m.GitHubURL != "https://other/api/v3/" {
		t.Errorf("options' source: %+v %v", m, err)
	}
	// A file naming no source, with none in the options, is refused.
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	os.WriteFile(empty, []byte("releases:\n  support_window: 6mo\n"), 0o600)
	_, err = NewChecker(context.Background(), SetupOptions{Config: empty})
	wantCode(t, err, CodeBadSource, "names no source")
	_, err = NewChecker(context.Background(), SetupOptions{})
	wantCode(t, err, CodeBadSource, "no release source")
	_, err = NewChecker(context.Background(), SetupOptions{GitHubRepos: []string{"o/r"}, Catalog: "c.json"})
	wantCode(t, err, CodeBadSource, "not both")
	_, err = NewChecker(context.Background(), SetupOptions{GitHubRepos: []string{"o/r", "arcagent=o/other"}, CacheDir: t.TempDir()})
	wantCode(t, err, CodeBadSource, "two repositories")
}
