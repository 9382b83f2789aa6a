package controlplane_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

func TestOnboardingCredentials(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "rg1")

	t.Run("use count", func(t *testing.T) {
		c := e.onboarding(sub, "rg1", 2, "1h")
		for _, h := range []string{"u1", "u2"} {
			if _, err := e.register(c.Secret, h); err != nil {
				t.Fatalf("register %s: %v", h, err)
			}
		}
		_, err := e.register(c.Secret, "u3")
		wantCode(t, err, http.StatusUnauthorized, apiv1.CodeOnboardingInvalid, "no uses left")
	})
	t.Run("expiry", func(t *testing.T) {
		c := e.onboarding(sub, "rg1", 5, "10m")
		e.clock.Advance(11 * time.Minute)
		_, err := e.register(c.Secret, "late")
		wantCode(t, err, http.StatusUnauthorized, apiv1.CodeOnboardingInvalid, "expired")
	})
	t.Run("revocation", func(t *testing.T) {
		c := e.onboarding(sub, "rg1", 5, "1h")
		if _, err := e.register(c.Secret, "r1"); err != nil {
			t.Fatal(err)
		}
		rv, err := e.owner.RevokeOnboarding(ctx, c.ID)
		if err != nil || rv.State != "Revoked" {
			t.Fatalf("revoke: %+v %v", rv, err)
		}
		_, err = e.register(c.Secret, "r2")
		wantCode(t, err, http.StatusUnauthorized, apiv1.CodeOnboardingInvalid, "revoked")
	})
	t.Run("unknown", func(t *testing.T) {
		_, err := e.register("arcob_doesnotexist", "x1")
		wantCode(t, err, http.StatusUnauthorized, apiv1.CodeOnboardingInvalid, "not known")
		_, err = e.register("", "x1")
		wantCode(t, err, http.StatusUnauthorized, apiv1.CodeOnboardingInvalid)
	})
	t.Run("duplicate name does not consume a use", func(t *testing.T) {
		c := e.onboarding(sub, "rg1", 2, "1h")
		if _, err := e.register(c.Secret, "dup"); err != nil {
			t.Fatal(err)
		}
		_, err := e.register(c.Secret, "DUP")
		wantCode(t, err, http.StatusConflict, apiv1.CodeConflict, "already exists")
		cs, err := e.owner.ListOnboarding(ctx, sub, "rg1")
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range cs {
			if x.ID == c.ID && x.UsesLeft != 1 {
				t.Fatalf("uses left %d, want 1", x.UsesLeft)
			}
			if x.Secret != "" {
				t.Fatal("list shows a secret")
			}
		}
	})
	t.Run("stored only hashed", func(t *testing.T) {
		c := e.onboarding(sub, "rg1", 1, "1h")
		got, err := e.st.Onboarding(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Hash == c.Secret || strings.Contains(got.Hash, c.Secret) || len(got.Hash) != 64 {
			t.Fatalf("stored %q", got.Hash)
		}
		if strings.Contains(e.logs.String(), c.Secret) || strings.Contains(e.logs.String(), e.ownerT) {
			t.Fatal("a secret reached the log")
		}
	})
	t.Run("limits", func(t *testing.T) {
		for _, req := range []apiv1.CreateOnboardingRequest{
			{SubscriptionID: sub, ResourceGroup: "rg1", ExpiresIn: "1h", Uses: 0},
			{SubscriptionID: sub, ResourceGroup: "rg1", ExpiresIn: "90d", Uses: 1},
			{SubscriptionID: sub, ResourceGroup: "rg1", ExpiresIn: "soon", Uses: 1},
			{SubscriptionID: "nope", ResourceGroup: "rg1", ExpiresIn: "1h", Uses: 1},
		} {
			_, err := e.owner.CreateOnboarding(ctx, req)
			wantCode(t, err, http.StatusBadRequest, apiv1.CodeBadRequest)
		}
		_, err := e.owner.CreateOnboarding(ctx, apiv1.CreateOnboardingRequest{SubscriptionID: sub, ResourceGroup: "missing", ExpiresIn: "1h", Uses: 1})
		wantCode(t, err, http.StatusNotFound, apiv1.CodeNotFound)
	})
}

