// Package proxy is the arc proxy (arcproxyd) and the one routing decision
// that every agent service and verb makes for its own HTTPS traffic.
//
// The proxy is an HTTP forward proxy for CONNECT tunnels only (no TLS
// interception) on a loopback listener, 127.0.0.1:40343. It connects only
// to the destinations of its egress allowlist (the control plane, the
// package endpoints it names, proxy.allowed) and refuses anything else with
// 403. Upstream it goes through proxy.url (or HTTPS_PROXY), with Basic
// credentials read from a root-only file, or direct for the proxy.bypass
// classes.
//
// The client side (Transport, NewRouter) sends every request through the
// arc proxy when it is on (connection.type gateway, or proxy.url set),
// and otherwise directly or through HTTPS_PROXY, honouring proxy.bypass.
package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
)

// DefaultListen is the arc proxy's loopback address.
const DefaultListen = "127.0.0.1:40343"

// EnvAddr names the environment variable that tells clients where the arc
// proxy listens when it is not DefaultListen (test trees, development). It
// must be a loopback IP:PORT.
const EnvAddr = "ARCAGENT_ARCPROXY_ADDR"

// headerArcProxy marks the arc proxy's own answers (refusals), so that a
// client names the arc proxy rather than an upstream.
const headerArcProxy = "X-Arcagent-Proxy"

// CredentialsFile is the production path of the upstream proxy's Basic
// credentials, "user:password" on one line (root:arcproxy 0640).
const CredentialsFile = layout.ProxyCredentials

// On reports whether the arc proxy is on for these settings: when
// connection.type is gateway, or when proxy.url is set (and
// connection.type is not direct, which means no proxy at all).
func On(settings *config.Settings) bool {
	if settings == nil {
		return false
	}
	switch settings.String(config.ConnectionType) {
	case "direct":
		return false
	case "gateway":
		return true
	}
	return settings.String(config.ProxyURL) != ""
}

// Addr is where clients find the arc proxy: EnvAddr when set, else
// DefaultListen.
func Addr() (string, error) {
	a := strings.TrimSpace(os.Getenv(EnvAddr))
	if a == "" {
		return DefaultListen, nil
	}
	ap, err := netip.ParseAddrPort(a)
	if err != nil || !ap.Addr().IsLoopback() {
		return "", errcode.New(CodeBadAddr, "%s=%q is not a loopback IP:PORT: unset it, or give 127.0.0.1:PORT", EnvAddr, a)
	}
	return a, nil
}

// ParseUpstream checks a proxy URL (proxy.url or HTTPS_PROXY): http:// or
// https:// with a host and no credentials. what names its source in
// messages.
func ParseUpstream(raw, what string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errcode.New(CodeBadUpstream, "%s %q is not an http:// or https:// proxy URL", what, redactRaw(raw))
	}
	if u.User != nil {
		return nil, errcode.New(CodeCredentialsInURL, "%s carries credentials, which would be readable by every member of group himds and end up in logs: remove them from the URL and put user:password in %s (root:arcproxy 0640)", what, CredentialsFile)
	}
	if u.Port() == "" {
		if u.Scheme == "https" {
			u.Host = net.JoinHostPort(u.Hostname(), "443")
		} else {
			u.Host = net.JoinHostPort(u.Hostname(), "80")
		}
	}
	return u, nil
}

// redactRaw drops anything before an @ in a URL that did not parse.
func redactRaw(raw string) string {
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			return raw[:j+3] + "REDACTED@" + raw[i+1:]
		}
		return "REDACTED@" + raw[i+1:]
	}
	return raw
}

// Via says how a request leaves the machine.
type Via string

// The routes.
const (
	ViaArcProxy Via = "arcproxy" // through the local arc proxy
	ViaProxy    Via = "proxy"    // through an enterprise proxy (HTTPS_PROXY when the arc proxy is off)
	ViaDirect   Via = "direct"   // straight to the destination
)

// Route is the decision for one destination.
type Route struct {
	Via Via
	// Proxy is the proxy dialled (nil for direct).
	Proxy *url.URL
	// Reason says why, for `check` and logs.
	Reason string
}

// String renders the route for a person.
func (r Route) String() string {
	if r.Proxy == nil {
		return string(r.Via) + " (" + r.Reason + ")"
	}
	return fmt.Sprintf("%s %s (%s)", r.Via, r.Proxy.Redacted(), r.Reason)
}

// Router decides the route of the agent's own traffic from
// localconfig.json and the control plane URL.
type Router struct {
	on       bool
	arcproxy *url.URL
	bypass   []pattern
	env      func(*url.URL) (*url.URL, error)
	envErr   error
}

