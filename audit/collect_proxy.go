package audit

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// ProbeDestination is what the arc proxy probe asks for: a name under the
// reserved .invalid domain, which no allowlist can hold and no resolver
// answers, so even a proxy that relays anywhere connects to nothing.
const ProbeDestination = "egress-probe.arcagent.invalid:443"

// probeTimeout bounds one probe (connect, CONNECT, answer).
const probeTimeout = 3 * time.Second

// collectProxyProbes sends one CONNECT for ProbeDestination to each
// loopback address the arc proxy listens on (live host only, after the
// listeners are read). A non-loopback listener is probed on the loopback
// address of its port when it is a wildcard, else not at all: the probe
// never leaves the machine.
func (c *collector) collectProxyProbes(ctx context.Context, sf *ServicesFacts) {
	if !sf.ProxyOn || !sf.ProcAvailable {
		return
	}
	seen := map[string]bool{}
	for _, l := range sf.Listeners["arcproxyd"] {
		a, err := netip.ParseAddr(l.Address)
		if err != nil {
			continue
		}
		switch {
		case a.IsLoopback():
		case a.IsUnspecified() && a.Is4():
			a = netip.MustParseAddr("127.0.0.1")
		case a.IsUnspecified():
			a = netip.IPv6Loopback()
		default:
			continue
		}
		addr := netip.AddrPortFrom(a, uint16(l.Port)).String()
		if seen[addr] {
			continue
		}
		seen[addr] = true
		sf.ProxyProbes = append(sf.ProxyProbes, probeProxy(ctx, addr))
	}
}

// probeProxy asks the proxy at addr (loopback) to CONNECT to
// ProbeDestination and records its answer.
func probeProxy(ctx context.Context, addr string) ProxyProbe {
	p := ProxyProbe{Address: addr, Destination: ProbeDestination}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		p.Error = fmt.Sprintf("cannot reach the arc proxy on %s to probe it: %v", addr, err)
		return p
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: ProbeDestination}, Host: ProbeDestination, Header: http.Header{"User-Agent": {"arcagent-audit"}}}
	if err := req.Write(conn); err != nil {
		p.Error = fmt.Sprintf("cannot send the probe to %s: %v", addr, err)
		return p
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		p.Error = fmt.Sprintf("the arc proxy on %s gave no valid answer to the probe: %v", addr, err)
		return p
	}
	res.Body.Close()
	p.Status = res.StatusCode
	p.Answer = strconv.Itoa(res.StatusCode) + " " + http.StatusText(res.StatusCode)
	p.Refused = res.StatusCode == http.StatusForbidden
	return p
}
