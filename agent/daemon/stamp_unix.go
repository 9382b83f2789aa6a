//go:build !windows

package daemon

import (
	"io/fs"
	"syscall"
)

// inode is fi's inode number (0 when unknown).
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
