//go:build !windows

package audit

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// fileIDs returns the numeric owner and group of fi.
func fileIDs(fi fs.FileInfo) (uid, gid int, ok bool) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid), true
	}
	return -1, -1, false
}

// kernelRelease is the running kernel's release (uname -r), "" when
// unknown.
func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		return unix.ByteSliceToString(u.Release[:])
	}
	return ""
}

// windowsVersion: not Windows.
func windowsVersion() string { return "Windows" }
