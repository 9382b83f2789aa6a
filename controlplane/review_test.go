package controlplane_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
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
