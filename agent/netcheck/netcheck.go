// Package netcheck checks that this machine reaches the endpoints the agent
// needs (`arcagent check`, and `connect` before it registers): for each one
// it resolves the name, connects TCP, handshakes TLS with the chain verified
// against the configured CA (reporting the protocol and the days left to the
// certificate's expiry), and sends one HTTP request. With a proxy, the
// proxy is its own step (reachable, CONNECT allowed) and the proxy resolves
// the name. Each failure carries its own error code and a message that says
// what to fix. Run does no retries and honours the context.
package netcheck

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/arcagent/arcagent/errcode"
)

// Step names, in the order they run.
const (
	StepDNS     = "dns"
	StepTCP     = "tcp"
	StepProxy   = "proxy"
	StepConnect = "connect"
	StepTLS     = "tls"
	StepHTTP    = "http"
)

// Endpoint is one URL the agent needs.
type Endpoint struct {
	Name string `json:"name"` // what it is, e.g. "control plane API"
	URL  string `json:"url"`  // https://host:port/path: the request check sends
	// OK says whether an HTTP status means the endpoint works; nil accepts
	// any status below 500.
	OK func(status int) bool `json:"-"`
}

// Options configure Run.
type Options struct {
	Endpoints []Endpoint
	// CAPEM is the PEM CA bundle the chains must verify against; empty
	// means the system roots.
	CAPEM []byte
	// Proxy is the HTTP proxy to go through (http://host:port, user
	// information sent as Basic credentials); nil means direct.
	Proxy *url.URL
	// Timeout bounds each endpoint; 0 means 10 seconds.
	Timeout time.Duration
	// UserAgent is sent with the request.
	UserAgent string
	// Now is the clock for certificate validity; nil means time.Now.
	Now func() time.Time
}

// StepResult is the outcome of one step.
type StepResult struct {
	Name    string        `json:"name"`
	OK      bool          `json:"ok"`
	Latency time.Duration `json:"latencyNs"`
	Detail  string        `json:"detail,omitempty"`
}

// Result is the outcome for one endpoint.
type Result struct {
	Endpoint   string        `json:"endpoint"`
	URL        string        `json:"url"`
	Proxy      string        `json:"proxy,omitempty"` // host:port of the proxy used
	Reachable  bool          `json:"reachable"`
	Steps      []StepResult  `json:"steps"`
	Latency    time.Duration `json:"latencyNs"`
	TLSVersion string        `json:"tlsVersion,omitempty"`
	// DaysToExpiry is the whole days until the leaf certificate expires
	// (negative once expired); nil when no certificate was seen.
	DaysToExpiry *int         `json:"daysToExpiry,omitempty"`
	HTTPStatus   int          `json:"httpStatus,omitempty"`
	Code         errcode.Code `json:"code,omitempty"`
	Message      string       `json:"message"`
}

// Report is the outcome of a check.
type Report struct {
	Results []Result `json:"results"`
}

// OK reports whether every endpoint is reachable.
func (r Report) OK() bool {
	for _, x := range r.Results {
		if !x.Reachable {
			return false
		}
	}
	return len(r.Results) > 0
}

// Err is nil when every endpoint is reachable, else an error with
// CodeUnreachable naming the failed endpoints.
func (r Report) Err() error {
	if r.OK() {
		return nil
	}
	var failed []Result
	for _, x := range r.Results {
		if !x.Reachable {
			failed = append(failed, x)
		}
	}
	if len(failed) == 0 {
		return errcode.New(CodeUnreachable, "no endpoint to check")
	}
	return &Failed{Report: r, err: errcode.New(CodeUnreachable, "%d of %d endpoints unreachable; the first, %s: %s",
		len(failed), len(r.Results), failed[0].Endpoint, failed[0].Message)}
}

// Failed is the error of a failed check: it keeps the report so that the
// caller can print the table.
type Failed struct {
	Report Report
	err    *errcode.Error
}

func (f *Failed) Error() string { return f.err.Error() }
func (f *Failed) Unwrap() error { return f.err }

// Endpoints returns the endpoints of a control plane: the API (/healthz),
// the token issuer (its discovery document; issuer empty means the server
// itself) and the package repository (/v1/packages, which answers 401
// without an operator token: reached is enough). extra are further URLs
// (extension endpoints), each checked with a GET of its URL.
func Endpoints(server, issuer string, extra ...string) []Endpoint {
	server = strings.TrimRight(server, "/")
	if issuer == "" {
		issuer = server
	}
	issuer = strings.TrimRight(issuer, "/")
	eps := []Endpoint{
		{Name: "control plane API", URL: server + "/healthz", OK: func(s int) bool { return s == http.StatusOK }},
		{Name: "token issuer", URL: issuer + "/.well-known/openid-configuration", OK: func(s int) bool { return s == http.StatusOK }},
		{Name: "package repository", URL: server + "/v1/packages", OK: func(s int) bool { return s == http.StatusOK || s == http.StatusUnauthorized }},
	}
	for _, e := range extra {
		eps = append(eps, Endpoint{Name: "extension endpoint", URL: e})
	}
	return eps
}

