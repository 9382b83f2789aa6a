//go:build !windows

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/netcheck"
)

// tlsServer is an HTTPS server answering status, whose certificate
// (signed by the returned CA) is valid until notAfter.
func tlsServer(t *testing.T, notAfter time.Time, status int) (*httptest.Server, []byte) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "check test CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(72 * time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	s.Config.ErrorLog = nil
	s.StartTLS()
	t.Cleanup(s.Close)
	return s, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheck runs `arcagent check` against a real arcserver and against
// each kind of failure: each has its own code and message, and exit 1.
func TestCheck(t *testing.T) {
	cp := startControlPlane(t, t.TempDir())
	caFile := writeTemp(t, "ca.pem", cp.ca)
	expired, expiredCA := tlsServer(t, time.Now().Add(-24*time.Hour), http.StatusOK)
	expiredCAFile := writeTemp(t, "expired-ca.pem", expiredCA)
	_, otherCA := tlsServer(t, time.Now().Add(time.Hour), http.StatusOK)
	failing, failingCA := tlsServer(t, time.Now().Add(time.Hour), http.StatusBadGateway)
	bothFile := writeTemp(t, "both.pem", append(append([]byte{}, cp.ca...), failingCA...))
	otherCAFile := writeTemp(t, "other-ca.pem", otherCA)
	closed := freeLoopbackAddr(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not on the allowlist", http.StatusForbidden)
	}))
	t.Cleanup(refusing.Close)

	for _, tc := range []struct {
		name   string
		args   []string
		proxy  string // HTTPS_PROXY
		exit   int
		code   string // every result's code
		msg    string
		stderr string
	}{
		{name: "fine", args: []string{"--server", cp.url(), "--ca-file", caFile}, exit: 0, msg: "reachable"},
		{name: "dns", args: []string{"--server", "https://arcserver.nothing.invalid:8443"}, exit: 1, code: "ARC0521", msg: "DNS: arcserver.nothing.invalid does not resolve"},
		{name: "closed port", args: []string{"--server", "https://" + closed, "--ca-file", caFile}, exit: 1, code: "ARC0522", msg: "TCP: the port is closed: " + closed + " refuses connections"},
		{name: "wrong CA", args: []string{"--server", cp.url(), "--ca-file", otherCAFile}, exit: 1, code: "ARC0523", msg: "TLS: the certificate is not signed by the configured CA"},
		{name: "expired", args: []string{"--server", expired.URL, "--ca-file", expiredCAFile}, exit: 1, code: "ARC0524", msg: "TLS: the certificate expired on"},
		{name: "proxy down", args: []string{"--server", cp.url(), "--ca-file", caFile}, proxy: "http://" + closed, exit: 1, code: "ARC0526", msg: "proxy down: the proxy " + closed + " does not accept connections"},
		{name: "proxy refuses CONNECT", args: []string{"--server", cp.url(), "--ca-file", caFile}, proxy: refusing.URL, exit: 1, code: "ARC0527", msg: "refuses CONNECT to " + cp.addr + ": 403 Forbidden"},
		{name: "http error", args: []string{"--server", cp.url(), "--ca-file", bothFile, "--endpoint", failing.URL + "/ext"}, exit: 1, msg: "HTTP error: GET /ext answered 502 Bad Gateway"},
		{name: "--ca-file without --server", args: []string{"--ca-file", caFile}, exit: 2, stderr: "--ca-file goes with --server"},
		{name: "bad server URL", args: []string{"--server", "http://plain:80"}, exit: 2, stderr: "is not valid: use https://HOST:PORT"},
		{name: "bad endpoint", args: []string{"--server", cp.url(), "--endpoint", "ftp://x"}, exit: 2, stderr: `endpoint "ftp://x" is not valid`},
		{name: "not connected", args: nil, exit: 2, stderr: "this machine is not connected: pass --server URL"},
		{name: "bad proxy", args: []string{"--server", cp.url()}, proxy: "socks5://127.0.0.1:1", exit: 2, stderr: `HTTPS_PROXY "socks5://127.0.0.1:1" is not an http:// or https:// proxy URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HTTPS_PROXY", tc.proxy)
			root := t.TempDir()
			out, stderr, code := runCLI(t, append([]string{"--root", root, "check", "-j", "--timeout", "5s"}, tc.args...)...)
			if code != tc.exit {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.exit, out, stderr)
			}
			if tc.exit == 2 {
				if !strings.Contains(stderr, tc.stderr) || out != "" {
					t.Errorf("stderr %q, want %q; stdout %q", stderr, tc.stderr, out)
				}
				return
			}
			var rep netcheck.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Results) < 3 {
				t.Fatalf("check -j: %v\n%s", err, out)
			}
			found := false
			for _, r := range rep.Results {
				if tc.code != "" && string(r.Code) != tc.code {
					t.Errorf("%s: code %q, want %q (%s)", r.Endpoint, r.Code, tc.code, r.Message)
				}
				found = found || strings.Contains(r.Message, tc.msg)
			}
			if !found {
				t.Errorf("no result says %q: %s", tc.msg, out)
			}
			if tc.exit == 1 && !strings.Contains(stderr, "ARC0520") {
				t.Errorf("stderr %q does not name ARC0520", stderr)
			}
			if tc.name == "fine" {
				for _, r := range rep.Results {
					if !r.Reachable || r.TLSVersion != "TLS 1.3" || r.DaysToExpiry == nil || *r.DaysToExpiry < 1 || len(r.Steps) != 4 {
						t.Errorf("fine result %+v", r)
					}
				}
			}
		})
	}

	t.Run("table", func(t *testing.T) {
		out, _, code := runCLI(t, "--root", t.TempDir(), "check", "--server", cp.url(), "--ca-file", otherCAFile)
		if code != 1 || !strings.Contains(out, "ENDPOINT") || !strings.Contains(out, "token issuer") || !strings.Contains(out, "tls FAIL") || !strings.Contains(out, "ARC0523") {
			t.Errorf("exit %d, table:\n%s", code, out)
		}
	})

	// connect runs the check first: a failed check stops it with the
	// table and connect's exit status; after connect, check reads
	// agentconfig.json and the stored server CA.
	t.Run("connect", func(t *testing.T) {
		rg, secret := cp.onboarding(t, 2)
		root := t.TempDir()
		out, stderr, code := runCLI(t, "--root", root, "connect", "--server", cp.url(), "--ca-file", otherCAFile, "--resource-group", rg, "--onboarding-token", secret)
		if code != 3 || !strings.Contains(out, "ARC0523") || !strings.Contains(stderr, "ARC0529") {
			t.Fatalf("connect with the wrong CA: exit %d\n%s%s", code, out, stderr)
		}
		if _, err := os.Stat(filepath.Join(root, "var/opt/azcmagent/agentconfig.json")); err == nil {
			t.Fatal("connect wrote agentconfig.json after a failed check")
		}
		out, stderr, code = runCLI(t, "--root", root, "connect", "--server", cp.url(), "--ca-file", otherCAFile, "--resource-group", rg, "--onboarding-token", secret, "--ignore-network-check")
		if code == 0 || strings.Contains(stderr, "ARC0529") {
			t.Fatalf("connect --ignore-network-check with the wrong CA must fail at registration, not at the check: exit %d\n%s%s", code, out, stderr)
		}
		if out, stderr, code = runCLI(t, "--root", root, "connect", "--server", cp.url(), "--ca-file", caFile, "--resource-group", rg, "--onboarding-token", secret); code != 0 {
			t.Fatalf("connect: exit %d\n%s%s", code, out, stderr)
		}
		out, stderr, code = runCLI(t, "--root", root, "check")
		if code != 0 || strings.Count(out, "reachable") != 3 {
			t.Fatalf("check after connect: exit %d\n%s%s", code, out, stderr)
		}
	})
}

// TestCheckThroughTinyproxy checks a real arcserver through a real
// upstream proxy (HTTPS_PROXY, the arc proxy off): reachable, a port the
// proxy refuses, a proxy asking for credentials — each named as the
// proxy's doing. Credentials never go in HTTPS_PROXY: the agent refuses
// them there, as every service does (they belong in the arc proxy's
// credentials file; the arc proxy end-to-end test checks through it).
func TestCheckThroughTinyproxy(t *testing.T) {
	cp := startControlPlane(t, t.TempDir())
	caFile := writeTemp(t, "ca.pem", cp.ca)
	_, cpPort, _ := net.SplitHostPort(cp.addr)
	tmp := worldTraversableTemp(t)
	plain := startTinyproxy(t, filepath.Join(tmp, "plain"), tinyproxyOptions{ConnectPort: cpPort})
	auth := startTinyproxy(t, filepath.Join(tmp, "auth"), tinyproxyOptions{User: "ops", Pass: "s3cret-pw", ConnectPort: cpPort})
	proxy, logFile, authProxy := plain.addr, plain.log, auth.addr
	other, otherCA := tlsServer(t, time.Now().Add(time.Hour), http.StatusOK)
	bothFile := writeTemp(t, "both.pem", append(append([]byte{}, cp.ca...), otherCA...))
	for _, tc := range []struct {
		name, proxyURL string
		args           []string
		exit           int
		msg            string
	}{
		{name: "reachable", proxyURL: "http://" + proxy, args: []string{"--ca-file", caFile}, exit: 0, msg: "reachable"},
		{name: "no credentials", proxyURL: "http://" + authProxy, args: []string{"--ca-file", caFile}, exit: 1,
			msg: "the proxy " + authProxy + " refuses CONNECT to " + cp.addr + ": 407 Proxy Authentication Required: it asks for credentials and sent none"},
		{name: "credentials in HTTPS_PROXY", proxyURL: "http://ops:s3cret-pw@" + authProxy, args: []string{"--ca-file", caFile}, exit: 2, msg: ""},
		{name: "port not allowed", proxyURL: "http://" + proxy, args: []string{"--ca-file", bothFile, "--endpoint", other.URL + "/x"}, exit: 1,
			msg: "the proxy " + proxy + " refuses CONNECT to " + other.Listener.Addr().String() + ": 403"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HTTPS_PROXY", tc.proxyURL)
			out, stderr, code := runCLI(t, append([]string{"--root", t.TempDir(), "check", "-j", "--server", cp.url()}, tc.args...)...)
			if tc.exit == 2 && !strings.Contains(stderr, "ARC0502") {
				t.Fatalf("credentials in HTTPS_PROXY: exit %d %s%s, want ARC0502", code, out, stderr)
			}
			if code != tc.exit || !strings.Contains(out, tc.msg) {
				t.Fatalf("exit %d, want %d with %q\n%s%s", code, tc.exit, tc.msg, out, stderr)
			}
			if strings.Contains(out+stderr, "s3cret-pw") || strings.Contains(out+stderr, "wrong@") {
				t.Errorf("the proxy credentials are in the output:\n%s%s", out, stderr)
			}
		})
	}
	waitUntil(t, "tinyproxy's log to name the control plane", func() bool {
		data, _ := os.ReadFile(logFile)
		return strings.Contains(string(data), "CONNECT "+cp.addr)
	})
}
