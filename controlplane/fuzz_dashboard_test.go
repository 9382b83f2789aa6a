package controlplane

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDashboardLogin posts arbitrary login forms, content types and
// origins to the dashboard: it never fails with a 5xx, and it sets a
// session cookie only for a same-origin post of the valid token.
func FuzzDashboardLogin(f *testing.F) {
	fs := newFuzzServer(f)
	const host = "arcserver.test:8443"
	for _, s := range []struct{ ct, origin, site, body string }{
		{"application/x-www-form-urlencoded", "https://" + host, "", "token=" + fs.owner},
		{"application/x-www-form-urlencoded", "null", "same-origin", "token=" + fs.owner},
		{"application/x-www-form-urlencoded", "https://evil.example", "", "token=" + fs.owner},
		{"application/x-www-form-urlencoded", "https://" + host, "", "token=arcp_x&token=y"},
		{"application/x-www-form-urlencoded", "https://" + host, "", "token=%zz"},
		{"application/x-www-form-urlencoded", "https://" + host, "", "token=" + strings.Repeat("a", 5000)},
		{"multipart/form-data; boundary=x", "https://" + host, "", "--x\r\n"},
		{"", "", "cross-site", ""},
		{"application/x-www-form-urlencoded; charset=utf-8", "https://" + host, "", "token=%00%ff;;&&=="},
	} {
		f.Add(s.ct, s.origin, s.site, s.body)
	}
	f.Fuzz(func(t *testing.T, ct, origin, site, body string) {
		r := httptest.NewRequest(http.MethodPost, "https://"+host+"/ui/login", strings.NewReader(body))
		for k, v := range map[string]string{"Content-Type": ct, "Origin": origin, "Sec-Fetch-Site": site} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		fs.s.Handler().ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("HTTP %d: %s", w.Code, w.Body)
		}
		if w.Header().Get("Content-Security-Policy") != uiCSP {
			t.Fatalf("no CSP on a %d answer", w.Code)
		}
		if ck := w.Header().Get("Set-Cookie"); ck != "" {
			if w.Code != http.StatusSeeOther || !strings.Contains(ck, fs.owner) || !sameOrigin(r) {
				t.Fatalf("a cookie was set for %q (HTTP %d)", body, w.Code)
			}
		}
	})
}
