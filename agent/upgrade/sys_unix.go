//go:build unix

package upgrade

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

const (
	openNoFollow = syscall.O_NOFOLLOW
	openNonBlock = syscall.O_NONBLOCK
)

// checkOwner refuses a cache directory root does not own when running as
// root (a directory someone else could fill with packages).
func checkOwner(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return nil
	}
	if st.Uid != 0 {
		return fmt.Errorf("owned by uid %d, not root: remove it", st.Uid)
	}
	return nil
}
