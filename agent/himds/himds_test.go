//go:build !windows

package himds

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeCP is a control plane double: heartbeat, self and token.
type fakeCP struct {
	srv        *httptest.Server
	mode       atomic.Value // "", "down", "expired"
	tokenCalls atomic.Int64
	heartbeats atomic.Int64
	tokenLife  atomic.Int64 // seconds
	clock      *clock
	// hbMu guards hbBodies, the heartbeat bodies received; refuseInv makes
	// the double answer 400 to a body with an inventory, as an arcserver
	// older than the field does (it decodes strictly).
	hbMu      sync.Mutex
	hbBodies  []string
	refuseInv atomic.Bool
}

func newFakeCP(t testing.TB, c *clock) *fakeCP {
	f := &fakeCP{clock: c}
	f.mode.Store("")
	f.tokenLife.Store(3600)
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch f.mode.Load().(string) {
		case "down":
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		case "expired":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(apiv1.Error{Code: string(apiv1.CodeMachineExpired), Message: "machine expired"})
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/heartbeat"):
			b, _ := io.ReadAll(r.Body)
			f.hbMu.Lock()
			f.hbBodies = append(f.hbBodies, string(b))
			f.hbMu.Unlock()
			if f.refuseInv.Load() && strings.Contains(string(b), `"inventory"`) {
				w.WriteHeader(http.StatusBadRequest)
				_ = json.NewEncoder(w).Encode(apiv1.Error{Code: string(apiv1.CodeBadRequest), Message: `the request body has an unknown field "inventory"`})
				return
			}
			f.heartbeats.Add(1)
			_ = json.NewEncoder(w).Encode(apiv1.HeartbeatResponse{Status: apiv1.StatusConnected, HeartbeatSeconds: 300})
		case strings.HasSuffix(r.URL.Path, "/self"):
			_ = json.NewEncoder(w).Encode(apiv1.Machine{Name: "web01", Location: "lab", Tags: apiv1.Tags{"env": "prod"}})
		case strings.HasSuffix(r.URL.Path, "/token"):
			n := f.tokenCalls.Add(1)
			exp := f.clock.now().Add(time.Duration(f.tokenLife.Load()) * time.Second)
			_ = json.NewEncoder(w).Encode(apiv1.TokenResponse{AccessToken: "tok-" + strconv.FormatInt(n, 10), ExpiresOn: strconv.FormatInt(exp.Unix(), 10),
				ExpiresIn: strconv.FormatInt(f.tokenLife.Load(), 10), TokenType: "Bearer", Resource: r.URL.Query().Get("resource")})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

type fixture struct {
	l     layout.Layout
	svc   *Service
	api   *httptest.Server
	cp    *fakeCP
	clock *clock
}

func newFixture(t testing.TB, mutate func(*Options)) *fixture {
	t.Helper()
	c := &clock{t: time.Now()}
	cp := newFakeCP(t, c)
	l := layout.New(t.TempDir())
	for _, d := range []string{l.CertsDir(), l.TokensDir(), l.RunDir()} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	key, _ := cloud.GenerateKey()
	kp, _ := cloud.MarshalPrivateKey(key)
	if err := os.WriteFile(l.MachineKey(), kp, 0o600); err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cp.srv.Certificate().Raw})
	if err := os.WriteFile(l.ServerCA(), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteAgentConfig(l, &AgentConfig{MachineID: "m-1", ResourceID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.HybridCompute/machines/web01",
		Name: "web01", SubscriptionID: "s", ResourceGroup: "g", Server: cp.srv.URL, Audience: "aud", OSType: "Linux"}); err != nil {
		t.Fatal(err)
	}
	o := Options{Layout: l, Now: c.now, BackoffMin: 10 * time.Millisecond, ReloadEvery: 20 * time.Millisecond}
	if mutate != nil {
		mutate(&o)
	}
	svc, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	// What Run does first, for tests that call the handlers without Run.
	if err := svc.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(svc.Handler())
	t.Cleanup(api.Close)
	return &fixture{l: l, svc: svc, api: api, cp: cp, clock: c}
}

const tokenPath = "/metadata/identity/oauth2/token?api-version=2020-06-01&resource=https%3A%2F%2Fmanagement.azure.com%2F"

func (f *fixture) get(t *testing.T, path string, hdr map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.api.URL+path, nil)
	req.Header.Set("Metadata", "true")
	for k, v := range hdr {
		if v == "<delete>" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := f.api.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	return resp, body
}

// challenge runs the first leg and returns the secret file's path.
func (f *fixture) challenge(t *testing.T, path string) string {
	t.Helper()
	resp, body := f.get(t, path, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("first leg: %d %v", resp.StatusCode, body)
	}
	realm, ok := strings.CutPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=")
	if !ok {
		t.Fatalf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
	}
	return realm
}

func (f *fixture) token(t *testing.T, path string) (*http.Response, map[string]any) {
	t.Helper()
	secret, err := os.ReadFile(f.challenge(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return f.get(t, path, map[string]string{"Authorization": "Basic " + string(secret)})
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name   string
		path   string
		hdr    map[string]string
		status int
		want   string
	}{
		{"no Metadata header", tokenPath, map[string]string{"Metadata": "<delete>"}, 400, "metadata header"},
		{"Metadata false", "/metadata/instance?api-version=2021-02-01", map[string]string{"Metadata": "false"}, 400, "metadata header"},
		{"X-Forwarded-For on token", tokenPath, map[string]string{"X-Forwarded-For": "10.0.0.9"}, 400, "X-Forwarded-For"},
		{"X-Forwarded-For on metadata", "/metadata/instance?api-version=2021-02-01", map[string]string{"X-Forwarded-For": "127.0.0.1"}, 400, "X-Forwarded-For"},
		{"Forwarded on token", tokenPath, map[string]string{"Forwarded": "for=192.0.2.60;proto=http"}, 400, "(Forwarded)"},
		{"Forwarded on metadata", "/metadata/instance?api-version=2021-02-01", map[string]string{"Forwarded": "for=127.0.0.1"}, 400, "(Forwarded)"},
		{"Via on token", tokenPath, map[string]string{"Via": "1.1 squid"}, 400, "(Via)"},
		{"Via on agentstatus", "/agentstatus", map[string]string{"Via": "1.0 fred"}, 400, "(Via)"},
		{"empty Via", tokenPath, map[string]string{"Via": ""}, 400, "(Via)"},
		{"unknown api-version", "/metadata/identity/oauth2/token?api-version=2099-01-01&resource=x", nil, 400, "not supported"},
		{"no api-version", "/metadata/instance", nil, 400, "api-version is required"},
		{"no resource", "/metadata/identity/oauth2/token?api-version=2020-06-01", nil, 400, "resource is required"},
		{"user-assigned identity", tokenPath + "&client_id=abc", nil, 400, "user-assigned"},
		{"wrong secret", tokenPath, map[string]string{"Authorization": "Basic 0123456789abcdef"}, 401, "wrong, already used or expired"},
		{"not Basic", tokenPath, map[string]string{"Authorization": "Bearer x"}, 401, "wrong, already used or expired"},
		{"unknown path", "/metadata/nothing?api-version=2020-06-01", nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.get(t, tc.path, tc.hdr)
			desc, _ := body["error_description"].(string)
			if resp.StatusCode != tc.status || !strings.Contains(strings.ToLower(desc), strings.ToLower(tc.want)) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, desc, tc.status, tc.want)
			}
			if resp.StatusCode != 401 && resp.Header.Get("WWW-Authenticate") != "" {
				t.Error("a refused request must not get a challenge")
			}
		})
	}
	t.Run("DNS-rebound Host", func(t *testing.T) {
		for _, host := range []string{"attacker.example:40342", "attacker.example", "127.0.0.1.nip.io"} {
			req, _ := http.NewRequest(http.MethodGet, f.api.URL+"/metadata/instance?api-version=2021-02-01", nil)
			req.Header.Set("Metadata", "true")
			req.Host = host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 403 {
				t.Errorf("Host %s: %d, want 403", host, resp.StatusCode)
			}
		}
	})
	t.Run("POST", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, f.api.URL+tokenPath, nil)
		req.Header.Set("Metadata", "true")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Errorf("POST: %d", resp.StatusCode)
		}
	})
	t.Run("not loopback", func(t *testing.T) {
		for _, remote := range []string{"10.1.2.3:5555", "[2001:db8::1]:80", "garbage"} {
			r := httptest.NewRequest(http.MethodGet, tokenPath, nil)
			r.RemoteAddr = remote
			r.Header.Set("Metadata", "true")
			w := httptest.NewRecorder()
			f.svc.Handler().ServeHTTP(w, r)
			if w.Code != http.StatusForbidden {
				t.Errorf("%s: %d", remote, w.Code)
			}
		}
	})
	if n := f.svc.ch.outstanding(); n != 0 {
		t.Errorf("refused requests left %d challenges", n)
	}
}