// Run checks every endpoint, one after the other.
func Run(ctx context.Context, o Options) Report {
	var rep Report
	var pool *x509.CertPool
	if len(o.CAPEM) > 0 {
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(o.CAPEM) {
			for _, e := range o.Endpoints {
				rep.Results = append(rep.Results, Result{Endpoint: e.Name, URL: e.URL, Code: CodeTLSUntrusted,
					Message: "the CA bundle holds no PEM certificate: nothing could be verified"})
			}
			return rep
		}
	}
	for _, e := range o.Endpoints {
		rep.Results = append(rep.Results, o.check(ctx, e, pool))
	}
	return rep
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 10 * time.Second
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// run times one step and records it.
func (r *Result) run(name string, f func() (string, error)) error {
	start := time.Now()
	detail, err := f()
	d := time.Since(start)
	r.Steps = append(r.Steps, StepResult{Name: name, OK: err == nil, Latency: d, Detail: detail})
	r.Latency += d
	return err
}

// fail records the first failure of r.
func (r *Result) fail(code errcode.Code, format string, args ...any) Result {
	r.Code = code
	r.Message = fmt.Sprintf(format, args...)
	return *r
}

func (o Options) check(ctx context.Context, e Endpoint, pool *x509.CertPool) Result {
	r := Result{Endpoint: e.Name, URL: e.URL}
	u, err := url.Parse(e.URL)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return r.fail(CodeTCP, "%q is not an https:// URL", e.URL)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	addr := net.JoinHostPort(host, port)
	ctx, cancel := context.WithTimeout(ctx, o.timeout())
	defer cancel()
	var d net.Dialer
	var conn net.Conn
	if o.Proxy != nil {
		paddr := proxyAddr(o.Proxy)
		r.Proxy = paddr
		if err := r.run(StepProxy, func() (string, error) {
			var err error
			conn, err = d.DialContext(ctx, "tcp", paddr)
			if err == nil && o.Proxy.Scheme == "https" {
				tc := tls.Client(conn, &tls.Config{ServerName: o.Proxy.Hostname(), MinVersion: tls.VersionTLS12})
				if err = tc.HandshakeContext(ctx); err != nil {
					conn.Close()
				}
				conn = tc
			}
			return paddr, err
		}); err != nil {
			return r.fail(CodeProxyDown, "proxy down: the proxy %s does not accept connections (%s)", paddr, reason(err))
		}
		defer conn.Close()
		var status string
		if err := r.run(StepConnect, func() (string, error) {
			var err error
			status, err = connect(ctx, conn, addr, o.Proxy)
			return status, err
		}); err != nil {
			var re *refusedError
			if errors.As(err, &re) && (re.code == http.StatusProxyAuthRequired || re.code == http.StatusUnauthorized) {
				creds := "sent none"
				if o.Proxy.User != nil {
					creds = "refused the ones sent"
				}
				return r.fail(CodeProxyRefused, "the proxy %s refuses CONNECT to %s: %s: it asks for credentials and %s", paddr, addr, re.status, creds)
			}
			if errors.As(err, &re) {
				return r.fail(CodeProxyRefused, "the proxy %s refuses CONNECT to %s: %s", paddr, addr, re.status)
			}
			return r.fail(CodeProxyDown, "the proxy %s did not answer the CONNECT to %s (%s)", paddr, addr, reason(err))
		}
	} else {
		var ips []string
		if err := r.run(StepDNS, func() (string, error) {
			var err error
			ips, err = net.DefaultResolver.LookupHost(ctx, host)
			return strings.Join(ips, ","), err
		}); err != nil {
			return r.fail(CodeDNS, "DNS: %s does not resolve (%s)", host, reason(err))
		}
		if err := r.run(StepTCP, func() (string, error) {
			var err error
			conn, err = d.DialContext(ctx, "tcp", addr)
			return addr, err
		}); err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return r.fail(CodeTCP, "TCP: the port is closed: %s refuses connections", addr)
			}
			return r.fail(CodeTCP, "TCP: cannot connect to %s (%s)", addr, reason(err))
		}
		defer conn.Close()
	}
	var leaf *x509.Certificate
	tc := &tls.Config{
		ServerName: host, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"},
		// The chain is verified below, against pool and the clock, so that
		// an expired certificate still reports its expiry.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			leaf = cs.PeerCertificates[0]
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: host, CurrentTime: o.now()})
			return err
		},
	}
	tconn := tls.Client(conn, tc)
	err = r.run(StepTLS, func() (string, error) {
		err := tconn.HandshakeContext(ctx)
		if err == nil {
			return tls.VersionName(tconn.ConnectionState().Version), nil
		}
		return "", err
	})
	if leaf != nil {
		days := int(leaf.NotAfter.Sub(o.now()).Hours() / 24)
		if leaf.NotAfter.Before(o.now()) {
			days = -int(o.now().Sub(leaf.NotAfter).Hours()/24) - 1
		}
		r.DaysToExpiry = &days
	}
	if err != nil {
		return o.tlsFailure(&r, err, leaf, pool)
	}
	r.TLSVersion = tls.VersionName(tconn.ConnectionState().Version)
	var status int
	if err := r.run(StepHTTP, func() (string, error) {
		var err error
		status, err = get(ctx, tconn, u, o.UserAgent)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d %s", status, http.StatusText(status)), nil
	}); err != nil {
		return r.fail(CodeHTTP, "HTTP: no answer to GET %s (%s)", u.Path, reason(err))
	}
	r.HTTPStatus = status
	ok := e.OK
	if ok == nil {
		ok = func(s int) bool { return s < 500 }
	}
	if !ok(status) {
		r.Steps[len(r.Steps)-1].OK = false
		return r.fail(CodeHTTP, "HTTP error: GET %s answered %d %s", u.Path, status, http.StatusText(status))
	}
	r.Reachable = true
	r.Message = "reachable"
	if r.DaysToExpiry != nil && *r.DaysToExpiry < 14 {
		r.Message = fmt.Sprintf("reachable; the certificate expires in %d days", *r.DaysToExpiry)
	}
	return r
}

