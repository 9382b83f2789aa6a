//go:build !windows

package himds

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// sockDiagUID asks the kernel for the one TCP socket with the given
// addresses (an exact inet_diag lookup, not a dump of every socket).
func sockDiagUID(cli, srv netip.AddrPort) (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return -1, fmt.Errorf("open a sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 1}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	req := inetDiagRequest(cli, srv)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return -1, fmt.Errorf("send the sock_diag request: %w", err)
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return -1, fmt.Errorf("read the sock_diag reply: %w", err)
	}
	return parseInetDiagReplyTo(buf[:n], req)
}

// liveState reports whether a TCP state (linux/tcp_states.h) is one of a
// full socket connected to its peer. A TIME_WAIT entry has no owner (the
// kernel reports uid 0) and a listener is found for any remote address:
// neither may stand for the client of a request.
func liveState(st uint8) bool {
	switch st {
	case 1, 4, 5, 8, 9, 11: // ESTABLISHED, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK, CLOSING
		return true
	}
	return false
}

// inet_diag sizes and offsets (linux/inet_diag.h, linux/netlink.h).
const (
	nlmsgHdrLen     = 16
	inetDiagSockID  = 48 // sport, dport, src[4], dst[4], if, cookie[2]
	inetDiagReqLen  = 8 + inetDiagSockID
	inetDiagMsgUID  = 4 + inetDiagSockID + 12 // after family..retrans, id, expires, rqueue, wqueue
	inetDiagMsgSize = inetDiagMsgUID + 8      // uid, inode
)

// inetDiagRequest is the netlink message of an exact lookup of the TCP
// socket bound to cli and connected to srv, in any state.
func inetDiagRequest(cli, srv netip.AddrPort) []byte {
	b := make([]byte, nlmsgHdrLen+inetDiagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(b[8:], 1) // sequence
	r := b[nlmsgHdrLen:]
	r[0] = unix.AF_INET
	if !cli.Addr().Unmap().Is4() {
		r[0] = unix.AF_INET6
	}
	r[1] = unix.IPPROTO_TCP
	ne.PutUint32(r[4:], 0xffffffff) // every state
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:], cli.Port())
	binary.BigEndian.PutUint16(id[2:], srv.Port())
	putDiagAddr(id[4:20], cli.Addr())
	putDiagAddr(id[20:36], srv.Addr())
	ne.PutUint32(id[40:], 0xffffffff) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], 0xffffffff)
	return b
}

func putDiagAddr(dst []byte, a netip.Addr) {
	if a.Unmap().Is4() {
		v := a.Unmap().As4()
		copy(dst, v[:])
		return
	}
	v := a.As16()
	copy(dst, v[:])
}

// parseInetDiagReply returns the uid in the reply to an exact lookup of
// the socket bound to cli and connected to srv.
func parseInetDiagReply(b []byte, cli, srv netip.AddrPort) (int, error) {
	return parseInetDiagReplyTo(b, inetDiagRequest(cli, srv))
}

// parseInetDiagReplyTo is parseInetDiagReply for the request req that was
// sent (its socket id is what the reply must echo).
func parseInetDiagReplyTo(b, req []byte) (int, error) {
	ne := binary.NativeEndian
	if len(b) < nlmsgHdrLen {
		return -1, fmt.Errorf("short sock_diag reply (%d bytes)", len(b))
	}
	l, typ := ne.Uint32(b[0:]), ne.Uint16(b[4:])
	if l < nlmsgHdrLen || int(l) > len(b) {
		return -1, fmt.Errorf("malformed sock_diag reply (length %d of %d)", l, len(b))
	}
	body := b[nlmsgHdrLen:l]
	switch typ {
	case unix.NLMSG_ERROR:
		if len(body) < 4 {
			return -1, errors.New("malformed sock_diag error")
		}
		errno := -int32(ne.Uint32(body))
		if errno == int32(unix.ENOENT) {
			return -1, errPeerNotFound
		}
		return -1, fmt.Errorf("sock_diag: %w", unix.Errno(errno))
	case unix.SOCK_DIAG_BY_FAMILY:
		if len(body) < inetDiagMsgSize {
			return -1, fmt.Errorf("short inet_diag message (%d bytes)", len(body))
		}
		want := req[nlmsgHdrLen+8:][:36]
		if !liveState(body[1]) || !bytes.Equal(body[4:4+36], want) {
			return -1, errPeerNotFound
		}
		return int(ne.Uint32(body[inetDiagMsgUID:])), nil
	}
	return -1, fmt.Errorf("unexpected sock_diag reply type %d", typ)
}

// procNetUID finds the socket in /proc/net/tcp or tcp6.
func procNetUID(cli, srv netip.AddrPort) (int, error) {
	name := "/proc/net/tcp"
	if !cli.Addr().Unmap().Is4() {
		name = "/proc/net/tcp6"
	}
	f, err := os.Open(name)
	if err != nil {
		return -1, err
	}
	defer f.Close()
	return parseProcNetTCP(f, cli, srv)
}

// parseProcNetTCP returns the uid of the line whose local address is cli
// and remote address srv. Addresses are hex words in host byte order.
func parseProcNetTCP(r io.Reader, cli, srv netip.AddrPort) (int, error) {
	want := procAddr(cli) + " " + procAddr(srv)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid ...
		f := strings.Fields(sc.Text())
		if len(f) < 8 || !strings.EqualFold(f[1]+" "+f[2], want) {
			continue
		}
		if st, err := strconv.ParseUint(f[3], 16, 8); err != nil || !liveState(uint8(st)) {
			continue
		}
		uid, err := strconv.Atoi(f[7])
		if err != nil || uid < 0 {
			return -1, fmt.Errorf("bad uid %q in /proc/net/tcp", f[7])
		}
		return uid, nil
	}
	if err := sc.Err(); err != nil {
		return -1, err
	}
	return -1, errPeerNotFound
}

// procAddr formats an address as /proc/net/tcp does: each 32-bit word of
// the address in host byte order, in hex, then ":" and the port.
func procAddr(ap netip.AddrPort) string {
	var raw []byte
	if a := ap.Addr().Unmap(); a.Is4() {
		v := a.As4()
		raw = v[:]
	} else {
		v := ap.Addr().As16()
		raw = v[:]
	}
	var out strings.Builder
	for i := 0; i < len(raw); i += 4 {
		fmt.Fprintf(&out, "%08X", binary.NativeEndian.Uint32(raw[i:]))
	}
	fmt.Fprintf(&out, ":%04X", ap.Port())
	return out.String()
}

// errPeerNotFound means no socket with the connection's 4-tuple was found.
var errPeerNotFound = errors.New("no local socket has this connection's addresses")
