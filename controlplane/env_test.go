package controlplane_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/testutil"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a real arcserver on a loopback port over TLS, with an Owner.
type env struct {
	t      *testing.T
	dir    string
	url    string
	srv    *controlplane.Server
	st     store.Store
	clock  *clock
	caPEM  []byte
	hc     *http.Client
	client *cloud.Client
	owner  *cloud.Operator
	ownerT string
	logs   *testutil.Buffer
}

// envDatabase, when set, gives newEnv a PostgreSQL database instead of
// the data directory's SQLite file (onPostgres sets it).
var envDatabase func(t testing.TB) string

func newEnv(t testing.TB) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv with tune applied to the server's Config.
func newEnvWith(t testing.TB, tune func(*controlplane.Config)) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	database := ""
	if envDatabase != nil {
		database = envDatabase(t)
	}
	res, err := controlplane.Init(ctx, controlplane.InitOptions{DataDir: dir, Database: database})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	st, err := controlplane.OpenStoreAt(ctx, dir, database)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: dir, st: st, clock: &clock{t: time.Now().UTC().Truncate(time.Second)}, ownerT: res.OwnerToken, logs: &testutil.Buffer{}}
	if tt, ok := t.(*testing.T); ok {
		e.t = tt
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// On PostgreSQL the server keeps the replica-shared state in the
	// database, as Serve does there.
	cfg := controlplane.Config{Store: st, Now: e.clock.Now, Logger: log, DataDir: dir, Exclusive: database == ""}
	if tune != nil {
		tune(&cfg)
	}
	e.srv, err = controlplane.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, controlplane.TLSCertFile), filepath.Join(dir, controlplane.TLSKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "https://" + ln.Addr().String()
	e.srv.SetIssuer(e.url)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- controlplane.RunHTTPS(sctx, e.srv, ln, cert, 5*time.Second, log, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		st.Close()
	})
	e.caPEM, err = os.ReadFile(filepath.Join(dir, controlplane.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.caPEM)
	e.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	e.client, err = cloud.New(e.url, cloud.Options{HTTPClient: e.hc})
	if err != nil {
		t.Fatal(err)
	}
	e.owner = e.client.Operator(res.OwnerToken)
	return e
}

// raw sends a request and returns status, headers and decoded error body.
func (e *env) raw(method, path, auth, contentType string, body io.Reader) (int, http.Header, apiv1.Error, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ae apiv1.Error
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(b, &ae); err != nil || ae.Code == "" || ae.Message == "" {
			e.t.Errorf("%s %s: HTTP %d body is not a {code, message} error: %q", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, resp.Header, ae, b
}

// scope creates a subscription and resource groups, returning the sub id.
func (e *env) scope(name string, groups ...string) string {
	e.t.Helper()
	ctx := context.Background()
	sub, err := e.owner.CreateSubscription(ctx, apiv1.CreateSubscriptionRequest{DisplayName: name, Tags: apiv1.Tags{"env": "test"}})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, g := range groups {
		if _, err := e.owner.CreateResourceGroup(ctx, sub.SubID, apiv1.CreateResourceGroupRequest{Name: g}); err != nil {
			e.t.Fatal(err)
		}
	}
	return sub.SubID
}

// onboarding creates a credential and returns its secret.
func (e *env) onboarding(sub, rg string, uses int, expires string) apiv1.OnboardingCredential {
	e.t.Helper()
	c, err := e.owner.CreateOnboarding(context.Background(), apiv1.CreateOnboardingRequest{SubscriptionID: sub, ResourceGroup: rg, ExpiresIn: expires, Uses: uses})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

type testMachine struct {
	reg apiv1.Registration
	key *ecdsa.PrivateKey
	m   *cloud.Machine
}

func inventory(host string) apiv1.Inventory {
	return apiv1.Inventory{Hostname: host, OSType: "linux", OSName: "Ubuntu", OSVersion: "24.04", AgentVersion: "0.1.0"}
}

// register registers a machine named host with secret.
func (e *env) register(secret, host string) (testMachine, error) {
	key, err := cloud.GenerateKey()
	if err != nil {
		e.t.Fatal(err)
	}
	reg, err := e.client.Register(context.Background(), secret, key, apiv1.RegisterRequest{Inventory: inventory(host)})
	if err != nil {
		return testMachine{}, err
	}
	m := e.client.Machine(reg.MachineID, reg.Audience, key)
	m.Now = e.clock.Now
	return testMachine{reg: reg, key: key, m: m}, nil
}

func (e *env) mustRegister(sub, rg, host string) testMachine {
	e.t.Helper()
	tm, err := e.register(e.onboarding(sub, rg, 1, "1h").Secret, host)
	if err != nil {
		e.t.Fatal(err)
	}
	return tm
}

// operatorFor creates a principal with one role assignment and returns its
// operator client.
func (e *env) operatorFor(principal, role, scope string) *cloud.Operator {
	e.t.Helper()
	ctx := context.Background()
	if role != "" {
		if _, err := e.owner.AssignRole(ctx, apiv1.CreateRoleAssignmentRequest{Principal: principal, Role: role, Scope: scope}); err != nil {
			e.t.Fatal(err)
		}
	}
	tok, err := e.owner.CreateAPIToken(ctx, apiv1.CreateAPITokenRequest{Principal: principal})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.client.Operator(tok.Token)
}

func wantCode(t *testing.T, err error, status int, code errcode.Code, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want HTTP %d %s, got success", status, code)
	}
	if got := cloud.StatusOf(err); got != status {
		t.Fatalf("want HTTP %d, got %d (%v)", status, got, err)
	}
	if got := string(cloud.CodeOf(err)); got != string(code) {
		t.Fatalf("want code %s, got %s (%v)", code, got, err)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Fatalf("error %q does not mention %q", err, c)
		}
	}
}
