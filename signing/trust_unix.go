//go:build !windows

package signing

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkTrustOwner applies the ownership rule to one path of the trust
// store: root's, or the reading user's own.
func checkTrustOwner(p string, fi fs.FileInfo, isDir bool, cfg *trustConfig) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
		// A command not running as root may trust a store its own user
		// owns: only that user and root can change it, so it is exactly as
		// trustworthy as the process reading it. Root trusts root's only.
		if euid := os.Geteuid(); euid != 0 && int(st.Uid) == euid {
			return nil
		}
		if !cfg.allowForeignOwner {
			return trustErr(CodeTrustInsecure, p, fmt.Sprintf("is owned by uid %d, not root", st.Uid))
		}
		if cfg.warn != nil && isDir {
			cfg.warn(fmt.Sprintf("trust store %s is owned by uid %d, not root: ownership check skipped (not running as root under --root)", p, st.Uid))
		}
	}
	return nil
}