// sign builds an assertion with arbitrary claims.
func sign(t *testing.T, key *ecdsa.PrivateKey, c jwt.RegisteredClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodES256, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMachineAssertions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "rg1")
	m := e.mustRegister(sub, "rg1", "host1")
	other := e.mustRegister(sub, "rg1", "host2")
	now := e.clock.Now()
	id, aud := m.reg.MachineID, m.reg.Audience
	claims := func(mod func(*jwt.RegisteredClaims)) jwt.RegisteredClaims {
		c := jwt.RegisteredClaims{Issuer: id, Subject: id, Audience: jwt.ClaimStrings{aud}, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: time.Now().String()}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	if hb, err := m.m.Heartbeat(ctx, apiv1.HeartbeatRequest{AgentVersion: "0.1.1"}); err != nil || hb.Status != apiv1.StatusConnected || hb.DesiredStateETag == "" {
		t.Fatalf("heartbeat: %+v %v", hb, err)
	}

	replayed := sign(t, m.key, claims(nil))
	hs256, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil)).SignedString([]byte("secret"))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	unknownID := "6f1c1f3e-1111-4222-8333-944444444444"
	hbPath := "/v1/machines/" + id + "/heartbeat"
	tests := []struct {
		name   string
		path   string
		token  string
		status int
		code   string
		msg    string
	}{
		{"valid", hbPath, replayed, 200, "", ""},
		{"replay", hbPath, replayed, 401, string(apiv1.CodeAssertionInvalid), "already used"},
		{"wrong audience", hbPath, sign(t, m.key, claims(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"https://evil.example"} })), 401, string(apiv1.CodeAssertionInvalid), "audience"},
		{"expired", hbPath, sign(t, m.key, claims(func(c *jwt.RegisteredClaims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(-10 * time.Minute))
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-6 * time.Minute))
		})), 401, string(apiv1.CodeAssertionInvalid), "expired"},
		{"lifetime over five minutes", hbPath, sign(t, m.key, claims(func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(10 * time.Minute)) })), 401, string(apiv1.CodeAssertionInvalid), "at most 5m"},
		{"no exp", hbPath, sign(t, m.key, claims(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })), 401, string(apiv1.CodeAssertionInvalid), "exp"},
		{"no jti", hbPath, sign(t, m.key, claims(func(c *jwt.RegisteredClaims) { c.ID = "" })), 401, string(apiv1.CodeAssertionInvalid), "jti"},
		{"issued in the future", hbPath, sign(t, m.key, claims(func(c *jwt.RegisteredClaims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(3 * time.Minute))
			c.ExpiresAt = jwt.NewNumericDate(now.Add(4 * time.Minute))
		})), 401, string(apiv1.CodeAssertionInvalid), "future"},
		{"issued before the server started", hbPath, sign(t, m.key, claims(func(c *jwt.RegisteredClaims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(-2 * time.Minute))
			c.ExpiresAt = jwt.NewNumericDate(now.Add(time.Minute))
		})), 401, string(apiv1.CodeAssertionInvalid), "before this server started"},
		{"iss differs from sub", hbPath, sign(t, m.key, claims(func(c *jwt.RegisteredClaims) { c.Issuer = "someone" })), 401, string(apiv1.CodeAssertionInvalid), "iss"},
		{"signed by another key", hbPath, sign(t, stranger, claims(nil)), 401, string(apiv1.CodeAssertionInvalid), "signature"},
		{"HS256", hbPath, hs256, 401, string(apiv1.CodeAssertionInvalid), ""},
		{"alg none", hbPath, none, 401, string(apiv1.CodeAssertionInvalid), ""},
		{"garbage", hbPath, "not.a.jwt", 401, string(apiv1.CodeAssertionInvalid), "well-formed"},
		{"operator token", hbPath, e.ownerT, 401, string(apiv1.CodeAssertionInvalid), "operator"},
		{"no token", hbPath, "", 401, string(apiv1.CodeAssertionInvalid), ""},
		{"unknown machine", "/v1/machines/" + unknownID + "/heartbeat", sign(t, stranger, claims(func(c *jwt.RegisteredClaims) { c.Issuer, c.Subject = unknownID, unknownID })), 401, string(apiv1.CodeAssertionInvalid), "not registered"},
		{"acting on another machine", "/v1/machines/" + other.reg.MachineID + "/heartbeat", sign(t, m.key, claims(nil)), 403, string(apiv1.CodeForbidden), "only on itself"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, ae, _ := e.raw(http.MethodPost, tc.path, tc.token, "", nil)
			if status != tc.status || ae.Code != tc.code {
				t.Fatalf("got %d %s %q, want %d %s", status, ae.Code, ae.Message, tc.status, tc.code)
			}
			if !strings.Contains(ae.Message, tc.msg) {
				t.Fatalf("message %q lacks %q", ae.Message, tc.msg)
			}
			if status == 401 && h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	t.Run("no assertion reaches the log", func(t *testing.T) {
		logs := e.logs.String()
		for _, tc := range tests {
			if tc.token != "" && strings.Contains(logs, tc.token) {
				t.Fatalf("the log holds a bearer token (%s)", tc.name)
			}
		}
		if !strings.Contains(logs, `"machine":"`+id+`"`) {
			t.Fatal("the request log does not name the machine")
		}
	})

	t.Run("deleted machine", func(t *testing.T) {
		if err := e.owner.DeleteMachine(ctx, other.reg.MachineID); err != nil {
			t.Fatal(err)
		}
		_, err := other.m.Heartbeat(ctx, apiv1.HeartbeatRequest{})
		wantCode(t, err, http.StatusUnauthorized, apiv1.CodeAssertionInvalid, "not registered")
	})

	t.Run("status from heartbeats", func(t *testing.T) {
		got, err := e.owner.GetMachine(ctx, id)
		if err != nil || got.Status != apiv1.StatusConnected || got.AgentVersion != "0.1.1" {
			t.Fatalf("%+v %v", got, err)
		}
		e.clock.Advance(16 * time.Minute)
		if got, _ := e.owner.GetMachine(ctx, id); got.Status != apiv1.StatusDisconnected {
			t.Fatalf("after 16 minutes: %s", got.Status)
		}
		if _, err := m.m.Heartbeat(ctx, apiv1.HeartbeatRequest{}); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.owner.GetMachine(ctx, id); got.Status != apiv1.StatusConnected {
			t.Fatalf("after a heartbeat: %s", got.Status)
		}
		e.clock.Advance(46 * 24 * time.Hour)
		if got, _ := e.owner.GetMachine(ctx, id); got.Status != apiv1.StatusExpired {
			t.Fatalf("after 46 days: %s", got.Status)
		}
		_, err = m.m.Heartbeat(ctx, apiv1.HeartbeatRequest{})
		wantCode(t, err, http.StatusForbidden, apiv1.CodeMachineExpired, "expired")
	})
}

