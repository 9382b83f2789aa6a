package cloud

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
)

// DefaultAssertionLifetime is how long the assertions this client signs
// live; the server accepts at most apiv1.MaxAssertionLifetime.
const DefaultAssertionLifetime = 2 * time.Minute

// GenerateKey creates a machine key pair (ECDSA P-256). The private key
// never leaves the machine.
func GenerateKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate the machine key: %w", err)
	}
	return k, nil
}

// MarshalPrivateKey encodes a machine key as PKCS#8 PEM (store it 0600).
func MarshalPrivateKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode the machine key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey reads a PKCS#8 (or SEC 1) PEM ECDSA key.
func ParsePrivateKey(p []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(p)
	if b == nil {
		return nil, errors.New("the machine key file holds no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		if ek, ok := k.(*ecdsa.PrivateKey); ok {
			return ek, nil
		}
		return nil, fmt.Errorf("the machine key is %T, not ECDSA", k)
	}
	k, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse the machine key: %w", err)
	}
	return k, nil
}

// MarshalPublicKey encodes a public key as PKIX PEM, as registration wants.
func MarshalPublicKey(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode the machine public key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// SignAssertion signs an RFC 7523-style assertion for machineID: iss = sub
// = the machine id, aud = the server's audience, a fresh random jti, iat =
// now and exp = now + lifetime (at most five minutes).
func SignAssertion(key *ecdsa.PrivateKey, machineID, audience string, now time.Time, lifetime time.Duration) (string, error) {
	if lifetime <= 0 || lifetime > apiv1.MaxAssertionLifetime {
		return "", fmt.Errorf("assertion lifetime %s is outside (0, %s]", lifetime, apiv1.MaxAssertionLifetime)
	}
	var j [16]byte
	if _, err := rand.Read(j[:]); err != nil {
		return "", fmt.Errorf("generate the assertion id: %w", err)
	}
	claims := jwt.RegisteredClaims{
		Issuer: machineID, Subject: machineID, Audience: jwt.ClaimStrings{audience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(lifetime)),
		ID: base64.RawURLEncoding.EncodeToString(j[:]),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sign the assertion: %w", err)
	}
	return s, nil
}

// Register registers a machine with an onboarding credential. If
// req.PublicKey is empty it is filled from key.
func (c *Client) Register(ctx context.Context, onboardingCredential string, key *ecdsa.PrivateKey, req apiv1.RegisterRequest) (apiv1.Registration, error) {
	var out apiv1.Registration
	if req.PublicKey == "" {
		p, err := MarshalPublicKey(&key.PublicKey)
		if err != nil {
			return out, err
		}
		req.PublicKey = p
	}
	_, _, err := c.call(ctx, http.MethodPost, "/v1/machines/register", nil, onboardingCredential, nil, req, &out)
	return out, err
}

// Machine is a registered machine's authenticated view of the API.
type Machine struct {
	c        *Client
	ID       string
	Audience string
	Key      *ecdsa.PrivateKey
	// Lifetime of each assertion; 0 means DefaultAssertionLifetime.
	Lifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Assert, if set, supplies the assertion for the next request instead
	// of signing one (load generators pre-sign outside the timed window).
	Assert func() (string, error)
}

// Machine returns the machine view for a registered machine.
func (c *Client) Machine(id, audience string, key *ecdsa.PrivateKey) *Machine {
	return &Machine{c: c, ID: id, Audience: audience, Key: key}
}

func (m *Machine) assertion() (string, error) {
	if m.Assert != nil {
		return m.Assert()
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	life := m.Lifetime
	if life == 0 {
		life = DefaultAssertionLifetime
	}
	return SignAssertion(m.Key, m.ID, m.Audience, now(), life)
}

func (m *Machine) path(suffix string) string { return "/v1/machines/" + url.PathEscape(m.ID) + suffix }

// Self returns the machine's own representation: name, resource id,
// subscription, resource group, location, tags, tenant and status.
func (m *Machine) Self(ctx context.Context) (apiv1.Machine, error) {
	var out apiv1.Machine
	a, err := m.assertion()
	if err != nil {
		return out, err
	}
	_, _, err = m.c.call(ctx, http.MethodGet, m.path("/self"), nil, a, nil, nil, &out)
	return out, err
}

// Heartbeat tells the server the machine is alive.
func (m *Machine) Heartbeat(ctx context.Context, req apiv1.HeartbeatRequest) (apiv1.HeartbeatResponse, error) {
	var out apiv1.HeartbeatResponse
	a, err := m.assertion()
	if err != nil {
		return out, err
	}
	var body any
	if req != (apiv1.HeartbeatRequest{}) {
		body = req
	}
	_, _, err = m.c.call(ctx, http.MethodPost, m.path("/heartbeat"), nil, a, nil, body, &out)
	return out, err
}

// DesiredState fetches the desired state. With etag set and unchanged on
// the server it returns (nil, etag, nil).
func (m *Machine) DesiredState(ctx context.Context, etag string) (*apiv1.DesiredState, string, error) {
	a, err := m.assertion()
	if err != nil {
		return nil, "", err
	}
	var hdr http.Header
	if etag != "" {
		hdr = http.Header{"If-None-Match": {etag}}
	}
	var raw json.RawMessage
	h, status, err := m.c.call(ctx, http.MethodGet, m.path("/desiredState"), nil, a, hdr, nil, &raw)
	if err != nil {
		return nil, "", err
	}
	if status == http.StatusNotModified {
		return nil, etag, nil
	}
	// Numbers in extension settings keep every digit (json.Number).
	var out apiv1.DesiredState
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, "", errcode.Wrap(apiv1.CodeBadResponse, err, "decode the desired state")
	}
	return &out, h.Get("ETag"), nil
}

// PutStatus uploads the machine's extension and guest configuration status.
func (m *Machine) PutStatus(ctx context.Context, st apiv1.MachineStatus) error {
	a, err := m.assertion()
	if err != nil {
		return err
	}
	_, _, err = m.c.call(ctx, http.MethodPut, m.path("/status"), nil, a, nil, st, nil)
	return err
}

// Token asks for a managed-identity token for resource (the audience).
func (m *Machine) Token(ctx context.Context, resource string) (apiv1.TokenResponse, error) {
	var out apiv1.TokenResponse
	a, err := m.assertion()
	if err != nil {
		return out, err
	}
	_, _, err = m.c.call(ctx, http.MethodPost, m.path("/token"), url.Values{"resource": {resource}}, a, nil, nil, &out)
	return out, err
}

// Delete deletes the machine's own resource on the server (disconnect).
// The machine key is refused from then on.
func (m *Machine) Delete(ctx context.Context) error {
	a, err := m.assertion()
	if err != nil {
		return err
	}
	_, _, err = m.c.call(ctx, http.MethodDelete, m.path("/self"), nil, a, nil, nil, nil)
	return err
}

// DownloadPackage streams the package with digest sha256 (one the
// machine's desired state names) into w. At most maxSize bytes are
// accepted: a longer body is an error, never a truncated package. The
// caller checks the digest of what was written.
func (m *Machine) DownloadPackage(ctx context.Context, sha256 string, w io.Writer, maxSize int64) (int64, error) {
	a, err := m.assertion()
	if err != nil {
		return 0, err
	}
	return m.c.stream(ctx, m.path("/packages/"+url.PathEscape(sha256)), a, w, maxSize)
}

// PackageSignature fetches the DSSE envelope published with the package
// with digest sha256, at most maxSize bytes.
func (m *Machine) PackageSignature(ctx context.Context, sha256 string, maxSize int64) ([]byte, error) {
	a, err := m.assertion()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := m.c.stream(ctx, m.path("/packages/"+url.PathEscape(sha256)+"/signature"), a, &buf, maxSize); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
