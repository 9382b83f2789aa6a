package loadgen

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// The load generator speaks the wire API (controlplane/apiv1) with its own
// small client rather than the agent's (agent/cloud): the control plane
// never imports agent code (internal/deptest keeps it so), and a simulated
// machine needs only registration, assertions and heartbeats.

// client sends JSON requests to one server.
type client struct {
	base string
	http *http.Client
}

// call sends one request with a bearer credential; body (if not nil) goes
// as JSON and out (if not nil) receives the JSON response.
func (c *client) call(ctx context.Context, method, path, auth string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("build the request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "arcserver-loadgen")
	req.Header.Set("Authorization", "Bearer "+auth)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read the response: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		var e apiv1.Error
		if json.Unmarshal(data, &e) != nil || e.Code == "" {
			return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
		}
		return fmt.Errorf("%s %s: HTTP %d: %s: %s", method, path, resp.StatusCode, e.Code, e.Message)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode the response: %w", method, path, err)
		}
	}
	return nil
}

// Machine is one registered simulated machine.
type Machine struct {
	ID       string
	Audience string
	Key      *ecdsa.PrivateKey

	sessOnce sync.Once
	sess     tls.ClientSessionCache
}

// sessions is the machine's own TLS session cache (one ticket: an agent
// talks to one server).
func (m *Machine) sessions() tls.ClientSessionCache {
	m.sessOnce.Do(func() { m.sess = tls.NewLRUClientSessionCache(1) })
	return m.sess
}

func (c *client) register(ctx context.Context, credential string, name string) (*Machine, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate a machine key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("encode a machine public key: %w", err)
	}
	req := apiv1.RegisterRequest{Name: name, PublicKey: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		Inventory: apiv1.Inventory{Hostname: name, OSType: "linux", AgentVersion: "0.0.0-loadgen"}}
	var reg apiv1.Registration
	if err := c.call(ctx, http.MethodPost, "/v1/machines/register", credential, req, &reg); err != nil {
		return nil, err
	}
	return &Machine{ID: reg.MachineID, Audience: reg.Audience, Key: key}, nil
}

// assertion signs an assertion as a machine does: iss = sub = machine id,
// the server's audience, a random jti, iat = now, exp = now + lifetime.
func (m *Machine) assertion(now time.Time, lifetime time.Duration) (string, error) {
	var j [16]byte
	if _, err := rand.Read(j[:]); err != nil {
		return "", fmt.Errorf("generate an assertion id: %w", err)
	}
	claims := jwt.RegisteredClaims{
		Issuer: m.ID, Subject: m.ID, Audience: jwt.ClaimStrings{m.Audience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(lifetime)),
		ID: base64.RawURLEncoding.EncodeToString(j[:]),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(m.Key)
	if err != nil {
		return "", fmt.Errorf("sign an assertion: %w", err)
	}
	return s, nil
}

// heartbeat sends one heartbeat with assertion a (signed now if empty).
func (c *client) heartbeat(ctx context.Context, m *Machine, a string) error {
	if a == "" {
		var err error
		if a, err = m.assertion(time.Now(), assertionLifetime); err != nil {
			return err
		}
	}
	var out apiv1.HeartbeatResponse
	ctx = context.WithValue(ctx, machineKey{}, m)
	return c.call(ctx, http.MethodPost, "/v1/machines/"+url.PathEscape(m.ID)+"/heartbeat", a, nil, &out)
}

// assertionLifetime is what the agent's client uses for its assertions.
const assertionLifetime = 2 * time.Minute

func newClient(serverURL string, hc *http.Client) (*client, error) {
	u, err := url.Parse(strings.TrimRight(serverURL, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server URL %q is not valid: use https://HOST:PORT", serverURL)
	}
	return &client{base: u.String(), http: hc}, nil
}
