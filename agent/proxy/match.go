package proxy

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/errcode"
)

// pattern is one destination of an allowlist or a bypass class: an exact
// host (a name or an IP literal) or *.domain (any name below domain), and
// a port.
type pattern struct {
	host  string // canonical (config.SplitEndpoint), "*.domain" for a wildcard
	port  string
	class string // what put it there, for logs: "control plane", "proxy.allowed", "Arc", ...
}

func (p pattern) String() string { return net.JoinHostPort(p.host, p.port) }

// literal reports whether the pattern names one IP address or localhost:
// its destinations may be loopback or link-local because the operator
// wrote them down as such.
func (p pattern) literal() bool {
	return p.host == "localhost" || net.ParseIP(p.host) != nil
}

func (p pattern) match(host, port string) bool {
	if port != p.port {
		return false
	}
	if d, ok := strings.CutPrefix(p.host, "*."); ok {
		return strings.HasSuffix(host, "."+d)
	}
	return host == p.host
}

// parsePattern reads host[:port] (config.SplitEndpoint's forms).
func parsePattern(s, class string) (pattern, error) {
	h, p, err := config.SplitEndpoint(s)
	if err != nil {
		return pattern{}, err
	}
	return pattern{host: h, port: p, class: class}, nil
}

// serverPattern is the control plane's host:port from its URL.
func serverPattern(server, class string) (pattern, error) {
	u, err := url.Parse(strings.TrimSpace(server))
	if err != nil || u.Host == "" || u.Scheme != "https" {
		return pattern{}, errcode.New(CodeBadServer, "the control plane URL %q is not https://HOST[:PORT]", server)
	}
	h, p := hostPort(u)
	pt, err := parsePattern(net.JoinHostPort(h, p), class)
	if err != nil {
		return pattern{}, errcode.Wrap(CodeBadServer, err, "the control plane URL %q", server)
	}
	return pt, nil
}

// CanonicalDest normalizes a CONNECT authority (host:port, port required)
// the way allowlist entries are normalized. It refuses what is not a host
// name or an IP address.
func CanonicalDest(authority string) (host, port string, err error) {
	if _, _, err := net.SplitHostPort(authority); err != nil {
		return "", "", fmt.Errorf("%q is not host:port", authority)
	}
	h, p, err := config.SplitEndpoint(authority)
	if err != nil {
		return "", "", fmt.Errorf("%q: %w", authority, err)
	}
	if strings.HasPrefix(h, "*.") {
		return "", "", fmt.Errorf("%q is a wildcard, not a destination", authority)
	}
	return h, p, nil
}

func matchAny(ps []pattern, host, port string) (string, bool) {
	for _, p := range ps {
		if p.match(host, port) {
			return p.class, true
		}
	}
	return "", false
}

// Bypass classes of proxy.bypass and the destinations each stands for in
// this deployment. The control plane (arcserver) plays Arc (registration,
// heartbeats, desired state, packages), ARM (the management API) and AAD
// (the token issuer), so each of the three bypasses the control plane's
// host:port; each class also covers the public Azure names of its
// service, which matter when an operator adds them to proxy.allowed.
var bypassClasses = map[string]struct {
	controlPlane bool
	hosts        []string
}{
	"Arc":     {true, []string{"*.his.arc.azure.com", "*.guestconfiguration.azure.com", "gbl.his.arc.azure.com"}},
	"ARM":     {true, []string{"management.azure.com"}},
	"AAD":     {true, []string{"login.microsoftonline.com", "login.windows.net", "pas.windows.net"}},
	"AMA":     {false, []string{"global.handler.control.monitor.azure.com", "*.handler.control.monitor.azure.com", "*.ods.opinsights.azure.com", "*.oms.opinsights.azure.com", "*.monitoring.azure.com"}},
	"ArcData": {false, []string{"*.arcdataservices.com"}},
}

// bypassPatterns expands proxy.bypass classes into destinations, for the
// control plane URL server ("" when not known yet).
func bypassPatterns(classes []string, server string) ([]pattern, error) {
	var out []pattern
	for _, c := range classes {
		def, ok := bypassClasses[c]
		if !ok {
			return nil, errcode.New(errcode.InvalidValue, "proxy.bypass holds %q, which is not a class (AAD, ARM, Arc, AMA, ArcData): run `arcagent config set proxy.bypass` again", c)
		}
		if def.controlPlane && server != "" {
			p, err := serverPattern(server, c)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		for _, h := range def.hosts {
			p, err := parsePattern(h, c)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// Allowlist is the arc proxy's egress allowlist.
type Allowlist struct {
	ps []pattern
}

// NewAllowlist builds the allowlist: the control plane at server ("" before
// connect), the package endpoints the control plane names (URLs or
// host[:port]; today packages come from the control plane itself), and the
// operator's proxy.allowed entries.
func NewAllowlist(server string, packages, allowed []string) (*Allowlist, error) {
	a := &Allowlist{}
	if server != "" {
		p, err := serverPattern(server, "control plane")
		if err != nil {
			return nil, err
		}
		a.ps = append(a.ps, p)
	}
	for _, pk := range packages {
		if strings.Contains(pk, "://") {
			p, err := serverPattern(pk, "package endpoint")
			if err != nil {
				return nil, err
			}
			a.ps = append(a.ps, p)
			continue
		}
		p, err := parsePattern(pk, "package endpoint")
		if err != nil {
			return nil, errcode.Wrap(CodeBadServer, err, "package endpoint %q", pk)
		}
		a.ps = append(a.ps, p)
	}
	for _, e := range allowed {
		p, err := parsePattern(e, config.ProxyAllowed)
		if err != nil {
			return nil, errcode.Wrap(errcode.InvalidValue, err, "proxy.allowed entry %q: fix it with `arcagent config set proxy.allowed`", e)
		}
		a.ps = append(a.ps, p)
	}
	return a, nil
}

// Allows reports whether the canonical destination host:port is on the
// list, and the entry that allows it.
func (a *Allowlist) Allows(host, port string) (Entry, bool) {
	for _, p := range a.ps {
		if p.match(host, port) {
			return Entry{Endpoint: p.String(), Class: p.class, Literal: p.literal()}, true
		}
	}
	return Entry{}, false
}

// Entry is one allowlist entry that matched.
type Entry struct {
	Endpoint string // host:port or *.domain:port
	Class    string // control plane, package endpoint, proxy.allowed
	// Literal is true when the entry names an IP address or localhost:
	// only then may it lead to a loopback or link-local address.
	Literal bool
}

// Entries lists the allowlist as host:port (class), for logs and `check`.
func (a *Allowlist) Entries() []string {
	out := make([]string, 0, len(a.ps))
	for _, p := range a.ps {
		out = append(out, p.String()+" ("+p.class+")")
	}
	return out
}