func TestChallengeFlow(t *testing.T) {
	f := newFixture(t, nil)
	realm := f.challenge(t, tokenPath)
	if filepath.Dir(realm) != f.l.TokensDir() || filepath.Ext(realm) != ".key" {
		t.Fatalf("realm %s is not a .key file in %s", realm, f.l.TokensDir())
	}
	fi, err := os.Stat(realm)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 || fi.Size() > MaxSecretFileSize || fi.Size() == 0 {
		t.Errorf("secret file mode %v size %d", fi.Mode().Perm(), fi.Size())
	}
	secret, _ := os.ReadFile(realm)
	auth := map[string]string{"Authorization": "Basic " + string(secret)}
	resp, body := f.get(t, tokenPath, auth)
	if resp.StatusCode != 200 {
		t.Fatalf("second leg: %d %v", resp.StatusCode, body)
	}
	for _, k := range []string{"access_token", "expires_on", "expires_in", "token_type", "resource"} {
		if _, ok := body[k].(string); !ok {
			t.Errorf("%s is %T, want a string", k, body[k])
		}
	}
	if body["resource"] != "https://management.azure.com/" || body["token_type"] != "Bearer" {
		t.Errorf("body %v", body)
	}
	if resp, _ := f.get(t, tokenPath, auth); resp.StatusCode != 401 {
		t.Errorf("reused secret: %d", resp.StatusCode)
	}

	// A redeemed secret's file is gone at once, and the next challenge
	// gets a new file under a new name.
	if _, err := os.Lstat(realm); !os.IsNotExist(err) {
		t.Errorf("the redeemed realm %s still exists: %v", realm, err)
	}
	used := realm
	realm = f.challenge(t, tokenPath)
	if realm == used {
		t.Fatal("a new challenge got the realm of a used one")
	}
	secret2, _ := os.ReadFile(realm)
	if len(secret2) != len(secret) || string(secret2) == string(secret) {
		t.Errorf("the new file holds %q, want a new secret of the same length", secret2)
	}
	if resp, _ := f.get(t, tokenPath, map[string]string{"Authorization": "Basic " + string(secret2)}); resp.StatusCode != 200 {
		t.Errorf("second secret: %d", resp.StatusCode)
	}

	// An expired secret is refused, and its file is gone after a sweep.
	realm = f.challenge(t, tokenPath)
	secret, _ = os.ReadFile(realm)
	f.clock.add(DefaultChallengeTTL + time.Second)
	if resp, _ := f.get(t, tokenPath, map[string]string{"Authorization": "Basic " + string(secret)}); resp.StatusCode != 401 {
		t.Errorf("expired secret: %d", resp.StatusCode)
	}
	f.svc.ch.sweep()
	if _, err := os.Stat(realm); !os.IsNotExist(err) {
		t.Error("an expired secret file must be removed")
	}
	// Expired secrets nobody redeems are swept.
	realm = f.challenge(t, tokenPath)
	f.clock.add(DefaultChallengeTTL)
	f.svc.ch.sweep()
	if _, err := os.Stat(realm); !os.IsNotExist(err) || f.svc.ch.outstanding() != 0 {
		t.Error("sweep must remove expired secrets")
	}
}

