package himds

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
)

// anonymousPeer is the challenge bucket of callers whose uid cannot be
// found: they share it (and its per-peer cap).
const anonymousPeer = -1

// peerOf returns the uid owning the client's end of a loopback TCP
// connection, or anonymousPeer when it cannot be found. TCP has no
// SO_PEERCRED: the client's socket is looked up by its addresses, with
// NETLINK_SOCK_DIAG (inet_diag) and, where that is refused, in
// /proc/net/tcp{,6}. The client's end is local to this machine because
// only loopback connections get this far.
func (s *Service) peerOf(r *http.Request) int {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return anonymousPeer
	}
	srv, err1 := netip.ParseAddrPort(local.String())
	cli, err2 := netip.ParseAddrPort(r.RemoteAddr)
	if err1 != nil || err2 != nil {
		return anonymousPeer
	}
	uid, err := s.lookupPeer(cli, srv)
	if err != nil {
		if s.peerWarned.CompareAndSwap(false, true) {
			s.log.Info("the uid of a local API client cannot be found; such clients share one bucket of challenges", "err", err)
		}
		return anonymousPeer
	}
	return uid
}

// lookupPeerUID returns the uid owning the TCP socket whose local address
// is cli and whose remote address is srv.
func lookupPeerUID(cli, srv netip.AddrPort) (int, error) {
	uid, err := sockDiagUID(cli, srv)
	if err == nil {
		return uid, nil
	}
	uid, perr := procNetUID(cli, srv)
	if perr != nil {
		return -1, fmt.Errorf("inet_diag: %w; /proc/net: %w", err, perr)
	}
	return uid, nil
}
