package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/arcagent/arcagent/agent/daemon"

	"golang.org/x/net/http/httpproxy"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/saferead"
)

// ErrRestart is returned by Run when the configuration changed but the
// service user may not read it (it runs without group himds, so that it
// cannot read HIMDS's challenge secrets): the process exits with
// ExitRestart and its supervisor starts it again, as root, to read it.
var ErrRestart = errors.New("the configuration changed and only a restart can read it")

// ExitRestart is the exit status that asks systemd to start the arc proxy
// again (arcproxyd.service: Restart=on-failure).
const ExitRestart = 75

// ErrOff is returned by Run when the settings turn the arc proxy off.
var ErrOff = errors.New("the arc proxy is off: connection.type is not gateway and proxy.url is not set")

// Options configures a Server.
type Options struct {
	Layout layout.Layout
	Log    *slog.Logger
	// LoadServer returns the control plane URL of the registration, ""
	// when the machine is not connected. It is called on every reload.
	LoadServer func() (string, error)
	// Packages returns the package endpoints the control plane names
	// beyond its own host (URLs or host[:port]); nil means none, which is
	// the case today: packages come from the control plane itself.
	Packages func() []string
	// CredentialsFile holds the upstream's Basic credentials, user:password
	// on one line (default ROOT/var/opt/azcmagent/proxy-credentials). A
	// missing file means no credentials.
	CredentialsFile string
	// DialTimeout bounds resolving, connecting and the upstream's answer
	// to CONNECT (default 10s).
	DialTimeout time.Duration
	// ReloadEvery is how often Run looks for changes to localconfig.json,
	// agentconfig.json and the credentials (default 2s).
	ReloadEvery time.Duration
	// Resolver resolves destination names (default net.DefaultResolver).
	Resolver *net.Resolver
	// UpstreamRoots verifies an https:// upstream proxy (nil: the
	// system roots).
	UpstreamRoots *x509.CertPool
	// MaxTunnels bounds the tunnels open at once (default 256): any local
	// user may reach the proxy, none may hold all of its connections.
	MaxTunnels int
}

// state is one configuration of the proxy, swapped whole on reload.
type state struct {
	on       bool
	allow    *Allowlist
	bypass   []pattern
	upstream *url.URL                         // proxy.url
	env      func(*url.URL) (*url.URL, error) // HTTPS_PROXY when proxy.url is unset
	auth     string                           // base64 user:password, "" for none
	stamp    string
}

// Server is the arc proxy: an http.Handler for CONNECT requests.
type Server struct {
	o     Options
	log   *slog.Logger
	mu    sync.RWMutex
	st    *state
	cred  string // last credentials read, kept when a re-read is refused
	envPr httpproxy.Config
	slots chan struct{}
}

