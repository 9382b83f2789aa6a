package controlplane_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

func TestRequestBodies(t *testing.T) {
	e := newEnv(t)
	sub := e.scope("prod", "rg1")
	secret := e.onboarding(sub, "rg1", 100, "1h").Secret
	big := `{"displayName":"` + strings.Repeat("a", 70<<10) + `"}`
	tests := []struct {
		name, method, path, auth, ctype, body string
		status                                int
		code                                  apiv1.Error
		msg                                   string
	}{
		{"oversize", "POST", "/v1/subscriptions", e.ownerT, "application/json", big, 413, apiv1.Error{Code: string(apiv1.CodeTooLarge)}, "limit"},
		{"oversize register", "POST", "/v1/machines/register", secret, "application/json", big, 413, apiv1.Error{Code: string(apiv1.CodeTooLarge)}, "limit"},
		{"malformed", "POST", "/v1/subscriptions", e.ownerT, "application/json", `{"displayName":`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, "ends in the middle"},
		{"syntax error", "POST", "/v1/subscriptions", e.ownerT, "application/json", `{"displayName" "x"}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, "not valid JSON"},
		{"unknown field", "POST", "/v1/subscriptions", e.ownerT, "application/json", `{"displayName":"x","admin":true}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, `unknown field "admin"`},
		{"unknown nested field", "POST", "/v1/machines/register", secret, "application/json", `{"publicKey":"x","inventory":{"hostname":"h","evil":1}}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, `unknown field "evil"`},
		{"duplicate key", "POST", "/v1/subscriptions", e.ownerT, "application/json", `{"displayName":"x","displayName":"y"}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, `key "displayName" appears twice: send each field once`},
		{"duplicate nested key", "POST", "/v1/machines/register", secret, "application/json", `{"publicKey":"x","inventory":{"hostname":"h","hostname":"h2","osType":"linux","agentVersion":"1"}}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, `key "hostname" appears twice in inventory`},
		{"case-variant field", "POST", "/v1/roleAssignments", e.ownerT, "application/json", `{"principal":"a","role":"Reader","Scope":"/"}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, `key "Scope" must be spelled "scope"`},
		{"case-variant duplicate", "POST", "/v1/roleAssignments", e.ownerT, "application/json", `{"principal":"a","role":"Reader","scope":"/subscriptions/` + sub + `","SCOPE":"/"}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, `key "SCOPE" must be spelled "scope"`},
		{"case-variant nested field", "POST", "/v1/machines/register", secret, "application/json", `{"publicKey":"x","inventory":{"Hostname":"h","osType":"linux","agentVersion":"1"}}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, `key "Hostname" in inventory must be spelled "hostname"`},
		{"trailing data", "POST", "/v1/subscriptions", e.ownerT, "application/json", `{"displayName":"x"} {}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, "after the JSON value"},
		{"empty", "POST", "/v1/subscriptions", e.ownerT, "application/json", ``, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, "empty"},
		{"array", "POST", "/v1/subscriptions", e.ownerT, "application/json", `[1]`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, "object"},
		{"wrong type", "POST", "/v1/onboardingCredentials", e.ownerT, "application/json", `{"subscriptionId":"` + sub + `","resourceGroup":"rg1","expiresIn":"1h","uses":"3"}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, `"uses" must be a number`},
		{"not JSON content type", "POST", "/v1/subscriptions", e.ownerT, "text/plain", `{"displayName":"x"}`, 415, apiv1.Error{Code: string(apiv1.CodeUnsupportedMedia)}, "application/json"},
		{"bad key", "POST", "/v1/machines/register", secret, "application/json", `{"publicKey":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n","inventory":{"hostname":"h","osType":"linux","agentVersion":"1"}}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, "publicKey"},
		{"bad host name", "POST", "/v1/machines/register", secret, "application/json", `{"publicKey":"x","inventory":{"hostname":"../etc","osType":"linux","agentVersion":"1"}}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, "hostname"},
		{"bad tags", "POST", "/v1/subscriptions", e.ownerT, "application/json", `{"displayName":"x","tags":{"a/b":"c"}}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, "tag name"},
		{"control characters", "POST", "/v1/subscriptions", e.ownerT, "application/json", `{"displayName":"x\u0007"}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, "printable"},
		{"unknown path", "GET", "/v1/nothing", e.ownerT, "", ``, 404, apiv1.Error{Code: string(apiv1.CodeNotFound)}, "no API"},
		{"wrong method", "PUT", "/v1/subscriptions", e.ownerT, "", ``, 405, apiv1.Error{Code: string(apiv1.CodeMethodNotAllowed)}, "GET"},
		{"bad scope", "POST", "/v1/roleAssignments", e.ownerT, "application/json", `{"principal":"a","role":"Reader","scope":"/foo/bar"}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, "scope"},
		{"unknown role", "POST", "/v1/roleAssignments", e.ownerT, "application/json", `{"principal":"a","role":"God","scope":"/"}`, 400, apiv1.Error{Code: string(apiv1.CodeBadRequest)}, "Owner, Reader"},
	}
	// Oversize bodies without a Content-Length (chunked) are cut off too.
	t.Run("oversize chunked", func(t *testing.T) {
		status, _, ae, _ := e.raw("POST", "/v1/subscriptions", e.ownerT, "application/json", io.MultiReader(strings.NewReader(big)))
		if status != 413 || ae.Code != string(apiv1.CodeTooLarge) {
			t.Fatalf("got %d %s", status, ae.Code)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, ae, _ := e.raw(tc.method, tc.path, tc.auth, tc.ctype, strings.NewReader(tc.body))
			if status != tc.status || ae.Code != tc.code.Code {
				t.Fatalf("got %d %s %q, want %d %s", status, ae.Code, ae.Message, tc.status, tc.code.Code)
			}
			if !strings.Contains(ae.Message, tc.msg) {
				t.Fatalf("message %q lacks %q", ae.Message, tc.msg)
			}
			if h.Get("Content-Type") != "application/json" {
				t.Errorf("error Content-Type %q", h.Get("Content-Type"))
			}
			if status == http.StatusMethodNotAllowed && h.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}
