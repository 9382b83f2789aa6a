package netcheck

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arcagent/arcagent/errcode"
)

// testCA is a CA that signs leaf certificates for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "netcheck test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf issues a certificate for 127.0.0.1 valid from notBefore to notAfter.
func (ca *testCA) leaf(t testing.TB, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: notBefore, NotAfter: notAfter, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serve starts an HTTPS server with cert answering status on every path.
func serve(t testing.TB, cert tls.Certificate, status int) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// connectProxy is a loopback HTTP proxy: it tunnels CONNECT when allow
// says so and answers 403 otherwise; it counts the tunnels.
func connectProxy(t *testing.T, allow func(host string) bool, tunnels *atomic.Int32) *url.URL {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || !allow(r.Host) {
			http.Error(w, "destination not allowed", http.StatusForbidden)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer up.Close()
		c, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
		tunnels.Add(1)
		if buf.Reader.Buffered() > 0 {
			b, _ := buf.Reader.Peek(buf.Reader.Buffered())
			_, _ = up.Write(b)
		}
		go func() { _, _ = io.Copy(up, c) }()
		_, _ = io.Copy(c, up)
	}))
	t.Cleanup(s.Close)
	u, _ := url.Parse(s.URL)
	return u
}

func TestRun(t *testing.T) {
	ca := newCA(t)
	other := newCA(t)
	now := time.Now()
	good := serve(t, ca.leaf(t, now.Add(-time.Hour), now.Add(30*24*time.Hour+time.Hour)), http.StatusOK)
	expired := serve(t, ca.leaf(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour-time.Minute)), http.StatusOK)
	failing := serve(t, ca.leaf(t, now.Add(-time.Hour), now.Add(24*time.Hour)), http.StatusInternalServerError)
	var tunnels atomic.Int32
	open := connectProxy(t, func(string) bool { return true }, &tunnels)
	refusing := connectProxy(t, func(string) bool { return false }, &tunnels)
	down, _ := url.Parse("http://" + closedPort(t))

	for _, tc := range []struct {
		name       string
		url        string
		ca         []byte
		proxy      *url.URL
		code       errcode.Code
		msg        string
		steps      string
		days       int
		hasDays    bool
		wantTunnel bool
	}{
		{name: "fine", url: good.URL + "/healthz", ca: ca.pem, steps: "dns tcp tls http", days: 30, hasDays: true},
		{name: "fine through a proxy", url: good.URL + "/healthz", ca: ca.pem, proxy: open, steps: "proxy connect tls http", days: 30, hasDays: true, wantTunnel: true},
		{name: "dns", url: "https://arcserver.nothing.invalid/healthz", ca: ca.pem, code: CodeDNS, msg: "DNS: arcserver.nothing.invalid does not resolve", steps: "dns"},
		{name: "closed port", url: "https://" + closedPort(t) + "/healthz", ca: ca.pem, code: CodeTCP, msg: "the port is closed", steps: "dns tcp"},
		{name: "wrong CA", url: good.URL + "/healthz", ca: other.pem, code: CodeTLSUntrusted, msg: "not signed by the configured CA (issued by CN=netcheck test CA)", steps: "dns tcp tls", days: 30, hasDays: true},
		{name: "system roots", url: good.URL + "/healthz", code: CodeTLSUntrusted, msg: "not signed by the system roots", steps: "dns tcp tls", days: 30, hasDays: true},
		{name: "expired", url: expired.URL + "/healthz", ca: ca.pem, code: CodeTLSExpired, msg: "TLS: the certificate expired on", steps: "dns tcp tls", days: -2, hasDays: true},
		{name: "http error", url: failing.URL + "/healthz", ca: ca.pem, code: CodeHTTP, msg: "HTTP error: GET /healthz answered 500 Internal Server Error", steps: "dns tcp tls http", days: 0, hasDays: true},
		{name: "proxy down", url: good.URL + "/healthz", ca: ca.pem, proxy: down, code: CodeProxyDown, msg: "proxy down: the proxy " + down.Host + " does not accept connections", steps: "proxy"},
		{name: "proxy refuses CONNECT", url: good.URL + "/healthz", ca: ca.pem, proxy: refusing, code: CodeProxyRefused, msg: "refuses CONNECT to " + good.Listener.Addr().String() + ": 403 Forbidden", steps: "proxy connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tunnels.Load()
			rep := Run(context.Background(), Options{Endpoints: []Endpoint{{Name: "api", URL: tc.url, OK: func(s int) bool { return s == 200 }}}, CAPEM: tc.ca, Proxy: tc.proxy, Timeout: 10 * time.Second})
			if len(rep.Results) != 1 {
				t.Fatalf("results: %+v", rep.Results)
			}
			r := rep.Results[0]
			var steps []string
			for _, s := range r.Steps {
				steps = append(steps, s.Name)
			}
			if got := strings.Join(steps, " "); got != tc.steps {
				t.Errorf("steps %q, want %q (%+v)", got, tc.steps, r)
			}
			if r.Code != tc.code || r.Reachable != (tc.code == "") || rep.OK() != (tc.code == "") {
				t.Errorf("code %q reachable %v, want %q: %s", r.Code, r.Reachable, tc.code, r.Message)
			}
			if tc.code == "" {
				if r.TLSVersion != "TLS 1.3" || r.HTTPStatus != 200 || rep.Err() != nil {
					t.Errorf("fine result %+v", r)
				}
			} else {
				if !strings.Contains(r.Message, tc.msg) {
					t.Errorf("message %q, want it to contain %q", r.Message, tc.msg)
				}
				if !errcode.Is(rep.Err(), CodeUnreachable) || !strings.Contains(rep.Err().Error(), r.Message) {
					t.Errorf("Err() = %v", rep.Err())
				}
			}
			if (r.DaysToExpiry != nil) != tc.hasDays || (tc.hasDays && tc.days != 0 && *r.DaysToExpiry != tc.days) {
				t.Errorf("days to expiry %v, want %d (set %v)", r.DaysToExpiry, tc.days, tc.hasDays)
			}
			if got := tunnels.Load() > before; got != tc.wantTunnel {
				t.Errorf("tunnelled %v, want %v", got, tc.wantTunnel)
			}
		})
	}
}

func TestBadCABundle(t *testing.T) {
	rep := Run(context.Background(), Options{Endpoints: Endpoints("https://127.0.0.1:1", ""), CAPEM: []byte("not pem")})
	if len(rep.Results) != 3 || rep.OK() || rep.Results[0].Code != CodeTLSUntrusted {
		t.Fatalf("%+v", rep)
	}
}

func TestEndpoints(t *testing.T) {
	eps := Endpoints("https://cp:8443/", "https://issuer:9000", "https://ext.example:443/x")
	want := []string{"https://cp:8443/healthz", "https://issuer:9000/.well-known/openid-configuration", "https://cp:8443/v1/packages", "https://ext.example:443/x"}
	if len(eps) != len(want) {
		t.Fatalf("%+v", eps)
	}
	for i, e := range eps {
		if e.URL != want[i] {
			t.Errorf("endpoint %d: %s, want %s", i, e.URL, want[i])
		}
	}
	if !eps[2].OK(401) || eps[0].OK(401) {
		t.Error("the package repository accepts 401 (reached without a token); the API does not")
	}
}

func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep := Run(ctx, Options{Endpoints: Endpoints("https://127.0.0.1:1", "")})
	if rep.OK() {
		t.Fatal("a canceled check reported reachable")
	}
}