// New returns a server; it does no I/O (Reload does).
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.CredentialsFile == "" {
		o.CredentialsFile = o.Layout.Path(CredentialsFile)
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	if o.ReloadEvery <= 0 {
		o.ReloadEvery = 2 * time.Second
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.LoadServer == nil {
		o.LoadServer = func() (string, error) { return "", nil }
	}
	if o.MaxTunnels <= 0 {
		o.MaxTunnels = 256
	}
	return &Server{o: o, log: o.Log, envPr: *httpproxy.FromEnvironment(), slots: make(chan struct{}, o.MaxTunnels)}
}

func (s *Server) stamp() string {
	l := s.o.Layout
	return daemon.FileStamp(l.LocalConfig()) + "|" + daemon.FileStamp(l.AgentConfig()) + "|" + daemon.FileStamp(s.o.CredentialsFile)
}

// Reload reads localconfig.json, the control plane URL and the
// credentials, and swaps the configuration in. It reports whether the
// proxy is on. A configuration that cannot be read keeps the previous one.
func (s *Server) Reload(ctx context.Context) (bool, error) {
	stamp := s.stamp()
	settings, _, err := config.NewStore(s.o.Layout).Load()
	if err != nil {
		return s.On(), err
	}
	st := &state{on: On(settings), stamp: stamp}
	if !st.on {
		s.swap(st)
		return false, nil
	}
	server, err := s.o.LoadServer()
	if err != nil {
		return s.On(), err
	}
	var pk []string
	if s.o.Packages != nil {
		pk = s.o.Packages()
	}
	if st.allow, err = NewAllowlist(server, pk, settings.List(config.ProxyAllowed)); err != nil {
		return s.On(), err
	}
	if st.bypass, err = bypassPatterns(settings.List(config.ProxyBypass), server); err != nil {
		return s.On(), err
	}
	if p := settings.String(config.ProxyURL); p != "" {
		if st.upstream, err = ParseUpstream(p, "proxy.url"); err != nil {
			return s.On(), err
		}
	} else {
		if s.envPr.HTTPSProxy != "" {
			if _, err := ParseUpstream(s.envPr.HTTPSProxy, "HTTPS_PROXY"); err != nil {
				return s.On(), err
			}
		}
		st.env = s.envPr.ProxyFunc()
	}
	cred, err := s.readCredentials()
	if err != nil {
		if s.cred == "" {
			return s.On(), err
		}
		s.log.Warn("the upstream proxy credentials cannot be read again; keeping the ones read before", "file", s.o.CredentialsFile, "err", err)
		cred = s.cred
	}
	s.cred, st.auth = cred, cred
	s.swap(st)
	up := "direct"
	if st.upstream != nil {
		up = st.upstream.Redacted()
	} else if s.envPr.HTTPSProxy != "" {
		up = "HTTPS_PROXY"
	}
	s.log.Info("arc proxy configuration loaded", "allowed", strings.Join(st.allow.Entries(), ", "), "upstream", up,
		"bypass", strings.Join(settings.List(config.ProxyBypass), ","), "credentials", st.auth != "")
	return true, nil
}

// configPart is the part of a stamp that covers localconfig.json and
// agentconfig.json (the credentials file's comes last).
func configPart(stamp string) string {
	i := strings.LastIndexByte(stamp, '|')
	if i < 0 {
		return stamp
	}
	return stamp[:i]
}

// reloadCredentials reads the credentials file again into a copy of st.
func (s *Server) reloadCredentials(st *state) {
	cp := *st
	cp.stamp = s.stamp()
	cred, err := s.readCredentials()
	if err != nil {
		s.log.Warn("the upstream proxy credentials cannot be read again; keeping the ones read before", "file", s.o.CredentialsFile, "err", err)
	} else {
		s.cred, cp.auth = cred, cred
		s.log.Info("arc proxy credentials reloaded", "credentials", cred != "")
	}
	s.swap(&cp)
}

func (s *Server) swap(st *state) {
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
}

func (s *Server) state() *state {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st
}

// On reports whether the last configuration loaded turns the proxy on.
func (s *Server) On() bool {
	st := s.state()
	return st != nil && st.on
}

// readCredentials reads user:password from the credentials file, as
// base64 for a Proxy-Authorization header. A missing file is no
// credentials; a file others may read, or not a regular file, is refused.
func (s *Server) readCredentials() (string, error) {
	p := s.o.CredentialsFile
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", errcode.Wrap(CodeCredentials, err, "read the upstream proxy credentials")
	}
	if !fi.Mode().IsRegular() {
		return "", errcode.New(CodeCredentials, "%s is not a regular file", p)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return "", errcode.New(CodeCredentials, "%s can be read by every user (mode %04o): run `chmod 0640 %s` (root:arcproxy)", p, fi.Mode().Perm(), p)
	}
	b, err := saferead.File(p, 4096)
	if err != nil {
		return "", errcode.Wrap(CodeCredentials, err, "read the upstream proxy credentials")
	}
	line := strings.TrimSpace(string(bytes.SplitN(b, []byte("\n"), 2)[0]))
	user, _, ok := strings.Cut(line, ":")
	if !ok || user == "" || strings.ContainsAny(line, "\r\x00") {
		return "", errcode.New(CodeCredentials, "%s does not hold one line user:password", p)
	}
	return base64.StdEncoding.EncodeToString([]byte(line)), nil
}

// Run watches the configuration (every ReloadEvery) until ctx ends. It
// returns ErrOff when the settings turn the proxy off.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.o.ReloadEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if !s.On() {
			// Turned off by a SIGHUP reload.
			s.log.Info("the arc proxy was turned off (connection.type and proxy.url); stopping")
			return ErrOff
		}
		st := s.state()
		if st != nil && st.stamp == s.stamp() {
			continue
		}
		if st != nil && configPart(st.stamp) == configPart(s.stamp()) {
			// Only the credentials changed: read them in place (group
			// arcproxy may), whoever the process runs as.
			s.reloadCredentials(st)
			continue
		}
		on, err := s.Reload(ctx)
		if errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 {
			s.log.Info("the configuration changed; the service user may not read it: stopping to be started again", "err", err)
			return ErrRestart
		}
		if err != nil {
			s.log.Warn("the configuration changed and cannot be used; keeping the previous one", "err", err)
			// Do not retry the same broken state every tick.
			if st != nil {
				s.mu.Lock()
				cp := *s.st
				cp.stamp = s.stamp()
				s.st = &cp
				s.mu.Unlock()
			}
			continue
		}
		if !on {
			s.log.Info("the arc proxy was turned off (connection.type and proxy.url); stopping")
			return ErrOff
		}
	}
}