func TestDesiredStateAndStatus(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "rg1")
	m := e.mustRegister(sub, "rg1", "host1")

	doc, etag, err := m.m.DesiredState(ctx, "")
	if err != nil || doc == nil || etag == "" {
		t.Fatalf("%v %q %v", doc, etag, err)
	}
	if doc.Extensions == nil || doc.GuestConfigurationAssignments == nil || len(doc.Extensions)+len(doc.GuestConfigurationAssignments) != 0 {
		t.Fatalf("want empty lists, got %+v", doc)
	}
	doc2, etag2, err := m.m.DesiredState(ctx, etag)
	if err != nil || doc2 != nil || etag2 != etag {
		t.Fatalf("If-None-Match: %v %q %v", doc2, etag2, err)
	}
	st := apiv1.MachineStatus{DesiredStateETag: etag, Extensions: []apiv1.ExtensionStatus{{Name: "Contoso.Backup", Version: "1.0", State: "Succeeded"}}}
	if err := m.m.PutStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	got, err := e.owner.GetMachine(ctx, m.reg.MachineID)
	if err != nil || got.ReportedStatus == nil || len(got.ReportedStatus.Extensions) != 1 || got.ReportedStatus.ReportedAt.IsZero() {
		t.Fatalf("%+v %v", got.ReportedStatus, err)
	}
	bad := apiv1.MachineStatus{Extensions: []apiv1.ExtensionStatus{{Name: "", State: "x"}}}
	wantCode(t, m.m.PutStatus(ctx, bad), http.StatusBadRequest, apiv1.CodeBadRequest, "extensions[0].name")

	self, err := m.m.Self(ctx)
	if err != nil || self.ResourceID != m.reg.ResourceID || self.Location != "local" || self.TenantID == "" || self.Inventory.Hostname != "host1" {
		t.Fatalf("self: %+v %v", self, err)
	}
	if _, err := e.owner.UpdateMachineTags(ctx, m.reg.MachineID, apiv1.Tags{"team": "web"}); err != nil {
		t.Fatal(err)
	}
	if self, _ := m.m.Self(ctx); self.Tags["team"] != "web" {
		t.Fatalf("tags not visible to the machine: %v", self.Tags)
	}
	if _, err := m.m.Token(ctx, ""); cloud.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("token without resource: %v", err)
	}
}