// NewRouter builds the routing decision for settings (nil: defaults) and
// the control plane URL server ("" before connect: only the Azure names of
// the bypass classes are known). The environment (HTTPS_PROXY, NO_PROXY)
// is read once, here.
func NewRouter(settings *config.Settings, server string) (*Router, error) {
	if settings == nil {
		settings = config.NewSettings()
	}
	r := &Router{on: On(settings)}
	if r.on {
		a, err := Addr()
		if err != nil {
			return nil, err
		}
		r.arcproxy = &url.URL{Scheme: "http", Host: a}
		return r, nil
	}
	if settings.String(config.ConnectionType) == "direct" {
		return r, nil
	}
	bp, err := bypassPatterns(settings.List(config.ProxyBypass), server)
	if err != nil {
		return nil, err
	}
	r.bypass = bp
	env := httpproxy.FromEnvironment()
	if env.HTTPSProxy != "" {
		if _, err := ParseUpstream(env.HTTPSProxy, "HTTPS_PROXY"); err != nil {
			r.envErr = err
		}
	}
	r.env = env.ProxyFunc()
	return r, nil
}

// On reports whether the router sends everything to the arc proxy.
func (r *Router) On() bool { return r.on }

// Route decides where a request to dest (an https:// URL) goes.
func (r *Router) Route(dest *url.URL) (Route, error) {
	if r.on {
		return Route{Via: ViaArcProxy, Proxy: r.arcproxy, Reason: "the arc proxy is on (connection.type gateway or proxy.url set)"}, nil
	}
	if r.env == nil {
		return Route{Via: ViaDirect, Reason: "connection.type is direct"}, nil
	}
	host, port := hostPort(dest)
	if class, ok := matchAny(r.bypass, host, port); ok {
		return Route{Via: ViaDirect, Reason: "proxy.bypass " + class}, nil
	}
	if r.envErr != nil {
		return Route{}, r.envErr
	}
	u, err := r.env(dest)
	if err != nil {
		return Route{}, fmt.Errorf("read HTTPS_PROXY: %w", err)
	}
	if u == nil {
		return Route{Via: ViaDirect, Reason: "no proxy configured"}, nil
	}
	return Route{Via: ViaProxy, Proxy: u, Reason: "HTTPS_PROXY (proxy.url is not set)"}, nil
}

// ProxyFunc is Route in the form http.Transport.Proxy takes.
func (r *Router) ProxyFunc() func(*http.Request) (*url.URL, error) {
	return func(req *http.Request) (*url.URL, error) {
		rt, err := r.Route(req.URL)
		if err != nil {
			return nil, err
		}
		return rt.Proxy, nil
	}
}

// Transport is the HTTP transport of the agent's own HTTPS traffic to the
// control plane at server and the endpoints it names: routed by
// NewRouter(settings, server), TLS 1.2 or later, trusting the control
// plane CA of the layout (ROOT/var/opt/azcmagent/certs/server-ca.crt)
// when it exists and the system roots otherwise. Callers that trust
// another CA (connect's --ca, check's) replace TLSClientConfig.RootCAs.
// A refusal by a proxy (403 from the arc proxy, 407 or 502 from an
// upstream) fails the request with an error naming that proxy and
// carrying its explanation.
func Transport(l layout.Layout, settings *config.Settings, server string) (*http.Transport, error) {
	r, err := NewRouter(settings, server)
	if err != nil {
		return nil, err
	}
	// The session cache lets a connection opened after the idle timeout
	// (every heartbeat: 5 minutes apart, idle connections close after 90 s)
	// resume the TLS session instead of a full handshake: cheaper for the
	// control plane, which serves a whole fleet of them.
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	if ca, err := os.ReadFile(l.ServerCA()); err == nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errcode.New(CodeBadCA, "%s holds no PEM certificate", l.ServerCA())
		}
		tc.RootCAs = pool
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, errcode.Wrap(CodeBadCA, err, "read the control plane CA")
	}
	return &http.Transport{
		Proxy:                  r.ProxyFunc(),
		OnProxyConnectResponse: explainRefusal,
		TLSClientConfig:        tc,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    16,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
	}, nil
}

// explainRefusal turns a proxy's non-200 answer to CONNECT into an error
// that names the proxy and carries the first line of its explanation
// (net/http alone would say only "Forbidden").
func explainRefusal(_ context.Context, proxyURL *url.URL, req *http.Request, res *http.Response) error {
	if res.StatusCode == http.StatusOK {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 2048))
	msg := strings.TrimSpace(strings.SplitN(string(body), "\n", 2)[0])
	name := "the proxy " + proxyURL.Redacted()
	if res.Header.Get(headerArcProxy) != "" {
		name = "the arc proxy at " + proxyURL.Host
	}
	if msg == "" {
		msg = "no explanation given"
	}
	return errcode.New(CodeRefused, "%s refused CONNECT %s: %s: %s", name, req.Host, res.Status, sanitize(msg))
}

// sanitize keeps printable ASCII of a line someone else wrote.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

func hostPort(u *url.URL) (string, string) {
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return u.Hostname(), port
}
