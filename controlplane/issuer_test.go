package controlplane_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/store"
)

// fetchJWKS follows the OIDC discovery document to the JWKS, over HTTPS,
// and parses it with go-jose (not the server's code).
func fetchJWKS(t *testing.T, e *env) (apiv1.OpenIDConfiguration, jose.JSONWebKeySet) {
	t.Helper()
	get := func(url string, v any) {
		resp, err := e.hc.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", url, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var disc apiv1.OpenIDConfiguration
	get(e.url+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != e.url {
		t.Fatalf("issuer %q, want %q", disc.Issuer, e.url)
	}
	var set jose.JSONWebKeySet
	get(disc.JWKSURI, &set)
	return disc, set
}

// verify validates a token with go-jose against the JWKS and returns its claims.
func verify(t *testing.T, set jose.JSONWebKeySet, tok string, want josejwt.Expected) (josejwt.Claims, error) {
	t.Helper()
	parsed, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	kid := parsed.Headers[0].KeyID
	keys := set.Key(kid)
	if len(keys) == 0 {
		return josejwt.Claims{}, errNoKey
	}
	var c josejwt.Claims
	if err := parsed.Claims(keys[0].Key, &c); err != nil {
		return c, err
	}
	return c, c.ValidateWithLeeway(want, 0)
}

type testErr string

func (e testErr) Error() string { return string(e) }

const errNoKey = testErr("kid not in JWKS")

func TestTokensValidateWithJWKS(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "rg1")
	m := e.mustRegister(sub, "rg1", "host1")
	const resource = "https://vault.example.com"

	tr, err := m.m.Token(ctx, resource)
	if err != nil {
		t.Fatal(err)
	}
	if tr.TokenType != "Bearer" || tr.Resource != resource || tr.ExpiresIn != "3600" {
		t.Fatalf("%+v", tr)
	}
	disc, set := fetchJWKS(t, e)
	if len(set.Keys) != 1 || !set.Keys[0].Valid() || set.Keys[0].Algorithm != "ES256" || !set.Keys[0].IsPublic() {
		t.Fatalf("JWKS: %+v", set.Keys)
	}
	want := josejwt.Expected{Issuer: disc.Issuer, Subject: m.reg.ResourceID, AnyAudience: josejwt.Audience{resource}, Time: e.clock.Now()}
	c, err := verify(t, set, tr.AccessToken, want)
	if err != nil {
		t.Fatalf("token does not validate through the JWKS: %v", err)
	}
	if c.IssuedAt == nil || c.Expiry == nil || c.Expiry.Time().Sub(c.IssuedAt.Time()) != time.Hour {
		t.Fatalf("claims %+v", c)
	}
	// Another audience is not accepted by a validator expecting this one.
	if _, err := verify(t, set, tr.AccessToken, josejwt.Expected{AnyAudience: josejwt.Audience{"https://other"}, Time: e.clock.Now()}); err == nil {
		t.Fatal("token valid for a foreign audience")
	}

	// Rotation: the new key is published at once and signs after the
	// pre-publication period (two key reloads); the old one stays
	// published until the old tokens expire, then it is dropped.
	oldKid := set.Keys[0].KeyID
	newKid, err := e.srv.RotateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	trPre, err := m.m.Token(ctx, resource)
	if err != nil {
		t.Fatal(err)
	}
	if parsed, _ := josejwt.ParseSigned(trPre.AccessToken, []jose.SignatureAlgorithm{jose.ES256}); parsed.Headers[0].KeyID != oldKid {
		t.Fatalf("right after rotation the token is signed by %s, want the old key %s", parsed.Headers[0].KeyID, oldKid)
	}
	e.clock.Advance(2 * time.Minute)
	if err := e.srv.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	tr2, err := m.m.Token(ctx, resource)
	if err != nil {
		t.Fatal(err)
	}
	_, set = fetchJWKS(t, e)
	if len(set.Keys) != 2 {
		t.Fatalf("after rotation JWKS has %d keys, want 2", len(set.Keys))
	}
	parsed, _ := josejwt.ParseSigned(tr2.AccessToken, []jose.SignatureAlgorithm{jose.ES256})
	if parsed.Headers[0].KeyID != newKid {
		t.Fatalf("new token signed by %s, want %s", parsed.Headers[0].KeyID, newKid)
	}
	if _, err := verify(t, set, tr.AccessToken, want); err != nil {
		t.Fatalf("old token stopped validating right after rotation: %v", err)
	}
	e.clock.Advance(time.Hour + 6*time.Minute)
	if err := e.srv.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	_, set = fetchJWKS(t, e)
	if len(set.Keys) != 1 || set.Keys[0].KeyID != newKid {
		t.Fatalf("after expiry JWKS = %v, want only %s", set.Keys, newKid)
	}
}

func TestBackupWhileServing(t *testing.T) {
	e := newEnv(t)
	sub := e.scope("prod", "rg1")
	m := e.mustRegister(sub, "rg1", "host1")
	out := filepath.Join(t.TempDir(), "backup.db")
	if err := controlplane.Backup(context.Background(), e.dir, out); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup %v %v", fi, err)
	}
	if err := controlplane.Backup(context.Background(), e.dir, out); err == nil {
		t.Fatal("backup overwrote an existing file")
	}
	st, err := store.OpenSQLite(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Machine(context.Background(), m.reg.MachineID); err != nil {
		t.Fatalf("machine missing from backup: %v", err)
	}
	// The server still works after the backup.
	if _, err := m.m.Heartbeat(context.Background(), apiv1.HeartbeatRequest{}); err != nil {
		t.Fatal(err)
	}
	// Data directory files that hold secrets are private.
	for _, f := range []string{controlplane.DBFile, controlplane.CAKeyFile, controlplane.TLSKeyFile} {
		fi, err := os.Stat(filepath.Join(e.dir, f))
		if err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v %v", f, fi.Mode(), err)
		}
	}
}