// refuse answers a request the proxy will not carry, marked as the arc
// proxy's own answer.
func refuse(w http.ResponseWriter, code int, msg string) {
	w.Header().Set(headerArcProxy, "refused")
	http.Error(w, msg, code)
}

// ServeHTTP carries CONNECT tunnels to allowed destinations.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	client := r.RemoteAddr
	if r.Method != http.MethodConnect {
		s.log.Warn("refused a request that is not CONNECT", "method", r.Method, "client", client)
		refuse(w, http.StatusMethodNotAllowed, "the arc proxy only tunnels HTTPS (CONNECT host:port); plain HTTP is not forwarded")
		return
	}
	st := s.state()
	if st == nil || !st.on {
		refuse(w, http.StatusServiceUnavailable, "the arc proxy is off")
		return
	}
	host, port, err := CanonicalDest(r.Host)
	if err != nil {
		s.log.Warn("refused a destination", "destination", safeLog(r.Host), "client", client, "reason", err)
		refuse(w, http.StatusBadRequest, "the arc proxy refused CONNECT: "+err.Error())
		return
	}
	dest := net.JoinHostPort(host, port)
	entry, ok := st.allow.Allows(host, port)
	if !ok {
		s.log.Warn("refused a destination that is not on the egress allowlist", "destination", dest, "client", client)
		refuse(w, http.StatusForbidden, fmt.Sprintf("the arc proxy refused %s: not on the egress allowlist (the control plane and proxy.allowed); an operator adds it with `arcagent config set proxy.allowed %s`", dest, dest))
		return
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		s.log.Warn("refused a tunnel: too many open", "destination", dest, "client", client, "max", s.o.MaxTunnels)
		refuse(w, http.StatusServiceUnavailable, fmt.Sprintf("the arc proxy has %d tunnels open, its limit: try again later", s.o.MaxTunnels))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.DialTimeout)
	up, via, err := s.dial(ctx, st, entry, host, port)
	cancel()
	if err != nil {
		var re *refusal
		if errors.As(err, &re) {
			s.log.Warn(re.log, "destination", dest, "client", client, "via", via, "err", re.msg)
			refuse(w, re.code, re.msg)
			return
		}
		s.log.Warn("cannot reach a destination", "destination", dest, "client", client, "via", via, "err", err)
		refuse(w, http.StatusBadGateway, fmt.Sprintf("the arc proxy cannot reach %s (%s): %v", dest, via, err))
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		refuse(w, http.StatusInternalServerError, "the connection cannot be taken over")
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	// The server's read and write deadlines stay on a hijacked conn.
	_ = conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		conn.Close()
		up.Close()
		return
	}
	s.log.Info("tunnel open", "destination", dest, "client", client, "via", via, "allowed_by", entry.Class)
	start := time.Now()
	sent, recv := splice(conn, brw.Reader, up)
	s.log.Info("tunnel closed", "destination", dest, "client", client, "via", via, "sent", sent, "received", recv, "seconds", time.Since(start).Seconds())
}

// safeLog bounds and escapes text from a client for a log line.
func safeLog(s string) string {
	if len(s) > 300 {
		s = s[:300]
	}
	return sanitize(s)
}

// refusal is a failure with the answer the client gets.
type refusal struct {
	code     int
	msg, log string
}

func (r *refusal) Error() string { return r.msg }

// dial connects to host:port: direct for a bypassed destination or when
// no upstream proxy is configured, else through the upstream.
func (s *Server) dial(ctx context.Context, st *state, entry Entry, host, port string) (net.Conn, string, error) {
	dest := net.JoinHostPort(host, port)
	if class, ok := matchAny(st.bypass, host, port); ok {
		c, err := s.dialDirect(ctx, entry, host, port)
		return c, "direct (proxy.bypass " + class + ")", err
	}
	up := st.upstream
	if up == nil && st.env != nil {
		u, err := st.env(&url.URL{Scheme: "https", Host: dest})
		if err != nil {
			return nil, "HTTPS_PROXY", err
		}
		up = u
	}
	if up == nil {
		c, err := s.dialDirect(ctx, entry, host, port)
		return c, "direct", err
	}
	c, err := s.dialUpstream(ctx, up, st.auth, dest)
	return c, "upstream " + up.Redacted(), err
}

// unsafeAddr is an address a name on the allowlist may not lead to unless
// the entry itself names it: loopback (this machine's own services, such
// as HIMDS), link-local (cloud metadata endpoints), unspecified, multicast.
func unsafeAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() ||
		a.IsMulticast() || a.IsInterfaceLocalMulticast() || (a.Is4() && a.As4()[0] == 0)
}

