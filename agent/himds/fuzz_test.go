//go:build !windows

package himds

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzLocalAPI feeds arbitrary queries and headers to the local API: it
// must never panic, and never answer a token without a redeemed secret.
func FuzzLocalAPI(f *testing.F) {
	f.Add("api-version=2020-06-01&resource=https://management.azure.com/", "true", "Basic 00", "127.0.0.1:1")
	f.Add("api-version=2099-01-01", "TRUE", "", "[::1]:80")
	f.Add("resource=%zz", "", "Bearer x", "10.0.0.1:5")
	f.Add("api-version=2020-06-01&resource=a&client_id=b", "true", "basic", "garbage")
	fx := newFixture(f, nil)
	h := fx.svc.Handler()
	f.Fuzz(func(t *testing.T, query, metadata, auth, remote string) {
		r := httptest.NewRequest(http.MethodGet, "/metadata/identity/oauth2/token", nil)
		r.URL.RawQuery = query
		r.RemoteAddr = remote
		if metadata != "" {
			r.Header.Set("Metadata", metadata)
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == http.StatusOK {
			t.Fatalf("a token without a secret: query %q auth %q", query, auth)
		}
	})
}