func TestTokenCache(t *testing.T) {
	f := newFixture(t, nil)
	_, b1 := f.token(t, tokenPath)
	_, b2 := f.token(t, tokenPath)
	if b1["access_token"] != b2["access_token"] || f.cp.tokenCalls.Load() != 1 {
		t.Fatalf("cache miss: %v %v calls=%d", b1["access_token"], b2["access_token"], f.cp.tokenCalls.Load())
	}
	_, b3 := f.token(t, tokenPath+"&bypass_cache=true")
	if b3["access_token"] == b1["access_token"] || f.cp.tokenCalls.Load() != 2 {
		t.Errorf("bypass_cache=true must fetch a fresh token")
	}
	// Another resource is another token.
	_, b4 := f.token(t, "/metadata/identity/oauth2/token?api-version=2020-06-01&resource=api://other")
	if b4["resource"] != "api://other" || f.cp.tokenCalls.Load() != 3 {
		t.Errorf("other resource: %v", b4)
	}
	// Five minutes before expiry the cached token is no longer served.
	f.clock.add(time.Hour - CacheMargin + time.Second)
	_, b5 := f.token(t, tokenPath)
	if b5["access_token"] == b3["access_token"] || f.cp.tokenCalls.Load() != 4 {
		t.Errorf("a token within 5 minutes of expiry was served from the cache")
	}
	in, _ := strconv.Atoi(b5["expires_in"].(string))
	if in < 3500 || in > 3600 {
		t.Errorf("expires_in %d", in)
	}
}

