package proxy

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/internal/testutil"
)

// backend is an HTTPS server that counts the connections it accepted.
type backend struct {
	*httptest.Server
	conns atomic.Int64
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from "+r.Host)
	}))
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	b.StartTLS()
	t.Cleanup(b.Close)
	return b
}

// world is a layout with a localconfig.json, an arc proxy serving it on
// loopback, and clients routed to it.
type world struct {
	t      *testing.T
	l      layout.Layout
	srv    *Server
	proxy  *httptest.Server
	logs   *testutil.Buffer
	server string // the control plane URL
	ca     []byte
}

func newWorld(t *testing.T, server string, ca []byte, local string, opts ...func(*Options)) *world {
	t.Helper()
	root := t.TempDir()
	l := layout.New(root)
	if err := os.MkdirAll(l.StateDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.LocalConfig(), []byte(local), 0o640); err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, l: l, logs: &testutil.Buffer{}, server: server, ca: ca}
	o := Options{Layout: l, Log: testLogger(w.logs), LoadServer: func() (string, error) { return w.server, nil }, DialTimeout: 5 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	w.srv = New(o)
	on, err := w.srv.Reload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !on {
		t.Fatal("the proxy is off")
	}
	w.proxy = httptest.NewServer(w.srv)
	t.Cleanup(w.proxy.Close)
	t.Setenv(EnvAddr, strings.TrimPrefix(w.proxy.URL, "http://"))
	return w
}

// get fetches u through the arc proxy, as the agent's services do.
func (w *world) get(u string) (string, error) {
	w.t.Helper()
	settings, _, err := config.NewStore(w.l).Load()
	if err != nil {
		w.t.Fatal(err)
	}
	tr, err := Transport(w.l, settings, w.server)
	if err != nil {
		w.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(w.ca)
	tr.TLSClientConfig.RootCAs = pool
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	res, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

func caOf(t *testing.T, s *httptest.Server) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

func TestProxyAllowsAndRefuses(t *testing.T) {
	cp := newBackend(t)
	other := newBackend(t)
	extra := newBackend(t)
	_, extraPort, _ := net.SplitHostPort(strings.TrimPrefix(extra.URL, "https://"))
	w := newWorld(t, cp.URL, caOf(t, cp.Server), `{"connection.type": "gateway", "proxy.allowed": ["127.0.0.1:`+extraPort+`"]}`)

	body, err := w.get(cp.URL + "/v1/x")
	if err != nil || !strings.HasPrefix(body, "hello") {
		t.Fatalf("the control plane through the arc proxy: %q %v", body, err)
	}
	w.ca = caOf(t, extra.Server)
	if body, err := w.get(extra.URL); err != nil || !strings.HasPrefix(body, "hello") {
		t.Fatalf("a proxy.allowed endpoint: %q %v", body, err)
	}

	// Not on the list: 403, named in the client's error, logged, never connected.
	w.ca = caOf(t, other.Server)
	_, err = w.get(other.URL)
	dest := strings.TrimPrefix(other.URL, "https://")
	if err == nil || !strings.Contains(err.Error(), "arc proxy") || !strings.Contains(err.Error(), "not on the egress allowlist") || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a destination not on the list: %v", err)
	}
	if n := other.conns.Load(); n != 0 {
		t.Fatalf("the refused destination got %d connections", n)
	}
	if !strings.Contains(w.logs.String(), "not on the egress allowlist") || !strings.Contains(w.logs.String(), dest) {
		t.Fatalf("the refusal is not logged with its destination:\n%s", w.logs)
	}

	// Raw CONNECTs: IP literals, hosts the matching must not confuse.
	for _, tc := range []struct {
		authority string
		code      int
	}{
		{"127.0.0.2:" + extraPort, 403}, // another loopback IP, same port
		{"[::ffff:127.0.0.3]:" + extraPort, 403},
		{"2130706433:" + extraPort, 400}, // numeric name
		{"evil.example.test:" + extraPort, 403},
		{"127.0.0.1", 400}, // no port
		{"127.0.0.1:" + extraPort + "@evil.example.test:443", 400},
		{"*.example.test:443", 400},
	} {
		if code := rawConnect(t, w.proxy.URL, tc.authority); code != tc.code {
			t.Errorf("CONNECT %s: %d, want %d", tc.authority, code, tc.code)
		}
	}

	// Plain HTTP is not forwarded.
	res, err := http.Get(w.proxy.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("a GET: %d", res.StatusCode)
	}
}

// rawConnect sends one CONNECT and returns the status.
func rawConnect(t *testing.T, proxyURL, authority string) int {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(proxyURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority)
	res, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", authority, err)
	}
	res.Body.Close()
	return res.StatusCode
}

