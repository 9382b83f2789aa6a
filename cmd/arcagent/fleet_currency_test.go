//go:build !windows

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arcagent/arcagent/audit/fixture"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/signing"
)

// currencyCatalog writes a signed release catalog whose dates are relative
// to now, and a trust directory trusting its key; it returns both paths.
func currencyCatalog(t testing.TB, version int64) (catalog, trustDir string) {
	t.Helper()
	dir := t.TempDir()
	trustDir = filepath.Join(dir, "trust")
	kp, err := signing.GenerateKey(signing.AlgEd25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	var opts []signing.TrustOption
	if os.Geteuid() != 0 {
		opts = append(opts, signing.AllowNonRootOwner(nil))
	}
	if _, err := signing.AddTrustedKey(context.Background(), trustDir, signing.AddKeyOptions{Name: "rel", PublicKeyPEM: kp.PublicPEM, Catalogs: []string{"releases"}}, opts...); err != nil {
		t.Fatal(err)
	}
	return writeCurrencyCatalog(t, dir, kp.PrivatePEM, version), trustDir
}

func writeCurrencyCatalog(t testing.TB, dir string, keyPEM []byte, version int64) string {
	t.Helper()
	s, err := signing.ParseSigner(keyPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	ago := func(months int) *time.Time {
		d := time.Now().AddDate(0, -months, 0).UTC().Truncate(time.Hour)
		return &d
	}
	c := &signing.Catalog{Name: "releases", Version: version, Expires: time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Second), Entries: []signing.CatalogEntry{
		{Name: "arcagent", Version: "1.27.02100.100", Published: ago(20)},
		{Name: "arcagent", Version: "1.28.02260.736", Published: ago(8)},
		{Name: "arcagent", Version: "1.29.02300.1", Published: ago(2)},
		{Name: "Contoso.Monitoring.StatusReporter", Version: "1.0.0", Published: ago(22)},
		{Name: "Contoso.Monitoring.StatusReporter", Version: "1.1.0", Published: ago(10)},
		{Name: "Contoso.Monitoring.StatusReporter", Version: "1.2.0", Published: ago(1)},
		{Name: "Contoso.Automation.ScriptRunner", Version: "2.0.1", Published: ago(3)},
	}}
	env, err := signing.SignCatalog(c, s)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, fmt.Sprintf("releases-v%d.sig.json", version))
	if err := os.WriteFile(p, env, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFleetCurrencyCatalog(t *testing.T) {
	cat, trust := currencyCatalog(t, 3)
	src := []string{"--catalog", cat, "--trust-dir", trust}
	out := t.TempDir()
	sarif, csvOut := filepath.Join(out, "c.sarif"), filepath.Join(out, "c.csv")
	for _, inv := range []string{"../../examples/inventory/fleet.json", "../../examples/inventory/fleet.csv"} {
		stdout, stderr, code := runCLI(t, append([]string{"fleet", "currency", "--inventory", inv, "-o", "table", "-o", "sarif=" + sarif, "-o", "csv=" + csvOut, "--fail-on", "unsupported"}, src...)...)
		// db-01 runs an agent and an extension out of support, and an
		// extension version that cannot be parsed.
		if code != 1 || stderr != "" {
			t.Fatalf("%s: exit %d, stderr %q\n%s", inv, code, stderr, stdout)
		}
		for _, want := range []string{"db-01", "older than the support window of 1y", `version "2.0.x" cannot be parsed`, "4 machines, 9 results: 4 current, 2 behind, 2 unsupported, 1 unknown"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%s: table lacks %q:\n%s", inv, want, stdout)
			}
		}
		for _, p := range []string{sarif, csvOut} {
			if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
				t.Errorf("%s not written: %v", p, err)
			}
		}
	}
	// Without --fail-on the verdict does not fail the run; --fail-on behind does.
	if _, stderr, code := runCLI(t, append([]string{"fleet", "currency", "--inventory", "../../examples/inventory/fleet.json", "-o", "json"}, src...)...); code != 0 {
		t.Errorf("no --fail-on: exit %d %s", code, stderr)
	}
	// --fail-on never, as audit and report convert spell it, is the default.
	if _, stderr, code := runCLI(t, append([]string{"fleet", "currency", "--inventory", "../../examples/inventory/fleet.json", "-o", "json", "--fail-on", "never"}, src...)...); code != 0 {
		t.Errorf("--fail-on never: exit %d %s", code, stderr)
	}
	stdout, _, code := runCLI(t, append([]string{"-j", "fleet", "currency", "--inventory", "../../examples/inventory/fleet.json", "--fail-on", "behind", "--supported", "arcagent=>=1.27.0"}, src...)...)
	var doc struct {
		Results []struct{ Machine, Product, State, MinSupported string }
		Summary struct{ Unsupported, Behind int }
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || code != 1 {
		t.Fatalf("-j: exit %d, %v\n%s", code, err, stdout)
	}
	// The constraint makes the old agent supported (behind), not unsupported.
	for _, r := range doc.Results {
		if r.Machine == "db-01" && r.Product == "arcagent" && (r.State != "behind" || r.MinSupported != ">=1.27.0") {
			t.Errorf("db-01 agent under --supported: %+v", r)
		}
	}

	// A catalog signed by a key this trust store does not trust is refused.
	other, _ := currencyCatalog(t, 4)
	_, stderr, code := runCLI(t, "fleet", "currency", "--inventory", "../../examples/inventory/fleet.json", "--catalog", other, "--trust-dir", trust)
	if code != 1 || !strings.Contains(stderr, "catalog "+other) || !strings.Contains(stderr, "what to do:") {
		t.Errorf("catalog signed by an untrusted key: exit %d\n%s", code, stderr)
	}
}

func TestFleetCurrencyCatalogRollback(t *testing.T) {
	dir := t.TempDir()
	trust := filepath.Join(dir, "trust")
	kp, err := signing.GenerateKey(signing.AlgEd25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	var opts []signing.TrustOption
	if os.Geteuid() != 0 {
		opts = append(opts, signing.AllowNonRootOwner(nil))
	}
	if _, err := signing.AddTrustedKey(context.Background(), trust, signing.AddKeyOptions{Name: "rel", PublicKeyPEM: kp.PublicPEM, Catalogs: []string{"releases"}}, opts...); err != nil {
		t.Fatal(err)
	}
	v5 := writeCurrencyCatalog(t, dir, kp.PrivatePEM, 5)
	v4 := writeCurrencyCatalog(t, dir, kp.PrivatePEM, 4)
	args := func(cat string) []string {
		return []string{"fleet", "currency", "--inventory", "../../examples/inventory/fleet.csv", "--catalog", cat, "--trust-dir", trust}
	}
	if _, stderr, code := runCLI(t, args(v5)...); code != 0 {
		t.Fatalf("v5: exit %d %s", code, stderr)
	}
	_, stderr, code := runCLI(t, args(v4)...)
	if code != 1 || !strings.Contains(stderr, "ARC0113") || !strings.Contains(stderr, "rollback") || !strings.Contains(stderr, v4) {
		t.Errorf("rollback: exit %d\n%s", code, stderr)
	}
}

// fakeReleasesAPI is a minimal GitHub Enterprise releases endpoint with ETags.
func fakeReleasesAPI(t *testing.T) (*httptest.Server, *atomic.Int32, *atomic.Int32) {
	var requests, notModified atomic.Int32
	body := `[{"tag_name":"v1.29.02300.1","draft":false,"prerelease":false,"published_at":"` + time.Now().AddDate(0, -1, 0).UTC().Format(time.RFC3339) + `"},` +
		`{"tag_name":"v1.30.0.0-rc.1","draft":false,"prerelease":true,"published_at":"` + time.Now().UTC().Format(time.RFC3339) + `"},` +
		`{"tag_name":"v1.31.0","draft":true,"prerelease":false},` +
		`{"tag_name":"v1.28.02260.736","draft":false,"prerelease":false,"published_at":"` + time.Now().AddDate(0, -6, 0).UTC().Format(time.RFC3339) + `"},` +
		`{"tag_name":"v1.27.02100.100","draft":false,"prerelease":false,"published_at":"` + time.Now().AddDate(-2, 0, 0).UTC().Format(time.RFC3339) + `"}]`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.URL.Path != "/api/v3/repos/arc/agent/releases" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"message":"Not Found"}`)
			return
		}
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &requests, &notModified
}

func TestFleetCurrencyGitHub(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "")
	srv, requests, notModified := fakeReleasesAPI(t)
	cache := t.TempDir()
	base := []string{"fleet", "currency", "--inventory", "../../examples/inventory/fleet.json", "--github-url", srv.URL, "--release-cache", cache, "-o", "markdown"}
	stdout, stderr, code := runCLI(t, append(base, "--github-repo", "arc/agent")...)
	if code != 0 || !strings.Contains(stdout, "| arcagent | 1.29.02300.1 | 2 | 1 | 1 | 0 |") {
		t.Fatalf("exit %d %s\n%s", code, stderr, stdout)
	}
	// Extensions have no repository: they are untracked, and said so.
	if !strings.Contains(stdout, "5 installed extensions are not tracked") {
		t.Errorf("untracked extensions not reported:\n%s", stdout)
	}
	// The repeated run makes a conditional request: 304.
	if _, stderr, code := runCLI(t, append(base, "--github-repo", "arcagent=arc/agent")...); code != 0 || notModified.Load() != 1 || requests.Load() != 2 {
		t.Errorf("second run: exit %d %s, %d requests, %d not modified", code, stderr, requests.Load(), notModified.Load())
	}
	// Offline: the cache only.
	if _, stderr, code := runCLI(t, append(base, "--github-repo", "arc/agent", "--offline")...); code != 0 || requests.Load() != 2 {
		t.Errorf("offline: exit %d %s, %d requests", code, stderr, requests.Load())
	}
	// Pre-releases only when asked.
	stdout, _, _ = runCLI(t, append(base, "--github-repo", "arc/agent", "--include-prereleases")...)
	if !strings.Contains(stdout, "| arcagent | 1.30.0.0-rc.1 |") {
		t.Errorf("--include-prereleases:\n%s", stdout)
	}
	// Errors name the source and say what to do.
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--github-repo", "arc/missing"}, 2, "repository arc/missing: not found (404)"},
		{[]string{"--github-repo", "arc/agent", "--offline", "--release-cache", t.TempDir()}, 3, "not in the release cache"},
		{[]string{"--github-repo", "arc/agent", "--supported", "Contoso.X.Y=>=1"}, 2, `no repository is configured for product "Contoso.X.Y"`},
		{[]string{"--github-repo", "arc/agent", "--supported", "arcagent=latest"}, 2, "ARC0309"},
		{[]string{"--github-repo", "arc/agent", "--support-window", "12m"}, 2, "write 12mo for months"},
		{[]string{"--github-repo", "arc/agent", "--fail-on", "current"}, 2, "--fail-on"},
		{[]string{"--github-repo", "arc/agent", "-o", "xml"}, 2, "unknown report format"},
		{[]string{"--github-repo", "arc/agent", "-o", "json", "-o", "csv"}, 2, "both write to standard output"},
		{[]string{"--github-repo", "not-a-repo"}, 2, "is not OWNER/REPO"},
		{[]string{"--github-repo", "arc/agent", "--catalog", "x"}, 2, "not both"},
		{nil, 2, "no release source"},
	}
	for _, tt := range tests {
		_, stderr, code := runCLI(t, append(append([]string{}, base...), tt.args...)...)
		if code != tt.code || !strings.Contains(stderr, tt.want) || !strings.Contains(stderr, "what to do:") {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tt.args, code, tt.code, tt.want, stderr)
		}
		// Each error says its code once.
		first, _, _ := strings.Cut(strings.TrimPrefix(stderr, "error: "), ":")
		if n := strings.Count(stderr, first+":"); !strings.HasPrefix(first, "ARC") || n != 1 {
			t.Errorf("%v: the code %q is said %d times:\n%s", tt.args, first, n, stderr)
		}
	}
	_, stderr, code = runCLI(t, "fleet", "currency", "--inventory", filepath.Join(t.TempDir(), "none.json"), "--github-repo", "arc/agent", "--github-url", srv.URL)
	if code != 2 || !strings.Contains(stderr, "none.json") {
		t.Errorf("missing inventory: exit %d %s", code, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("[{\"name\": \"a\",\n\"agent\": }]"), 0o644)
	_, stderr, code = runCLI(t, "fleet", "currency", "--inventory", bad, "--github-repo", "arc/agent", "--github-url", srv.URL, "--release-cache", cache)
	if code != 2 || !strings.Contains(stderr, "inventory "+bad) || !strings.Contains(stderr, "line 2") {
		t.Errorf("bad inventory: exit %d %s", code, stderr)
	}
	// Unreachable.
	srv.Close()
	_, stderr, code = runCLI(t, append(base, "--github-repo", "arc/agent", "--release-cache", t.TempDir())...)
	if code != 3 || !strings.Contains(stderr, "cannot reach the GitHub API") {
		t.Errorf("unreachable: exit %d %s", code, stderr)
	}
}

func TestAuditReleaseSource(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	fixture.New(t, root).DefaultInstall() // agent 1.0.0
	cat, trust := currencyCatalog(t, 1)
	rep, code, stderr := auditJSON(t, "--root", root, "audit", "--rule", "ARC-BL-001", "--rule", "ARC-BL-002", "--catalog", cat, "--trust-dir", trust)
	if code != 1 || statusOf(rep, "ARC-BL-001") != "fail" || statusOf(rep, "ARC-BL-002") != "fail" {
		t.Errorf("with a catalog: exit %d %s; %s %s", code, stderr, statusOf(rep, "ARC-BL-001"), statusOf(rep, "ARC-BL-002"))
	}
	rep, code, _ = auditJSON(t, "--root", root, "audit", "--rule", "ARC-BL-001")
	if code != 0 || statusOf(rep, "ARC-BL-001") != "not_applicable" || rep.Results[0].Reason != "no release source is configured" {
		t.Errorf("without a source: exit %d %+v", code, rep.Results)
	}
	_, stderr, code = runCLI(t, "--root", root, "audit", "--catalog", filepath.Join(t.TempDir(), "missing.json"), "--trust-dir", trust)
	if code != 2 || !strings.Contains(stderr, "missing.json: no such file") {
		t.Errorf("missing catalog: exit %d %s", code, stderr)
	}
}

func TestReleaseConfigFile(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "")
	srv, requests, _ := fakeReleasesAPI(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "arcagent.yaml", fmt.Sprintf("releases:\n  github:\n    url: %s\n    repos: {arcagent: arc/agent}\n  products:\n    arcagent: {supported: '>=1.27.0'}\n  cache: %s\n", srv.URL, filepath.Join(dir, "cache")))
	stdout, stderr, code := runCLI(t, "-j", "fleet", "currency", "--inventory", "../../examples/inventory/fleet.json", "--release-config", cfg, "--fail-on", "unsupported")
	var doc struct {
		Summary struct{ Unsupported, Behind, Unknown int }
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || code != 0 || requests.Load() != 1 {
		t.Fatalf("exit %d, %d requests, %v %s\n%s", code, requests.Load(), err, stderr, stdout)
	}
	// The constraint from the file makes every agent supported.
	if doc.Summary.Unsupported != 0 || doc.Summary.Behind != 2 {
		t.Errorf("summary %+v", doc.Summary)
	}
	// A flag wins over the file for the same product.
	_, _, code = runCLI(t, "fleet", "currency", "--inventory", "../../examples/inventory/fleet.json", "--release-config", cfg, "--supported", "arcagent=>=1.29.0", "--fail-on", "unsupported")
	if code != 1 {
		t.Errorf("--supported over the file: exit %d", code)
	}
	// The same file configures audit.
	root := filepath.Join(t.TempDir(), "root")
	fixture.New(t, root).DefaultInstall()
	rep, _, stderr := auditJSON(t, "--root", root, "audit", "--rule", "ARC-BL-002", "--release-config", cfg)
	if statusOf(rep, "ARC-BL-002") != "fail" {
		t.Errorf("audit --release-config: %s %s", statusOf(rep, "ARC-BL-002"), stderr)
	}
	bad := writeFile(t, dir, "bad.yaml", "releases:\n  support_window: 3\n")
	_, stderr, code = runCLI(t, "fleet", "currency", "--inventory", "../../examples/inventory/fleet.json", "--release-config", bad)
	if code != 2 || !strings.Contains(stderr, "bad.yaml") {
		t.Errorf("bad config: exit %d %s", code, stderr)
	}
}

// Progress is shown only on a terminal: stderr redirected to a file stays
// empty on success.
func TestFleetCurrencyQuietWhenNotATerminal(t *testing.T) {
	cat, trust := currencyCatalog(t, 1)
	inv := filepath.Join(t.TempDir(), "big.csv")
	var b strings.Builder
	b.WriteString("machine,agent,extensions\n")
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&b, "m%d,1.29.02300.1,Contoso.Monitoring.StatusReporter=1.2.0\n", i)
	}
	if err := os.WriteFile(inv, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	errFile, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	var out strings.Builder
	code := run([]string{"fleet", "currency", "--inventory", inv, "--catalog", cat, "--trust-dir", trust}, strings.NewReader(""), &out, errFile)
	data, _ := os.ReadFile(errFile.Name())
	if code != 0 || len(data) != 0 || !strings.Contains(out.String(), "3000 machines, 6000 results: 6000 current") {
		t.Errorf("exit %d, stderr %q\n%s", code, data, out.String())
	}
}

// `fleet machines list -j | fleet currency --inventory -`: the inventory
// is the JSON the list command prints (apiv1.Machine through printJSON),
// extensions under reportedStatus.
func TestFleetCurrencyFromMachinesList(t *testing.T) {
	cat, trust := currencyCatalog(t, 3)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	ms := []apiv1.Machine{
		{ID: "0b6c", Name: "web-01", Status: "Connected", LastHeartbeat: now, AgentVersion: "1.29.02300.1", ResourceGroup: "web",
			Inventory: apiv1.Inventory{Hostname: "web-01.example.com", OSType: "linux", AgentVersion: "1.29.02300.1"}, Tags: apiv1.Tags{"env": "prod"},
			ReportedStatus: &apiv1.MachineStatus{Extensions: []apiv1.ExtensionStatus{{Name: "Contoso.Monitoring.StatusReporter", Version: "1.2.0", State: "Succeeded"}}}},
		{ID: "1d2e", Name: "db-01", Status: "Disconnected", AgentVersion: "1.27.02100.100", ResourceGroup: "db",
			ReportedStatus: &apiv1.MachineStatus{Extensions: []apiv1.ExtensionStatus{{Name: "Contoso.Monitoring.StatusReporter", Version: "1.0.0", State: "Failed"}}}},
		{ID: "3f40", Name: "new-01", Status: "Connected", AgentVersion: "1.28.02260.736"},
	}
	var list bytes.Buffer
	if err := (&app{stdout: &list}).printJSON(ms); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := fleetCLI(t, list.String(), "fleet", "currency", "--inventory", "-", "--catalog", cat, "--trust-dir", trust, "-o", "csv")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"web-01,2,arcagent,1.29.02300.1,1.29.02300.1,current",
		"web-01,2,Contoso.Monitoring.StatusReporter,1.2.0,1.2.0,current",
		"db-01,", "Contoso.Monitoring.StatusReporter,1.0.0,1.2.0,unsupported",
		"new-01,", "arcagent,1.28.02260.736,1.29.02300.1,behind",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("currency of the machines list lacks %q:\n%s", want, stdout)
		}
	}
	// An empty fleet lists null: no machine, no error.
	var empty bytes.Buffer
	(&app{stdout: &empty}).printJSON([]apiv1.Machine(nil))
	if stdout, stderr, code := fleetCLI(t, empty.String(), "fleet", "currency", "--inventory", "-", "--catalog", cat, "--trust-dir", trust); code != 0 || !strings.Contains(stdout, "0 machines") {
		t.Errorf("empty list: exit %d\n%s%s", code, stdout, stderr)
	}
}
