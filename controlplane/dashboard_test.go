package controlplane_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/controlplane/store/storetest"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/releases"
	"github.com/arcagent/arcagent/reports"
)

// fleet is the dashboard's seeded fleet: three machines in two resource
// groups of one subscription, with desired extensions, guest
// configuration, status reports and findings.
type fleet struct {
	e                    *env
	sub                  string
	web01, web02, db01   testMachine
	readerWeb, ownerTok  string
	hostileTag, hostileF string
}

const sshFix = "Set PermitRootLogin no in /etc/ssh/sshd_config and reload sshd"

func newFleet(t *testing.T, tunes ...func(*controlplane.Config)) *fleet {
	t.Helper()
	e := newEnvWith(t, func(c *controlplane.Config) {
		for _, tune := range tunes {
			tune(c)
		}
	})
	ctx := context.Background()
	f := &fleet{e: e, ownerTok: e.ownerT, hostileTag: `"><script>alert('tag')</script>`, hostileF: `<img src=x onerror=alert(1)>`}
	f.sub = e.scope("prod", "web", "db")
	e.publish(statusReporter)
	e.publishGC(sshBaseline)
	f.web01 = e.mustRegister(f.sub, "web", "web01")
	f.web02 = e.mustRegister(f.sub, "web", "web02")
	f.db01 = e.mustRegister(f.sub, "db", "db01")
	if _, err := e.owner.SetExtension(ctx, f.web01.reg.MachineID, "monitor", apiv1.SetExtensionRequest{Publisher: statusReporter.Publisher, Type: statusReporter.Type, Version: statusReporter.Version}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.owner.AssignGuestConfig(ctx, f.web01.reg.MachineID, "ssh", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.0", Mode: "Audit"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.owner.UpdateMachineTags(ctx, f.web01.reg.MachineID, apiv1.Tags{"owner": f.hostileTag}); err != nil {
		t.Fatal(err)
	}
	st := apiv1.MachineStatus{
		Extensions:         []apiv1.ExtensionStatus{{Name: "monitor", Publisher: statusReporter.Publisher, Type: statusReporter.Type, Version: statusReporter.Version, State: "Succeeded", Message: "enabled"}},
		GuestConfiguration: []apiv1.GuestConfigurationStatus{{Name: "ssh", Policy: "Contoso.Baseline.SSH", Version: "1.0", Mode: "Audit", Compliance: "NonCompliant", Resources: []apiv1.GuestConfigurationResourceStatus{{ID: "sshd_config", Type: "file", Compliance: "NonCompliant", Reason: "mode 0644, want 0600"}}}},
	}
	for _, tm := range []testMachine{f.web01, f.web02, f.db01} {
		if _, err := tm.m.Heartbeat(ctx, apiv1.HeartbeatRequest{AgentVersion: "1.2.0"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.web01.m.PutStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	// Each machine uploads a JSON audit report through the machine API,
	// as `arcagent audit --upload` does.
	at := e.clock.Now().Add(-time.Hour)
	sshFail := dashResult("ARC-SSH-001", reports.StatusFail, "PermitRootLogin is yes")
	for _, up := range []struct {
		tm      testMachine
		results []reports.Result
	}{
		{f.web01, []reports.Result{sshFail, dashResult("ARC-FW-002", reports.StatusPass, "nftables has a ruleset")}},
		{f.web02, []reports.Result{dashResult("ARC-SSH-001", reports.StatusPass, "PermitRootLogin is no"), dashResult("ARC-FW-002", reports.StatusFail, "nftables has no ruleset "+f.hostileF)}},
		{f.db01, []reports.Result{sshFail, dashResult("ARC-FW-002", reports.StatusWaived, "firewalled upstream")}},
	} {
		if _, err := up.tm.m.UploadAudit(ctx, dashReport(t, up.tm.reg.MachineID, at, up.results...)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.owner.AssignRole(ctx, apiv1.CreateRoleAssignmentRequest{Principal: "alice", Role: rbac.Reader, Scope: rbac.ResourceGroupScope(f.sub, "web")}); err != nil {
		t.Fatal(err)
	}
	tok, err := e.owner.CreateAPIToken(ctx, apiv1.CreateAPITokenRequest{Principal: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	f.readerWeb = tok.Token
	return f
}

// dashRules are the rules of the dashboard's audit reports.
var dashRules = map[string]reports.Rule{
	"ARC-SSH-001": {ID: "ARC-SSH-001", Title: "SSH permits root login", Severity: reports.SeverityHigh, Profiles: []string{"host"}, Remediation: sshFix},
	"ARC-FW-002":  {ID: "ARC-FW-002", Title: "No host firewall", Severity: reports.SeverityMedium, Profiles: []string{"host"}, Remediation: "Install and enable nftables with a default-deny input policy"},
}

func dashResult(rule string, st reports.Status, msg string) reports.Result {
	return reports.Result{RuleID: rule, Severity: dashRules[rule].Severity, Status: st, Message: msg, Fingerprint: reports.Fingerprint(rule, "dash", msg)}
}

// dashReport is the JSON report of `arcagent audit --profile host -o json`
// with results, built and written by the reports package.
func dashReport(t testing.TB, host string, at time.Time, results ...reports.Result) []byte {
	t.Helper()
	r := &reports.Report{
		SchemaVersion: reports.SchemaVersion, Tool: reports.Tool{Name: "arcagent", Version: "1.2.0"}, RunID: "run-" + host,
		StartedAt: at, Target: reports.Target{Kind: reports.TargetHost, Host: host}, Profiles: []string{"host"}, FailOn: reports.SeverityHigh,
	}
	for _, res := range results {
		r.Rules = append(r.Rules, dashRules[res.RuleID])
		r.Results = append(r.Results, res)
	}
	r.Summarize()
	r.SortResults()
	var b bytes.Buffer
	if err := (reports.JSONWriter{}).Write(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// uiClient is a browser-like client: a cookie jar, no redirects followed.
type uiClient struct {
	t   *testing.T
	e   *env
	hc  *http.Client
	jar *cookiejar.Jar
}

func (e *env) uiClient(t *testing.T) *uiClient {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: e.hc.Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &uiClient{t: t, e: e, hc: hc, jar: jar}
}

func (c *uiClient) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (c *uiClient) get(path string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.e.url+path, nil)
	return c.do(req)
}

func (c *uiClient) post(path, origin string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return c.do(req)
}

func (c *uiClient) login(tok string) {
	c.t.Helper()
	resp, body := c.post("/ui/login", c.e.url, url.Values{"token": {tok}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		c.t.Fatalf("login: %d %s %q", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

func checkUIHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}

func TestDashboardLogin(t *testing.T) {
	f := newFleet(t)
	e := f.e
	c := e.uiClient(t)

	for _, p := range []string{"/ui/", "/ui/machines/" + f.web01.reg.MachineID, "/ui/rules/ARC-SSH-001", "/ui/nowhere"} {
		resp, _ := c.get(p)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
			t.Errorf("GET %s without a cookie: %d to %q, want 303 to /ui/login", p, resp.StatusCode, resp.Header.Get("Location"))
		}
		checkUIHeaders(t, p, resp.Header)
	}
	resp, body := c.get("/ui/login")
	if resp.StatusCode != 200 || !strings.Contains(body, `name="token"`) {
		t.Fatalf("login form: %d %q", resp.StatusCode, body)
	}
	checkUIHeaders(t, "login form", resp.Header)
	resp, body = c.get("/ui/static/style.css")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, "svg.chart") {
		t.Fatalf("stylesheet: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	t.Run("login CSRF: another origin, or none, is refused", func(t *testing.T) {
		for _, origin := range []string{"", "https://evil.example", "http://" + strings.TrimPrefix(e.url, "https://")} {
			resp, body := c.post("/ui/login", origin, url.Values{"token": {f.ownerTok}})
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, string(controlplane.CodeUICrossOrigin)) || len(resp.Cookies()) != 0 {
				t.Errorf("origin %q: %d %v", origin, resp.StatusCode, resp.Cookies())
			}
		}
		for _, tc := range []struct {
			headers map[string]string
			want    int
		}{
			{map[string]string{"Referer": e.url + "/ui/login"}, http.StatusUnauthorized},
			{map[string]string{"Origin": "null"}, http.StatusForbidden},
			{map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"}, http.StatusUnauthorized},
			{map[string]string{"Origin": e.url, "Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
			{map[string]string{"Origin": e.url, "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
			{map[string]string{"Referer": "https://evil.example/ui/login"}, http.StatusForbidden},
		} {
			req, _ := http.NewRequest(http.MethodPost, e.url+"/ui/login", strings.NewReader("token=x"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			if resp, _ := c.do(req); resp.StatusCode != tc.want {
				t.Errorf("%v: %d, want %d (401: the origin passed and the token was checked)", tc.headers, resp.StatusCode, tc.want)
			}
		}
	})

	t.Run("a bad token gets the form again with 401", func(t *testing.T) {
		for _, tok := range []string{"", "nonsense", "arcp_" + strings.Repeat("A", 43)} {
			resp, body := c.post("/ui/login", e.url, url.Values{"token": {tok}})
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, string(controlplane.CodeUILoginRefused)) || !strings.Contains(body, `name="token"`) || len(resp.Cookies()) != 0 {
				t.Errorf("token %q: %d %q", tok, resp.StatusCode, body)
			}
			checkUIHeaders(t, "refused login", resp.Header)
		}
	})

	t.Run("the session cookie", func(t *testing.T) {
		resp, _ := c.post("/ui/login", e.url, url.Values{"token": {f.ownerTok}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login %d", resp.StatusCode)
		}
		raw := resp.Header.Get("Set-Cookie")
		for _, want := range []string{"arcagent_ui=", "Path=/ui/", "HttpOnly", "Secure", "SameSite=Strict"} {
			if !strings.Contains(raw, want) {
				t.Errorf("Set-Cookie %q lacks %s", raw, want)
			}
		}
		if strings.Contains(e.logs.String(), f.ownerTok) {
			t.Error("the server log holds the token")
		}
		resp, body := c.get("/ui/")
		if resp.StatusCode != 200 {
			t.Fatalf("overview: %d %q", resp.StatusCode, body)
		}
		checkUIHeaders(t, "overview", resp.Header)
		// The API does not take the cookie: it stays bearer-only.
		req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/machines", nil)
		for _, ck := range c.jar.Cookies(&url.URL{Scheme: "https", Host: strings.TrimPrefix(e.url, "https://"), Path: "/ui/"}) {
			req.AddCookie(ck)
		}
		if resp, _ := c.do(req); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the API with the dashboard cookie: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("logout clears the cookie", func(t *testing.T) {
		if resp, _ := c.post("/ui/logout", "https://evil.example", nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin logout: %d", resp.StatusCode)
		}
		resp, _ := c.post("/ui/logout", e.url, url.Values{})
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
			t.Fatalf("logout: %d %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
		}
		if resp, _ := c.get("/ui/"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("after logout: %d, want a redirect to login", resp.StatusCode)
		}
	})

	t.Run("a revoked token ends the session at once", func(t *testing.T) {
		ctx := context.Background()
		tok, err := e.owner.CreateAPIToken(ctx, apiv1.CreateAPITokenRequest{Principal: "bob"})
		if err != nil {
			t.Fatal(err)
		}
		c2 := e.uiClient(t)
		c2.login(tok.Token)
		// bob holds no role: the overview says so (403), as the API would.
		if resp, body := c2.get("/ui/"); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, rbac.MachinesRead) {
			t.Fatalf("bob without a role: %d %q", resp.StatusCode, body)
		}
		if err := e.owner.RevokeAPIToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if resp, _ := c2.get("/ui/"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
			t.Errorf("after revocation: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

func TestDashboardPages(t *testing.T) {
	f := newFleet(t)
	c := f.e.uiClient(t)
	c.login(f.ownerTok)
	_, body := c.get("/ui/")
	for _, want := range []string{"web01", "web02", "db01", `id="count-total">3<`, `id="count-connected">3<`, "ARC-SSH-001", `href="/ui/rules/ARC-SSH-001"`, "no release catalog is configured", "<svg", "1.2.0"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	_, body = c.get("/ui/?status=Disconnected")
	if strings.Contains(body, "web01</a>") || !strings.Contains(body, "No machine to show") {
		t.Errorf("status filter Disconnected shows connected machines")
	}

	_, body = c.get("/ui/machines/" + f.web01.reg.MachineID)
	for _, want := range []string{"web01", "Connected", "1.2.0", "Ubuntu", "monitor", "Succeeded", "NonCompliant", "1 of 1", "ARC-SSH-001", sshFix} {
		if !strings.Contains(body, want) {
			t.Errorf("machine page lacks %q", want)
		}
	}
	_, body = c.get("/ui/rules/ARC-SSH-001")
	for _, want := range []string{"SSH permits root login", sshFix, "web01", "db01"} {
		if !strings.Contains(body, want) {
			t.Errorf("rule page lacks %q", want)
		}
	}
	if strings.Contains(body, "web02</a>") {
		t.Error("rule page lists web02, which does not fail the rule")
	}
	_, body = c.get("/ui/machines/" + f.web01.reg.MachineID)
	_, installed, _ := strings.Cut(body, `id="installed-extensions"`)
	installed, _, _ = strings.Cut(installed, "</table>")
	for _, want := range []string{"monitor", statusReporter.Publisher + "." + statusReporter.Type, statusReporter.Version, "Succeeded"} {
		if !strings.Contains(installed, want) {
			t.Errorf("installed extensions lack %q: %s", want, installed)
		}
	}

	// The live inventory: a heartbeat carrying a new inventory (an OS
	// upgrade, a new agent) shows on the machine page.
	inv := apiv1.Inventory{Hostname: "web02", OSType: "linux", OSName: "Debian GNU/Linux", OSVersion: "13", Kernel: "6.12.9-test", Arch: "arm64", AgentVersion: "1.3.0"}
	if _, err := f.web02.m.Heartbeat(context.Background(), apiv1.HeartbeatRequest{AgentVersion: "1.3.0", Inventory: &inv}); err != nil {
		t.Fatal(err)
	}
	for range 50 { // heartbeats are written in batches
		if _, body = c.get("/ui/machines/" + f.web02.reg.MachineID); strings.Contains(body, `id="agent-version">1.3.0<`) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{`id="agent-version">1.3.0<`, "Debian GNU/Linux 13 arm64", `id="kernel">6.12.9-test<`, "has not reported a status yet"} {
		if !strings.Contains(body, want) {
			t.Errorf("web02's page after a new inventory lacks %q", want)
		}
	}
	for _, p := range []string{"/ui/machines/not-a-uuid", "/ui/machines/00000000-0000-4000-8000-000000000000", "/ui/nowhere"} {
		if resp, _ := c.get(p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestDashboardEscapesHostileText(t *testing.T) {
	f := newFleet(t)
	c := f.e.uiClient(t)
	c.login(f.ownerTok)
	for _, p := range []string{"/ui/machines/" + f.web01.reg.MachineID, "/ui/machines/" + f.web02.reg.MachineID, "/ui/rules/ARC-FW-002", "/ui/rules/%3Cscript%3E"} {
		_, body := c.get(p)
		for _, bad := range []string{"<script>", "<img src=x", f.hostileTag} {
			if strings.Contains(body, bad) {
				t.Errorf("%s holds %q unescaped", p, bad)
			}
		}
	}
	_, body := c.get("/ui/machines/" + f.web01.reg.MachineID)
	if !strings.Contains(body, "&lt;script&gt;") {
		t.Error("the hostile tag is not shown escaped")
	}
}

func TestDashboardRBAC(t *testing.T) {
	f := newFleet(t)
	c := f.e.uiClient(t)
	c.login(f.readerWeb)
	_, body := c.get("/ui/")
	if !strings.Contains(body, "web01") || !strings.Contains(body, "web02") || strings.Contains(body, "db01") || !strings.Contains(body, `id="count-total">2<`) {
		t.Errorf("the web reader's overview is not scoped to web: %q", body)
	}
	// ARC-SSH-001 fails on web01 and db01: the reader's count is 1.
	if !strings.Contains(body, `<a href="/ui/rules/ARC-SSH-001">ARC-SSH-001</a></td><td><span class="sev high">high</span></td><td>SSH permits root login</td><td class="num">1</td>`) {
		t.Errorf("top rules not counted over the reader's machines: %q", body)
	}
	resp, body := c.get("/ui/machines/" + f.db01.reg.MachineID)
	if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "db01") || strings.Contains(body, "PermitRootLogin") {
		t.Errorf("a machine outside the scope: %d %q", resp.StatusCode, body)
	}
	missing, body2 := c.get("/ui/machines/00000000-0000-4000-8000-000000000000")
	if missing.StatusCode != resp.StatusCode || body2 != body {
		t.Error("a hidden machine and a missing one are told apart")
	}
	_, body = c.get("/ui/rules/ARC-SSH-001")
	if !strings.Contains(body, "web01") || strings.Contains(body, "db01") {
		t.Errorf("rule page not scoped: %q", body)
	}
	if resp, _ := c.get("/ui/machines/" + f.web01.reg.MachineID); resp.StatusCode != 200 {
		t.Errorf("a machine in scope: %d", resp.StatusCode)
	}

	// The store counts failing rules without RBAC: the overview's counts
	// must still be over the viewer's machines, each once, for every shape
	// of scope (a machine, overlapping scopes, two groups).
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		scopes    []string
		total     string
		ssh, fw   string // machines counted ("" = the rule is not listed)
		hidden    []string
		ruleShows []string
	}{
		{"one machine", []string{f.web01.reg.ResourceID}, "1", "1", "", []string{"web02", "db01"}, []string{"web01"}},
		{"subscription and a group inside it", []string{rbac.SubscriptionScope(f.sub), rbac.ResourceGroupScope(f.sub, "web")}, "3", "2", "1", nil, []string{"web01", "db01"}},
		{"two groups", []string{rbac.ResourceGroupScope(f.sub, "web"), rbac.ResourceGroupScope(f.sub, "db")}, "3", "2", "1", nil, []string{"web01", "db01"}},
		{"a group and a machine of another", []string{rbac.ResourceGroupScope(f.sub, "db"), f.web02.reg.ResourceID}, "2", "1", "1", []string{"web01"}, []string{"db01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			principal := "p-" + strings.ReplaceAll(tc.name, " ", "-")
			for _, sc := range tc.scopes {
				if _, err := f.e.owner.AssignRole(ctx, apiv1.CreateRoleAssignmentRequest{Principal: principal, Role: rbac.Reader, Scope: sc}); err != nil {
					t.Fatal(err)
				}
			}
			tok, err := f.e.owner.CreateAPIToken(ctx, apiv1.CreateAPITokenRequest{Principal: principal})
			if err != nil {
				t.Fatal(err)
			}
			c := f.e.uiClient(t)
			c.login(tok.Token)
			_, body := c.get("/ui/")
			if !strings.Contains(body, `id="count-total">`+tc.total+`<`) {
				t.Errorf("total is not %s", tc.total)
			}
			for rule, want := range map[string]string{"ARC-SSH-001": tc.ssh, "ARC-FW-002": tc.fw} {
				_, row, found := strings.Cut(body, `<a href="/ui/rules/`+rule+`">`)
				row, _, _ = strings.Cut(row, "</tr>")
				switch {
				case want == "" && found:
					t.Errorf("%s is listed: %s", rule, row)
				case want != "" && !strings.Contains(row, `<td class="num">`+want+`</td>`):
					t.Errorf("%s: want %s machines: %q", rule, want, row)
				}
			}
			for _, h := range tc.hidden {
				if strings.Contains(body, h) {
					t.Errorf("the overview shows %s", h)
				}
			}
			_, body = c.get("/ui/rules/ARC-SSH-001")
			for _, m := range []string{"web01", "db01"} {
				if slices.Contains(tc.ruleShows, m) != strings.Contains(body, m+"</a>") {
					t.Errorf("rule page: %s shown %v, want %v", m, strings.Contains(body, m+"</a>"), slices.Contains(tc.ruleShows, m))
				}
			}
		})
	}
}

func TestDashboardVersionChart(t *testing.T) {
	now := time.Now().UTC()
	src := &releases.StaticSource{Name: "test catalog", ByProduct: map[string][]releases.Release{releases.AgentProduct: {
		{Version: "1.2.0", Published: now.AddDate(0, -1, 0)},
		{Version: "1.1.0", Published: now.AddDate(0, -3, 0)},
		{Version: "1.0.0", Published: now.AddDate(-2, 0, 0)},
	}}}
	f := newFleet(t, func(c *controlplane.Config) { c.Releases = src })
	ctx := context.Background()
	for tm, v := range map[*testMachine]string{&f.web02: "1.1.0", &f.db01: "1.0.0"} {
		if _, err := tm.m.Heartbeat(ctx, apiv1.HeartbeatRequest{AgentVersion: v}); err != nil {
			t.Fatal(err)
		}
	}
	c := f.e.uiClient(t)
	c.login(f.ownerTok)
	// Heartbeats are written in batches: wait for them to land.
	var body string
	for range 50 {
		if _, body = c.get("/ui/"); strings.Contains(body, "1.0.0") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, chart, _ := strings.Cut(body, `id="version-chart"`)
	chart, _, _ = strings.Cut(chart, "</svg>")
	for _, want := range []string{">current<", ">behind<", ">unsupported<", `class="bar current"`, `class="bar unsupported"`, "against test catalog (latest 1.2.0)"} {
		if !strings.Contains(chart+body, want) {
			t.Errorf("chart lacks %q: %s", want, chart)
		}
	}
	if strings.Count(chart, `class="count">1<`) != 3 {
		t.Errorf("want one machine each current, behind, unsupported: %s", chart)
	}
}

func TestServeRefusesABadReleaseCatalog(t *testing.T) {
	dir := t.TempDir()
	if _, err := controlplane.Init(context.Background(), controlplane.InitOptions{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	err := controlplane.Serve(context.Background(), controlplane.ServeOptions{DataDir: dir, Listen: "127.0.0.1:0", ReleaseCatalog: filepath.Join(dir, "missing.sig.json"), ReleaseTrustDir: t.TempDir()})
	if !errcode.Is(err, controlplane.CodeReleaseCatalog) {
		t.Fatalf("serve with a missing catalog: %v, want %s", err, controlplane.CodeReleaseCatalog)
	}
}

// TestDashboardOnPostgres runs the dashboard tests again with the store
// on PostgreSQL (a fresh schema per test): the audits uploaded, counted
// and filtered by the PostgreSQL store.
func TestDashboardOnPostgres(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"Login", TestDashboardLogin},
		{"Pages", TestDashboardPages},
		{"EscapesHostileText", TestDashboardEscapesHostileText},
		{"RBAC", TestDashboardRBAC},
		{"VersionChart", TestDashboardVersionChart},
		{"StoreFailure", TestDashboardStoreFailure},
		{"InChromium", TestDashboardInChromium},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Postgres(t) // skip (or fail under CI) before changing anything
			envDatabase = func(t testing.TB) string { return storetest.Postgres(t) }
			defer func() { envDatabase = nil }()
			tc.f(t)
		})
	}
}

// TestDashboardStoreFailure: a store that fails answers every page with
// the error page (500) that names no detail of the failure.
func TestDashboardStoreFailure(t *testing.T) {
	f := newFleet(t)
	c := f.e.uiClient(t)
	c.login(f.ownerTok)
	if err := f.e.st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/ui/", "/ui/machines/" + f.web01.reg.MachineID, "/ui/rules/ARC-SSH-001"} {
		resp, body := c.get(p)
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "see the server log") || strings.Contains(strings.ToLower(body), "sql") {
			t.Errorf("GET %s with a failed store: %d %q", p, resp.StatusCode, body)
		}
		checkUIHeaders(t, p, resp.Header)
	}
}
