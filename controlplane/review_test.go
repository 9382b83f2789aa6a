package controlplane_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/store/storetest"
)

// TestDashboardHeadersOnEveryResponse: every response under /ui, also
// those the router makes itself (a wrong method, a path it cleans and
// redirects, an unknown page), carries the dashboard's CSP, nosniff,
// no-referrer and no-store headers.
func TestDashboardHeadersOnEveryResponse(t *testing.T) {
	f := newFleet(t)
	e := f.e
	c := e.uiClient(t)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/ui"},
		{http.MethodGet, "/ui/login"},
		{http.MethodPost, "/ui/"},                  // no POST route: 405
		{http.MethodDelete, "/ui/login"},           // 405
		{http.MethodPut, "/ui/machines/x"},         // 405
		{http.MethodGet, "/ui//machines"},          // cleaned: 301
		{http.MethodGet, "/ui/rules/../login"},     // cleaned: 301
		{http.MethodGet, "/ui/static/missing.css"}, // unknown page
		{http.MethodGet, "/ui/static/style.css"},
		{http.MethodPost, "/ui/logout"}, // no origin: 403
	} {
		req, _ := http.NewRequest(tc.method, e.url+tc.path, nil)
		req.URL.Opaque = tc.path // keep the path as written (// and ..)
		resp, _ := c.do(req)
		checkUIHeaders(t, tc.method+" "+tc.path+" ("+resp.Status+")", resp.Header)
		if loc := resp.Header.Get("Location"); loc != "" && !strings.HasPrefix(loc, "/ui") {
			t.Errorf("%s %s redirects out of the dashboard to %q", tc.method, tc.path, loc)
		}
	}
	// Logged in, an unknown page is the dashboard's own 404 page.
	c.login(f.ownerTok)
	resp, body := c.get("/ui/nowhere?next=" + url.QueryEscape("https://evil.example/"))
	if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "evil.example") {
		t.Errorf("unknown page: %d %q", resp.StatusCode, body)
	}
	checkUIHeaders(t, "unknown page", resp.Header)
}

// TestAuditUploadInvalidUTF8: a report whose bytes are not UTF-8 (the JSON
// decoder lets that pass inside strings) is refused with 400 on either
// store, rather than kept on SQLite, where it would later stop `arcserver
// migrate`, and a server error on PostgreSQL, whose TEXT refuses it.
func TestAuditUploadInvalidUTF8(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "postgres" {
				storetest.Postgres(t)
				envDatabase = func(t testing.TB) string { return storetest.Postgres(t) }
				defer func() { envDatabase = nil }()
			}
			e := newEnv(t)
			sub := e.scope("prod", "web")
			m := e.mustRegister(sub, "web", "web1")
			rep := auditReport(t, "web1", e.clock.Now(), [2]string{"A", "fail"})
			for _, bad := range [][]byte{
				bytes.Replace(rep, []byte(`"host": "web1"`), []byte("\"host\": \"web1\xff\""), 1),
				bytes.Replace(rep, []byte(`{`), []byte("{\"x\": \"\xc3\x28\",\n"), 1),
			} {
				if bytes.Equal(bad, rep) {
					t.Fatal("the report was not changed")
				}
				_, err := m.m.UploadAudit(context.Background(), bad)
				wantCode(t, err, http.StatusBadRequest, apiv1.CodeBadRequest, "UTF-8")
			}
		})
	}
}
