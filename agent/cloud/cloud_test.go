package cloud

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
)

func TestSignAssertion(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	s, err := SignAssertion(k, "m1", "aud1", now, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.RegisteredClaims
	if _, err := jwt.ParseWithClaims(s, &c, func(*jwt.Token) (any, error) { return &k.PublicKey, nil }, jwt.WithValidMethods([]string{"ES256"})); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "m1" || c.Subject != "m1" || c.Audience[0] != "aud1" || c.ID == "" || c.ExpiresAt.Sub(c.IssuedAt.Time) != 2*time.Minute {
		t.Fatalf("claims %+v", c)
	}
	s2, _ := SignAssertion(k, "m1", "aud1", now, time.Minute)
	var c2 jwt.RegisteredClaims
	jwt.ParseWithClaims(s2, &c2, func(*jwt.Token) (any, error) { return &k.PublicKey, nil })
	if c2.ID == c.ID {
		t.Fatal("two assertions share a jti")
	}
	for _, bad := range []time.Duration{0, -time.Second, 6 * time.Minute} {
		if _, err := SignAssertion(k, "m1", "a", now, bad); err == nil {
			t.Errorf("lifetime %s accepted", bad)
		}
	}
}

func TestKeyRoundTrip(t *testing.T) {
	k, _ := GenerateKey()
	p, err := MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParsePrivateKey(p)
	if err != nil || !k2.Equal(k) {
		t.Fatalf("round trip: %v", err)
	}
	pub, err := MarshalPublicKey(&k.PublicKey)
	if b, _ := pem.Decode([]byte(pub)); err != nil || b == nil || b.Type != "PUBLIC KEY" {
		t.Fatalf("public key PEM: %v", err)
	}
	if _, err := ParsePrivateKey([]byte("junk")); err == nil {
		t.Fatal("parsed junk")
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := New("http://127.0.0.1:1", Options{}); err == nil {
		t.Fatal("plain http accepted")
	}
	// An API error keeps its status, code and message.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/whoami":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(403)
			w.Write([]byte(`{"code":"ARC0202","message":"permission X is required"}`))
		default:
			w.WriteHeader(502)
			w.Write([]byte("<html>bad gateway</html>"))
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL, Options{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Operator("t").Whoami(ctx)
	if StatusOf(err) != 403 || CodeOf(err) != apiv1.CodeForbidden || errcode.ExitCode(err) != errcode.ExitFailed {
		t.Fatalf("%v (status %d, code %s)", err, StatusOf(err), CodeOf(err))
	}
	_, err = c.Operator("t").ListMachines(ctx, "", "")
	if CodeOf(err) != apiv1.CodeBadResponse {
		t.Fatalf("non-arcserver error: %v", err)
	}
	// A server that is not there.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c2, _ := New("https://"+addr, Options{Timeout: 2 * time.Second})
	_, err = c2.Discovery(ctx)
	var ce *errcode.Error
	if err == nil || !asCode(err, &ce) || ce.Code != apiv1.CodeUnreachable {
		t.Fatalf("unreachable: %v", err)
	}
	// An untrusted certificate is refused.
	c3, _ := New(srv.URL, Options{})
	if _, err := c3.Discovery(ctx); err == nil {
		t.Fatal("untrusted server accepted")
	}
}

func asCode(err error, target **errcode.Error) bool {
	for err != nil {
		if e, ok := err.(*errcode.Error); ok {
			*target = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}
