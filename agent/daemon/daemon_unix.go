//go:build !windows

package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/arcagent/arcagent/internal/atomicfile"
)

// ListenUnix listens on a unix socket at path with the given mode and
// owner, replacing a stale socket left by an earlier run (but never a file
// that is not a socket).
func ListenUnix(ctx context.Context, path string, mode fs.FileMode, owner atomicfile.Owner) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket: remove it by hand", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another process serves %s: stop it first", path)
		}
		_ = os.Remove(path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	// The socket is created with its final mode through the umask: a
	// chmod by path afterwards would follow a symlink that the owner of the
	// directory could swap in, and widen some other file's mode as root.
	old := syscall.Umask(int(0o777 &^ mode.Perm()))
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// Lchown never follows a link.
	if err := atomicfile.Chown(path, owner); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// DropPrivileges switches a root process to the named user, its primary
// group and its supplementary groups, for every thread, and checks that
// root cannot be regained. It is a no-op when the process is not root.
func DropPrivileges(name string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("look up user %s: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("user %s has a non-numeric uid or gid", name)
	}
	if uid == 0 {
		return fmt.Errorf("user %s is root: the service must run as an unprivileged user", name)
	}
	groups := []int{gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.Atoi(g); err == nil && n != gid {
				groups = append(groups, n)
			}
		}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("set supplementary groups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("set group %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("set user %d: %w", uid, err)
	}
	if syscall.Setuid(0) == nil || os.Geteuid() == 0 {
		return errors.New("root could be regained after the privilege drop: refusing to run")
	}
	return nil
}