// dialDirect resolves host once, checks every address it got, and dials
// those addresses (never the name again), so a name cannot resolve to one
// address for the check and another for the connection.
func (s *Server) dialDirect(ctx context.Context, entry Entry, host, port string) (net.Conn, error) {
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = s.o.Resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
	}
	var d net.Dialer
	var errs []error
	var unsafe []string
	for _, a := range addrs {
		if !entry.Literal && unsafeAddr(a) {
			unsafe = append(unsafe, a.String())
			continue
		}
		c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(a.Unmap(), portNum(port)).String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 && len(unsafe) > 0 {
		return nil, &refusal{code: http.StatusForbidden, log: "refused a destination whose addresses are not allowed",
			msg: fmt.Sprintf("the arc proxy refused %s: it resolves to %s, a loopback, link-local or unspecified address that only an allowlist entry naming that address may reach", net.JoinHostPort(host, port), strings.Join(unsafe, ", "))}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%s has no address", host)
	}
	return nil, errors.Join(errs...)
}

func portNum(p string) uint16 {
	var n uint16
	for _, c := range p {
		n = n*10 + uint16(c-'0')
	}
	return n
}

// dialUpstream opens a tunnel to dest through the upstream proxy up, with
// Basic credentials when auth is set. The upstream resolves dest.
func (s *Server) dialUpstream(ctx context.Context, up *url.URL, auth, dest string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", up.Host)
	if err != nil {
		return nil, &refusal{code: http.StatusBadGateway, msg: fmt.Sprintf("the arc proxy cannot reach the upstream proxy %s: %v", up.Redacted(), err), log: "the upstream proxy is not reachable"}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if up.Scheme == "https" {
		tc := tls.Client(c, &tls.Config{ServerName: up.Hostname(), MinVersion: tls.VersionTLS12, RootCAs: s.o.UpstreamRoots})
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, &refusal{code: http.StatusBadGateway, msg: fmt.Sprintf("the arc proxy cannot open TLS to the upstream proxy %s: %v", up.Redacted(), err), log: "TLS to the upstream proxy failed"}
		}
		c = tc
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: dest}, Host: dest, Header: http.Header{}}
	req.Header.Set("User-Agent", "arcagent-arcproxy")
	if auth != "" {
		req.Header.Set("Proxy-Authorization", "Basic "+auth)
	}
	if err := req.Write(c); err != nil {
		c.Close()
		return nil, &refusal{code: http.StatusBadGateway, msg: fmt.Sprintf("the arc proxy cannot talk to the upstream proxy %s: %v", up.Redacted(), err), log: "the upstream proxy dropped the connection"}
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, req)
	if err != nil {
		c.Close()
		return nil, &refusal{code: http.StatusBadGateway, msg: fmt.Sprintf("the upstream proxy %s gave no valid answer to CONNECT %s: %v", up.Redacted(), dest, err), log: "the upstream proxy gave no valid answer"}
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		c.Close()
		// tinyproxy answers a failed Basic check with 401, others with 407.
		authFailed := res.StatusCode == http.StatusProxyAuthRequired || res.StatusCode == http.StatusUnauthorized
		switch {
		case authFailed && auth == "":
			return nil, &refusal{code: http.StatusBadGateway, msg: fmt.Sprintf("the upstream proxy %s requires credentials (%s): write user:password to %s (root:arcproxy 0640)", up.Redacted(), res.Status, s.o.CredentialsFile), log: "the upstream proxy requires credentials and none are configured"}
		case authFailed:
			return nil, &refusal{code: http.StatusBadGateway, msg: fmt.Sprintf("the upstream proxy %s refused the credentials of %s (%s): fix them", up.Redacted(), s.o.CredentialsFile, res.Status), log: "the upstream proxy refused the credentials"}
		}
		return nil, &refusal{code: http.StatusBadGateway, msg: fmt.Sprintf("the upstream proxy %s refused CONNECT %s: %s", up.Redacted(), dest, res.Status), log: "the upstream proxy refused the destination"}
	}
	_ = c.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		return &bufConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// bufConn is a conn whose first bytes sit in a bufio.Reader.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// CloseWrite passes a half-close through when the conn has one.
func (b *bufConn) CloseWrite() error {
	if cw, ok := b.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// splice copies both ways until both are done, half-closing each side
// when the other stops sending. It returns the bytes sent upstream and
// received from it.
func splice(client net.Conn, fromClient io.Reader, up net.Conn) (sent, recv int64) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sent, _ = io.Copy(up, fromClient)
		closeWrite(up)
	}()
	recv, _ = io.Copy(client, up)
	closeWrite(client)
	wg.Wait()
	client.Close()
	up.Close()
	return sent, recv
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	c.Close()
}
