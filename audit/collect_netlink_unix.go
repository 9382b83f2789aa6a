//go:build !windows

package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// Listening TCP sockets are asked of the kernel over NETLINK_SOCK_DIAG
// with a state filter of LISTEN only: the kernel then never formats the
// thousands of TIME_WAIT or ESTABLISHED sockets of a busy host, which is
// what makes /proc/net/tcp slow to read (it stays the fallback).

const (
	tcpListen        = 10 // TCP_LISTEN in include/net/tcp_states.h
	inetDiagReqLen   = 56 // struct inet_diag_req_v2
	inetDiagMsgLen   = 72 // struct inet_diag_msg
	netlinkRecvBytes = 64 << 10
	// inetDiagMaxBytes bounds one dump (about 30,000 listeners).
	inetDiagMaxBytes = 8 << 20
)

// netlinkListeners returns the listening TCP sockets of both families.
func netlinkListeners() ([]Listener, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("bind sock_diag netlink socket: %w", err)
	}
	var out []Listener
	buf := make([]byte, netlinkRecvBytes)
	for seq, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		if err := unix.Sendto(fd, inetDiagRequest(family, uint32(seq+1)), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return nil, fmt.Errorf("ask the kernel for listening sockets: %w", err)
		}
		total := 0
		for done := false; !done; {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read listening sockets from the kernel: %w", err)
			}
			if total += n; total > inetDiagMaxBytes {
				return nil, errors.New("the kernel's list of listening sockets is larger than 8 MiB")
			}
			var ls []Listener
			ls, done, err = parseInetDiag(buf[:n])
			if err != nil {
				return nil, err
			}
			out = append(out, ls...)
		}
	}
	return out, nil
}

// inetDiagRequest is a SOCK_DIAG_BY_FAMILY dump request for the listening
// TCP sockets of one address family.
func inetDiagRequest(family uint8, seq uint32) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+inetDiagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(b[8:], seq)
	r := b[unix.NLMSG_HDRLEN:]
	r[0], r[1] = family, unix.IPPROTO_TCP
	ne.PutUint32(r[4:], 1<<tcpListen)
	return b
}

// parseInetDiag decodes one datagram of a sock_diag dump: its listeners,
// and whether the dump is complete.
func parseInetDiag(b []byte) (out []Listener, done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(ne.Uint32(b[0:]))
		typ := ne.Uint16(b[4:])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return out, false, errors.New("a malformed netlink message from the kernel")
		}
		body := b[unix.NLMSG_HDRLEN:l]
		switch typ {
		case unix.NLMSG_DONE:
			return out, true, nil
		case unix.NLMSG_ERROR:
			if len(body) >= 4 {
				if errno := int32(ne.Uint32(body)); errno != 0 {
					return out, true, fmt.Errorf("the kernel refused the socket list: %w", unix.Errno(-errno))
				}
			}
			return out, true, nil
		case unix.SOCK_DIAG_BY_FAMILY:
			if len(body) < inetDiagMsgLen {
				return out, false, errors.New("a short inet_diag message from the kernel")
			}
			if body[1] == tcpListen {
				if ls, ok := inetDiagListener(body); ok {
					out = append(out, ls)
				}
			}
		}
		// Messages are aligned to 4 bytes.
		next := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if next > len(b) {
			break
		}
		b = b[next:]
	}
	return out, false, nil
}

// inetDiagListener decodes one struct inet_diag_msg.
func inetDiagListener(m []byte) (Listener, bool) {
	var ip net.IP
	switch m[0] {
	case unix.AF_INET:
		ip = net.IP(append([]byte{}, m[8:12]...))
	case unix.AF_INET6:
		ip = net.IP(append([]byte{}, m[8:24]...))
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
	default:
		return Listener{}, false
	}
	port := binary.BigEndian.Uint16(m[4:]) // id.idiag_sport, network order
	uid := binary.NativeEndian.Uint32(m[64:])
	return Listener{Address: ip.String(), Port: int(port), Loopback: ip.IsLoopback(), UID: int(uid)}, true
}