func TestHeartbeatAndDisconnectedServer(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if err := f.svc.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.svc.agentStatus(); st.Status != StatusConnected || st.LastHeartbeat == nil {
		t.Fatalf("after a heartbeat: %+v", st)
	}
	sf, err := LoadStatus(f.l)
	if err != nil || sf == nil || sf.Status != StatusConnected || sf.MachineID != "m-1" {
		t.Fatalf("status file %+v %v", sf, err)
	}
	_, tok := f.token(t, tokenPath)

	f.cp.mode.Store("down")
	if err := f.svc.Heartbeat(ctx); err == nil {
		t.Fatal("heartbeat to a server that is down succeeded")
	}
	st := f.svc.agentStatus()
	if st.Status != StatusDisconnected || st.LastError == "" || !strings.Contains(st.Remedy, "retries") {
		t.Errorf("server down: %+v", st)
	}
	// Cached metadata and valid cached tokens are still served.
	if resp, body := f.get(t, "/metadata/instance?api-version=2021-02-01", nil); resp.StatusCode != 200 || body["compute"].(map[string]any)["name"] != "web01" {
		t.Errorf("metadata while disconnected: %d %v", resp.StatusCode, body)
	}
	if resp, body := f.token(t, tokenPath); resp.StatusCode != 200 || body["access_token"] != tok["access_token"] {
		t.Errorf("cached token while disconnected: %d %v", resp.StatusCode, body)
	}
	// bypass_cache=true while the server is down falls back to the valid cached token.
	if resp, body := f.token(t, tokenPath+"&bypass_cache=true"); resp.StatusCode != 200 || body["access_token"] != tok["access_token"] {
		t.Errorf("bypass while disconnected: %d %v", resp.StatusCode, body)
	}
	if resp, body := f.token(t, "/metadata/identity/oauth2/token?api-version=2020-06-01&resource=api://uncached"); resp.StatusCode != 503 {
		t.Errorf("uncached token while disconnected: %d %v", resp.StatusCode, body)
	}
	// And it recovers on its own.
	f.cp.mode.Store("")
	if err := f.svc.Heartbeat(ctx); err != nil || f.svc.agentStatus().Status != StatusConnected {
		t.Errorf("recovery: %v %s", err, f.svc.agentStatus().Status)
	}
}

