//go:build !windows

package guestconfig

import (
	"io/fs"
	"os/exec"
	"syscall"
)

// Flags of the opens that must not follow a final link nor block.
const (
	oNoFollow = syscall.O_NOFOLLOW
	oNonBlock = syscall.O_NONBLOCK
)

// Owner returns the numeric owner and group of fi.
func Owner(fi fs.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}

// linkCount is the number of hard links of fi (0 when unknown).
func linkCount(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 0
}

// writesSupported: every write of a resource is possible here.
func writesSupported(string) error { return nil }

// ownGroup runs cmd in a process group of its own, killed as a whole when
// its context ends.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
