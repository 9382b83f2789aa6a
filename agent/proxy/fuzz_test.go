package proxy

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/config"
)

// FuzzAllowlistMatch: whatever a client writes as a CONNECT authority,
// it is allowed only by an entry it really names: the canonical form of
// the destination equals the entry, or ends in ".domain" for *.domain,
// on the same port; and no accepted destination carries a character that
// could smuggle another host (userinfo, path, spaces).
func FuzzAllowlistMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"cp.contoso.com:443", "cp.contoso.com"},
		{"CP.Contoso.COM.:443", "cp.contoso.com:443"},
		{"evil.cp.contoso.com:443", "*.cp.contoso.com"},
		{"cp.contoso.com.evil.test:443", "cp.contoso.com"},
		{"evilcontoso.com:443", "*.contoso.com"},
		{"127.0.0.1:8443", "127.0.0.1:8443"},
		{"[::ffff:127.0.0.1]:8443", "127.0.0.1:8443"},
		{"[::1]:443", "[::1]"},
		{"2130706433:443", "127.0.0.1"},
		{"0x7f.1:443", "127.0.0.1"},
		{"cp.contoso.com:443@evil.test:443", "cp.contoso.com"},
		{"cp.contoso.com:0443", "cp.contoso.com"},
		{"[fe80::1%eth0]:443", "fe80::1"},
		{"*.contoso.com:443", "*.contoso.com"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, authority, entry string) {
		a, err := NewAllowlist("", nil, []string{entry})
		if err != nil {
			return
		}
		host, port, err := CanonicalDest(authority)
		if err != nil {
			return
		}
		if strings.ContainsAny(host, "@/?# \\") || strings.HasPrefix(host, "*") {
			t.Fatalf("%q accepted as host %q", authority, host)
		}
		if ip, err := netip.ParseAddr(host); err == nil && (ip.Zone() != "" || ip.Is4In6()) {
			t.Fatalf("%q: non-canonical address %q", authority, host)
		}
		e, ok := a.Allows(host, port)
		if !ok {
			return
		}
		eh, ep, err := config.SplitEndpoint(entry)
		if err != nil {
			t.Fatalf("entry %q was accepted by NewAllowlist but not by SplitEndpoint: %v", entry, err)
		}
		if ep != port || e.Endpoint != net.JoinHostPort(eh, ep) {
			t.Fatalf("%q allowed by %q (%+v) on another port or entry", authority, entry, e)
		}
		if d, wild := strings.CutPrefix(eh, "*."); wild {
			if !strings.HasSuffix(host, "."+d) || host == d {
				t.Fatalf("%q allowed by %q", authority, entry)
			}
		} else if host != eh {
			t.Fatalf("%q allowed by %q: host %q is not %q", authority, entry, host, eh)
		}
		// The canonical form is stable.
		h2, p2, err := CanonicalDest(net.JoinHostPort(host, port))
		if err != nil || h2 != host || p2 != port {
			t.Fatalf("canonical %s:%s is not stable: %s:%s %v", host, port, h2, p2, err)
		}
	})
}
