package cloud

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
)

const (
	subProd = "11111111-1111-1111-1111-111111111111"
	subDup1 = "22222222-2222-2222-2222-222222222222"
	subDup2 = "33333333-3333-3333-3333-333333333333"
)

// fakeOperatorAPI serves the list endpoints the resolvers read.
func fakeOperatorAPI(t *testing.T) *Operator {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/subscriptions", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(apiv1.List[apiv1.Subscription]{Value: []apiv1.Subscription{
			{SubID: subProd, DisplayName: "prod"}, {SubID: subDup1, DisplayName: "dup"}, {SubID: subDup2, DisplayName: "Dup"}}})
	})
	mux.HandleFunc("GET /v1/subscriptions/{sub}/resourceGroups", func(w http.ResponseWriter, r *http.Request) {
		groups := map[string][]apiv1.ResourceGroup{subProd: {{Name: "web"}, {Name: "both"}}, subDup1: {{Name: "both"}}}[r.PathValue("sub")]
		json.NewEncoder(w).Encode(apiv1.List[apiv1.ResourceGroup]{Value: groups})
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, Options{CAPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})})
	if err != nil {
		t.Fatal(err)
	}
	return c.Operator("arcp_test")
}

func TestResolveScope(t *testing.T) {
	op := fakeOperatorAPI(t)
	for _, tc := range []struct {
		in, want string
		code     errcode.Code
	}{
		{"", "/", ""},
		{"/subscriptions/x", "/subscriptions/x", ""},
		{"prod", "/subscriptions/" + subProd, ""},
		{"PROD/web", "/subscriptions/" + subProd + "/resourceGroups/web", ""},
		{subDup1 + "/g", "/subscriptions/" + subDup1 + "/resourceGroups/g", ""},
		{"dup", "", errcode.Usage},
		{"nope", "", apiv1.CodeNotFound},
	} {
		got, err := op.ResolveScope(t.Context(), tc.in)
		if got != tc.want || codeOf(err) != tc.code {
			t.Errorf("%q: %q %v; want %q %q", tc.in, got, err, tc.want, tc.code)
		}
	}
}

func TestResolveGroup(t *testing.T) {
	op := fakeOperatorAPI(t)
	for _, tc := range []struct {
		sub, rg, wantSub, wantRG string
		code                     errcode.Code
	}{
		{"", "/subscriptions/" + subProd + "/resourceGroups/web", subProd, "web", ""},
		{"", "/subscriptions/x/groups/web", "", "", errcode.Usage},
		{"", "web", subProd, "web", ""},
		{"", "both", "", "", errcode.Usage},
		{"prod", "both", subProd, "both", ""},
		{"", "nope", "", "", apiv1.CodeNotFound},
		{"", "", "", "", errcode.Usage},
	} {
		sub, rg, err := op.ResolveGroup(t.Context(), tc.sub, tc.rg)
		if sub != tc.wantSub || rg != tc.wantRG || codeOf(err) != tc.code {
			t.Errorf("%q %q: %q %q %v; want %q %q %q", tc.sub, tc.rg, sub, rg, err, tc.wantSub, tc.wantRG, tc.code)
		}
	}
}

func TestIsID(t *testing.T) {
	for s, want := range map[string]bool{subProd: true, "ABCDEF01-2345-6789-abcd-ef0123456789": true, "web01": false,
		"11111111-1111-1111-1111-11111111111g": false, "111111111111-1111-1111-111111111111": false} {
		if IsID(s) != want {
			t.Errorf("IsID(%q) = %v", s, !want)
		}
	}
}

func TestLoginRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "fleet.json")
	t.Setenv("ARCAGENT_FLEET_CONFIG", p)
	if _, err := LoadLogin(); codeOf(err) != apiv1.CodeNotLoggedIn {
		t.Fatalf("no login: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadLogin(); codeOf(err) != apiv1.CodeNotLoggedIn {
		t.Fatalf("damaged login: %v", err)
	}
	if _, err := SaveLogin(Login{Server: "https://cp", Token: "arcp_x"}); err != nil {
		t.Fatal(err)
	}
	// An existing file readable by others is tightened.
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("login file mode %v %v", fi.Mode(), err)
	}
	if l, err := LoadLogin(); err != nil || l.Token != "arcp_x" {
		t.Fatalf("load: %+v %v", l, err)
	}
}

func codeOf(err error) errcode.Code {
	var ce *errcode.Error
	if asCode(err, &ce) {
		return ce.Code
	}
	return ""
}
