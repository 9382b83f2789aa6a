//go:build !windows

package himds

import (
	"net"
	"syscall"
)

// socketPeerUID is the uid of the process at the other end of a unix
// socket (SO_PEERCRED), or -1; ok is false when the socket cannot be
// asked at all.
func socketPeerUID(uc *net.UnixConn) (uid int, ok bool) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, false
	}
	var cred *syscall.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, _ = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if cred == nil {
		return -1, true
	}
	return int(cred.Uid), true
}