// upstreamStub answers every CONNECT with status (a refusing upstream).
func upstreamStub(t *testing.T, status int, gotAuth *atomic.Value) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth.Store(r.Header.Get("Proxy-Authorization"))
		w.Header().Set("Proxy-Authenticate", `Basic realm="corp"`)
		w.WriteHeader(status)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestProxyUpstreamRefusalsAndBypass(t *testing.T) {
	cp := newBackend(t)
	var gotAuth atomic.Value
	up := upstreamStub(t, http.StatusProxyAuthRequired, &gotAuth)

	// No credentials configured: the client learns where they go.
	w := newWorld(t, cp.URL, caOf(t, cp.Server), `{"proxy.url": "`+up.URL+`"}`)
	_, err := w.get(cp.URL)
	if err == nil || !strings.Contains(err.Error(), "upstream proxy "+up.URL) || !strings.Contains(err.Error(), "requires credentials") {
		t.Fatalf("407 without credentials: %v", err)
	}
	if cp.conns.Load() != 0 {
		t.Fatal("the control plane was reached around the upstream")
	}

	// Wrong credentials: the upstream proxy is named, the secret is not.
	const secret = "n0t-the-password"
	credFile := filepath.Join(t.TempDir(), "proxy-credentials")
	if err := os.WriteFile(credFile, []byte("arc:"+secret+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	w = newWorld(t, cp.URL, caOf(t, cp.Server), `{"proxy.url": "`+up.URL+`"}`, func(o *Options) { o.CredentialsFile = credFile })
	_, err = w.get(cp.URL)
	if err == nil || !strings.Contains(err.Error(), "upstream proxy "+up.URL) || !strings.Contains(err.Error(), "refused the credentials") {
		t.Fatalf("407 with credentials: %v", err)
	}
	if a, _ := gotAuth.Load().(string); a != "Basic YXJjOm4wdC10aGUtcGFzc3dvcmQ=" {
		t.Fatalf("Proxy-Authorization sent: %q", a)
	}
	if strings.Contains(w.logs.String(), secret) || strings.Contains(err.Error(), secret) || strings.Contains(w.logs.String(), "YXJjOm4wdC10aGUtcGFzc3dvcmQ") {
		t.Fatal("the credentials leaked into a log or an error")
	}
	if !strings.Contains(w.logs.String(), "the upstream proxy refused the credentials") {
		t.Fatalf("no log line for the refused credentials:\n%s", w.logs)
	}

	// A world-readable credentials file is refused.
	if err := os.Chmod(credFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Layout: w.l, CredentialsFile: credFile, LoadServer: func() (string, error) { return cp.URL, nil }}).Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "every user") {
		t.Fatalf("world-readable credentials: %v", err)
	}

	// Bypass Arc: the control plane goes direct, the upstream is not asked.
	gotAuth.Store("untouched")
	w = newWorld(t, cp.URL, caOf(t, cp.Server), `{"proxy.url": "`+up.URL+`", "proxy.bypass": ["Arc"]}`)
	if body, err := w.get(cp.URL); err != nil || !strings.HasPrefix(body, "hello") {
		t.Fatalf("bypass Arc: %q %v", body, err)
	}
	if a, _ := gotAuth.Load().(string); a != "untouched" {
		t.Fatal("the upstream was asked for a bypassed destination")
	}

	// The upstream is down: the error names it.
	dead := freeAddr(t)
	w = newWorld(t, cp.URL, caOf(t, cp.Server), `{"proxy.url": "http://`+dead+`"}`)
	if _, err := w.get(cp.URL); err == nil || !strings.Contains(err.Error(), "cannot reach the upstream proxy http://"+dead) {
		t.Fatalf("upstream down: %v", err)
	}
}

func testLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func TestProxyOffAndReload(t *testing.T) {
	root := t.TempDir()
	l := layout.New(root)
	if err := os.MkdirAll(l.StateDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, local := range []string{`{}`, `{"connection.type": "direct", "proxy.url": "http://corp.test:3128"}`, `{"connection.type": "default"}`} {
		if err := os.WriteFile(l.LocalConfig(), []byte(local), 0o640); err != nil {
			t.Fatal(err)
		}
		on, err := New(Options{Layout: l}).Reload(context.Background())
		if err != nil || on {
			t.Fatalf("%s: on=%v err=%v", local, on, err)
		}
	}
	// On, then a change of localconfig.json turns it off: Run says so.
	if err := os.WriteFile(l.LocalConfig(), []byte(`{"connection.type": "gateway"}`), 0o640); err != nil {
		t.Fatal(err)
	}
	s := New(Options{Layout: l, ReloadEvery: 20 * time.Millisecond})
	if on, err := s.Reload(context.Background()); err != nil || !on {
		t.Fatalf("gateway: on=%v err=%v", on, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	if err := os.WriteFile(l.LocalConfig(), []byte(`{"connection.type": "direct"}`), 0o640); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != ErrOff {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop when the proxy was turned off")
	}
}

// dnsServer answers every A query with addr, on a loopback UDP port.
func dnsServer(t *testing.T, addr netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			if q.Type == dnsmessage.TypeA {
				_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}, dnsmessage.AResource{A: addr.As4()})
			}
			out, _ := b.Finish()
			_, _ = pc.WriteTo(out, from)
		}
	}()
	dnsAddr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", dnsAddr)
	}}
}

// TestProxyNameRebound: a name on the allowlist that resolves to a
// loopback address (HIMDS, the arc proxy itself) is refused: the proxy
// checks the addresses it resolved and dials those, never the name again.
func TestProxyNameRebound(t *testing.T) {
	victim := newBackend(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(victim.URL, "https://"))
	res := dnsServer(t, netip.MustParseAddr("127.0.0.1"))
	w := newWorld(t, "", nil, `{"connection.type": "gateway", "proxy.allowed": ["pkg.example.test:`+port+`"]}`, func(o *Options) { o.Resolver = res })
	if code := rawConnect(t, w.proxy.URL, "pkg.example.test:"+port); code != http.StatusForbidden {
		t.Fatalf("a listed name resolving to loopback: %d", code)
	}
	if victim.conns.Load() != 0 {
		t.Fatal("the loopback service was reached through a rebound name")
	}
	if !strings.Contains(w.logs.String(), "addresses are not allowed") {
		t.Fatalf("not logged:\n%s", w.logs)
	}
}

// TestProxyTunnelLimit: with one tunnel open, a second gets 503 until the
// first closes.
func TestProxyTunnelLimit(t *testing.T) {
	cp := newBackend(t)
	w := newWorld(t, cp.URL, caOf(t, cp.Server), `{"connection.type": "gateway"}`, func(o *Options) { o.MaxTunnels = 1 })
	dest := strings.TrimPrefix(cp.URL, "https://")
	c, err := net.Dial("tcp", strings.TrimPrefix(w.proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", dest, dest)
	res, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("first tunnel: %v %v", res, err)
	}
	if code := rawConnect(t, w.proxy.URL, dest); code != http.StatusServiceUnavailable {
		t.Fatalf("second tunnel while the first is open: %d", code)
	}
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rawConnect(t, w.proxy.URL, dest) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the slot was not given back when the tunnel closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tlsUpstream is an https:// forward proxy: CONNECT over TLS, then bytes
// spliced to the destination. It records what it was asked for.
func tlsUpstream(t *testing.T, asked *atomic.Value) *httptest.Server {
	t.Helper()
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Store(r.Method + " " + r.Host)
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		_ = brw.Flush()
		go func() { _, _ = io.Copy(up, brw); up.Close() }()
		_, _ = io.Copy(conn, up)
		conn.Close()
	}))
	t.Cleanup(s.Close)
	return s
}

func TestProxyHTTPSUpstream(t *testing.T) {
	cp := newBackend(t)
	var asked atomic.Value
	up := tlsUpstream(t, &asked)
	pool := x509.NewCertPool()
	pool.AddCert(up.Certificate())
	w := newWorld(t, cp.URL, caOf(t, cp.Server), `{"proxy.url": "`+up.URL+`"}`, func(o *Options) { o.UpstreamRoots = pool })
	if body, err := w.get(cp.URL); err != nil || !strings.HasPrefix(body, "hello") {
		t.Fatalf("through an https:// upstream: %q %v", body, err)
	}
	if a, _ := asked.Load().(string); a != "CONNECT "+strings.TrimPrefix(cp.URL, "https://") {
		t.Fatalf("the upstream was asked %q", a)
	}
	// An upstream whose certificate is not trusted is named in the error.
	w = newWorld(t, cp.URL, caOf(t, cp.Server), `{"proxy.url": "`+up.URL+`"}`)
	if _, err := w.get(cp.URL); err == nil || !strings.Contains(err.Error(), "cannot open TLS to the upstream proxy "+up.URL) {
		t.Fatalf("untrusted upstream: %v", err)
	}
}