func TestHeartbeatLoopBacksOff(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.HeartbeatInterval = time.Hour; o.BackoffMax = 40 * time.Millisecond })
	f.cp.mode.Store("down")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.svc.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for f.svc.agentStatus().Status != StatusDisconnected && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	f.cp.mode.Store("")
	for f.svc.agentStatus().Status != StatusConnected && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if f.svc.agentStatus().Status != StatusConnected {
		t.Fatalf("the loop did not recover: %+v", f.svc.agentStatus())
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		n        int
		min, max time.Duration
	}{{1, 10 * time.Second, 5 * time.Minute}, {2, 10 * time.Second, 5 * time.Minute}, {5, 10 * time.Second, 5 * time.Minute}, {30, 10 * time.Second, 5 * time.Minute}} {
		want := tc.min << (tc.n - 1)
		if tc.n > 10 || want > tc.max {
			want = tc.max
		}
		for i := 0; i < 50; i++ {
			if d := Backoff(tc.n, tc.min, tc.max); d < want/2 || d > want {
				t.Fatalf("Backoff(%d) = %s, want in [%s, %s]", tc.n, d, want/2, want)
			}
		}
	}
	for i := 0; i < 50; i++ {
		if d := jitter(5 * time.Minute); d < 270*time.Second || d > 330*time.Second {
			t.Fatalf("jitter(5m) = %s", d)
		}
	}
}

func TestExpired(t *testing.T) {
	f := newFixture(t, nil)
	f.cp.mode.Store("expired")
	_ = f.svc.Heartbeat(context.Background())
	st := f.svc.agentStatus()
	if st.Status != StatusExpired || !strings.Contains(st.Remedy, "arcagent connect") {
		t.Fatalf("expired: %+v", st)
	}
	resp, body := f.token(t, tokenPath)
	if resp.StatusCode != 403 || body["error"] != "identity_expired" || !strings.Contains(body["error_description"].(string), "disconnect --force-local-only") {
		t.Errorf("token when expired: %d %v", resp.StatusCode, body)
	}
	if sf, _ := LoadStatus(f.l); sf == nil || sf.Status != StatusExpired {
		t.Errorf("status file %+v", sf)
	}
}

func TestStatusAt(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		age  time.Duration
		want string
	}{{time.Minute, StatusConnected}, {14 * time.Minute, StatusConnected}, {16 * time.Minute, StatusDisconnected}, {44 * 24 * time.Hour, StatusDisconnected}, {46 * 24 * time.Hour, StatusExpired}} {
		if got := StatusAt(now.Add(-tc.age), now); got != tc.want {
			t.Errorf("age %s: %s, want %s", tc.age, got, tc.want)
		}
	}
}

func TestReloadsLocalConfigAndRegistration(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := os.WriteFile(f.l.LocalConfig(), []byte(`{"proxy.url":"http://proxy.example:3128"}`), 0o640); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return f.svc.Info().ProxyURL == "http://proxy.example:3128" }, "proxy.url reload")
	// Disconnected locally: the service notices and stops serving tokens.
	if err := os.Remove(f.l.AgentConfig()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return f.svc.agentStatus().Status == StatusNotConnected }, "agentconfig.json removal")
	if resp, _ := f.get(t, tokenPath, nil); resp.StatusCode != 404 {
		t.Errorf("token without a registration: %d", resp.StatusCode)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestAdminSocket(t *testing.T) {
	f := newFixture(t, nil)
	sock := filepath.Join(t.TempDir(), "a.sock")
	srv := httptest.NewUnstartedServer(f.svc.AdminHandler())
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Config.ConnContext = AdminConnContext
	srv.Start()
	defer srv.Close()
	c := NewAdminClient(sock)
	in, err := c.Info(context.Background())
	if err != nil || in.MachineID != "m-1" || in.Source != "himds" || len(in.Services) != 4 {
		t.Fatalf("info %+v %v", in, err)
	}
	if in, err = c.Reload(context.Background()); err != nil || in.MachineID != "m-1" {
		t.Fatalf("reload %+v %v", in, err)
	}
	if _, err := NewAdminClient(filepath.Join(t.TempDir(), "none.sock")).Info(context.Background()); !errcode.Is(err, CodeDaemonUnreachable) {
		t.Errorf("no daemon: %v", err)
	}
	fromFiles, err := InfoFromFiles(f.l, time.Now())
	if err != nil || fromFiles.Source != "files" || fromFiles.MachineID != "m-1" {
		t.Errorf("from files %+v %v", fromFiles, err)
	}
}

func TestNotConnectedService(t *testing.T) {
	l := layout.New(t.TempDir())
	if err := os.MkdirAll(l.TokensDir(), 0o710); err != nil {
		t.Fatal(err)
	}
	svc, err := New(Options{Layout: l})
	if err != nil {
		t.Fatal(err)
	}
	must(t, svc.start(context.Background()))
	if err := svc.Heartbeat(context.Background()); err != errNotConnected {
		t.Errorf("heartbeat: %v", err)
	}
	api := httptest.NewServer(svc.Handler())
	defer api.Close()
	req, _ := http.NewRequest("GET", api.URL+"/agentstatus", nil)
	req.Header.Set("Metadata", "true")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st AgentStatus
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Status != StatusNotConnected || !strings.Contains(st.Remedy, "connect") {
		t.Errorf("agentstatus %+v", st)
	}
	svc, err = New(Options{Layout: layout.New(t.TempDir())})
	if err != nil {
		t.Fatalf("New does no I/O, yet: %v", err)
	}
	if err := svc.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "tokens directory") {
		t.Errorf("Run with a missing tokens directory: %v, want an error naming it", err)
	}
}