func (o Options) tlsFailure(r *Result, err error, leaf *x509.Certificate, pool *x509.CertPool) Result {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	ca := "the system roots"
	if pool != nil {
		ca = "the configured CA"
	}
	switch {
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		if leaf != nil && o.now().Before(leaf.NotBefore) {
			return r.fail(CodeTLSExpired, "TLS: the certificate of %s is not valid before %s (check this machine's clock)", leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339))
		}
		if leaf != nil {
			return r.fail(CodeTLSExpired, "TLS: the certificate expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		return r.fail(CodeTLSExpired, "TLS: the certificate is expired")
	case errors.As(err, &ua):
		issuer := ""
		if leaf != nil {
			issuer = " (issued by " + leaf.Issuer.String() + ")"
		}
		return r.fail(CodeTLSUntrusted, "TLS: the certificate is not signed by %s%s: wrong CA, or something intercepts TLS", ca, issuer)
	case errors.As(err, &he):
		return r.fail(CodeTLS, "TLS: %s", he.Error())
	}
	return r.fail(CodeTLS, "TLS handshake failed: %s", reason(err))
}

// proxyAddr is host:port of a proxy URL (default port 80, or 443 for https).
func proxyAddr(p *url.URL) string {
	port := p.Port()
	if port == "" {
		port = "80"
		if p.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(p.Hostname(), port)
}

type refusedError struct {
	status string
	code   int
}

func (e *refusedError) Error() string { return "CONNECT refused: " + e.status }

// connect asks the proxy on conn for a tunnel to addr; net/http writes the
// request and parses the answer.
func connect(ctx context.Context, conn net.Conn, addr string, proxy *url.URL) (string, error) {
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: http.Header{}}
	if u := proxy.User; u != nil {
		pw, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)))
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if err := req.Write(conn); err != nil {
		return "", err
	}
	// The proxy's answer is read one byte at a time so that nothing of the
	// tunnel's TLS stream is buffered away from the handshake.
	resp, err := http.ReadResponse(bufio.NewReaderSize(byteReader{conn}, 16), req)
	if err != nil {
		return "", err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.Status, &refusedError{status: resp.Status, code: resp.StatusCode}
	}
	return resp.Status, nil
}

// byteReader reads at most one byte per call.
type byteReader struct{ c net.Conn }

func (b byteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return b.c.Read(p)
}

// get sends one GET for u on the TLS connection and returns the status.
func get(ctx context.Context, conn *tls.Conn, u *url.URL, ua string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, err
	}
	if ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	req.Close = true
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if err := req.Write(conn); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// reason is the innermost useful text of a network error.
func reason(err error) string {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		if dns.IsNotFound {
			return "no such host"
		}
		return dns.Err
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) {
		return "timed out"
	}
	return err.Error()
}
