package netcheck

import (
	"errors"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/agent/proxy"
	"github.com/arcagent/arcagent/errcode"
)

// Plan is what a check is about, before Run: the command's flags.
type Plan struct {
	Layout layout.Layout
	// Server is the control plane URL; empty means the one agentconfig.json
	// names (the machine is connected).
	Server string
	// CAPEM is the CA bundle for Server; with Server empty it is read from
	// the layout's server CA when the machine was connected with one.
	CAPEM []byte
	// Extra are further endpoints (extension endpoints) to check.
	Extra []string
	// Getenv reads HTTPS_PROXY; nil means os.Getenv.
	Getenv func(string) string
}

// Options turns the plan into Run's options: the endpoints of the control
// plane, its CA, and the proxy (localconfig.json's proxy.url, which wins
// over HTTPS_PROXY).
func (p Plan) Options() (Options, error) {
	var o Options
	server, issuer := p.Server, ""
	o.CAPEM = p.CAPEM
	if server == "" {
		cfg, err := himds.LoadAgentConfig(p.Layout)
		if err != nil {
			return o, err
		}
		if cfg == nil {
			return o, errcode.New(errcode.Usage, "this machine is not connected: pass --server URL (and --ca-file FILE) to check a control plane before connect")
		}
		server, issuer = cfg.Server, cfg.Issuer
		if cfg.ServerCAPath != "" && len(o.CAPEM) == 0 {
			pem, err := os.ReadFile(p.Layout.Path(cfg.ServerCAPath))
			if err != nil {
				return o, errcode.Wrap(himds.CodeStateUnreadable, err, "read the server CA %s", p.Layout.Path(cfg.ServerCAPath))
			}
			o.CAPEM = pem
		}
	}
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return o, errcode.New(errcode.Usage, "server URL %q is not valid: use https://HOST:PORT", server)
	}
	for _, e := range p.Extra {
		if x, err := url.Parse(e); err != nil || x.Scheme != "https" || x.Hostname() == "" {
			return o, errcode.New(errcode.Usage, "endpoint %q is not valid: use https://HOST[:PORT][/PATH]", e)
		}
	}
	s, _, err := config.NewStore(p.Layout).Load()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return o, err
	}
	extra := p.Extra
	if s != nil {
		// The extension endpoints the operator allowed the agent to reach
		// (proxy.allowed) are endpoints it needs too.
		for _, e := range s.List(config.ProxyAllowed) {
			host, port, err := config.SplitEndpoint(e)
			if err != nil || strings.Contains(host, "*") {
				continue
			}
			x := "https://" + net.JoinHostPort(host, port) + "/"
			if !sameHostPort(x, server) {
				extra = append(extra, x)
			}
		}
	}
	o.Endpoints = Endpoints(server, issuer, extra...)
	configured := ""
	if s != nil {
		configured = s.String(config.ProxyURL)
	}
	getenv := p.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	// The route the agent's own traffic takes (agent/proxy): through the
	// arc proxy when it is on (proxy.url set or connection.type gateway;
	// it holds the upstream's credentials), else HTTPS_PROXY unless
	// connection.type direct or a proxy.bypass class says direct.
	if configured != "" {
		if _, err := proxy.ParseUpstream(configured, config.ProxyURL); err != nil {
			return o, err
		}
	}
	r, err := proxy.NewRouter(s, server)
	if err != nil {
		return o, err
	}
	route, err := r.Route(u)
	if err != nil {
		return o, err
	}
	switch {
	case route.Via == proxy.ViaArcProxy:
		o.Proxy = route.Proxy
	case s != nil && s.String(config.ConnectionType) == "direct",
		route.Via == proxy.ViaDirect && strings.HasPrefix(route.Reason, "proxy.bypass"):
		o.Proxy = nil
	default:
		o.Proxy, err = envProxy(getenv)
	}
	return o, err
}

// sameHostPort reports whether two https URLs name one host:port.
func sameHostPort(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return false
	}
	pa, pb := ua.Port(), ub.Port()
	if pa == "" {
		pa = "443"
	}
	if pb == "" {
		pb = "443"
	}
	return strings.EqualFold(ua.Hostname(), ub.Hostname()) && pa == pb
}

// envProxy is the proxy of the environment the agent uses when the arc
// proxy is off (proxy.url turns it on): HTTPS_PROXY, or https_proxy; nil
// when neither is set.
func envProxy(getenv func(string) string) (*url.URL, error) {
	raw, from := getenv("HTTPS_PROXY"), "HTTPS_PROXY"
	if raw == "" {
		raw, from = getenv("https_proxy"), "https_proxy"
	}
	if raw == "" {
		return nil, nil
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errcode.New(errcode.Usage, "the proxy in %s is not an http(s)://HOST:PORT URL: fix or unset it", from)
	}
	return u, nil
}