// New reads and writes nothing: the first load is Run's. A request that
// arrives before it waits for it instead of being told the machine is not
// connected, and one that arrives when Run failed gets 503.
func TestNewDoesNoIO(t *testing.T) {
	f := newFixture(t, nil) // a connected machine
	root := t.TempDir()
	l := layout.New(root)
	svc, err := New(Options{Layout: l, ReloadEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(root, "*")); len(m) != 0 {
		t.Fatalf("New created %v", m)
	}
	api := httptest.NewServer(svc.Handler())
	defer api.Close()
	got := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/metadata/instance?api-version=2021-02-01", nil)
		req.Header.Set("Metadata", "true")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	select {
	case code := <-got:
		t.Fatalf("a request before Run was answered %d", code)
	case <-time.After(50 * time.Millisecond):
	}
	// The machine's files appear (connect), then Run loads them.
	must(t, os.CopyFS(root, os.DirFS(f.l.Root())))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	if code := <-got; code != http.StatusOK {
		t.Errorf("the request that waited for the first load got %d, want 200", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Run that cannot load: waiting requests get 503.
	svc, err = New(Options{Layout: layout.New(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	api2 := httptest.NewServer(svc.Handler())
	defer api2.Close()
	if err := svc.Run(context.Background()); err == nil {
		t.Fatal("Run without a tokens directory succeeded")
	}
	req, _ := http.NewRequest(http.MethodGet, api2.URL+"/agentstatus", nil)
	req.Header.Set("Metadata", "true")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after a failed Run: %d, want 503", resp.StatusCode)
	}
}

// Redeemed secrets leave no file behind.
func TestChallengeRemovalLeavesNoFiles(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.svc.Run(ctx); close(done) }()
	for i := 0; i < 100; i++ {
		if resp, body := f.token(t, tokenPath); resp.StatusCode != 200 {
			t.Fatalf("token %d: %d %v", i, resp.StatusCode, body)
		}
	}
	if n := f.svc.ch.outstanding(); n != 0 {
		t.Errorf("%d challenges outstanding", n)
	}
	cancel()
	<-done
	if m, _ := filepath.Glob(filepath.Join(f.l.TokensDir(), "*.key")); len(m) != 0 {
		t.Errorf("%d secret files left after Run returned", len(m))
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:40342": true, "localhost:40342": true, "LOCALHOST": true, "[::1]:40342": true, "127.0.0.2": true, "[::1]": true,
		"attacker.example:40342": false, "10.0.0.1:40342": false, "": false, "localhost.evil:1": false, "0.0.0.0:40342": false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// A tokens directory replaced while HIMDS runs is picked up again: realms
// always name files that exist.
func TestTokensDirReplaced(t *testing.T) {
	f := newFixture(t, nil)
	if resp, _ := f.get(t, tokenPath, nil); resp.StatusCode != 401 {
		t.Fatalf("challenge: %d", resp.StatusCode)
	}
	dir := f.svc.ch.dir
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o710); err != nil {
		t.Fatal(err)
	}
	f.svc.ch.sweep()
	resp, _ := f.get(t, tokenPath, nil)
	realm := strings.TrimPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=")
	if _, err := os.Stat(realm); err != nil {
		t.Errorf("the realm names a file that does not exist: %v", err)
	}
}
