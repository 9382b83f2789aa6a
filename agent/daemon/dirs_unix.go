//go:build !windows

package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/arcagent/arcagent/internal/atomicfile"
	"golang.org/x/sys/unix"
)

func checkDir(d Dir, log *slog.Logger) error {
	if d.Create {
		if _, err := os.Lstat(d.Path); errors.Is(err, fs.ErrNotExist) {
			// Parents get the ordinary 0755; only the directory itself
			// gets its restrictive mode (MkdirAll would give it to all).
			if err := os.MkdirAll(filepath.Dir(d.Path), 0o755); err != nil {
				return fmt.Errorf("create %s: %w", filepath.Dir(d.Path), err)
			}
			if err := os.Mkdir(d.Path, d.Mode); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("create %s: %w", d.Path, err)
			}
		}
	}
	// Opened without following a link: the checks and repairs below act
	// on this very directory, never on what a link points to.
	fd, err := unix.Open(d.Path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT) && !d.Create:
		return nil
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%s is not a directory (a symlink or a file): remove it (`sudo rm %s`) and start the service again, which creates it", d.Path, d.Path)
	case err != nil:
		return fmt.Errorf("open %s: %w", d.Path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", d.Path, err)
	}
	euid := os.Geteuid()
	uid, gid, ownerName := wantOwner(d.Owner, euid)
	var fixes []string
	if (uid >= 0 && int(st.Uid) != uid) || (gid >= 0 && int(st.Gid) != gid) {
		if euid == 0 {
			if err := unix.Fchown(fd, uid, gid); err != nil {
				return fmt.Errorf("set the owner of %s to %s: %w", d.Path, ownerName, err)
			}
			log.Warn("repaired the owner of a directory", "dir", d.Path, "was", fmt.Sprintf("%d:%d", st.Uid, st.Gid), "now", ownerName)
		} else {
			fixes = append(fixes, fmt.Sprintf("sudo chown %s %s", ownerName, d.Path))
		}
	}
	if perm := fs.FileMode(st.Mode & 0o7777); perm != d.Mode.Perm() {
		if euid == 0 || int(st.Uid) == euid {
			if err := unix.Fchmod(fd, uint32(d.Mode.Perm())); err != nil {
				return fmt.Errorf("set the mode of %s to %04o: %w", d.Path, d.Mode.Perm(), err)
			}
			log.Warn("repaired the mode of a directory", "dir", d.Path, "was", fmt.Sprintf("%04o", perm), "now", fmt.Sprintf("%04o", d.Mode.Perm()))
		} else {
			fixes = append(fixes, fmt.Sprintf("sudo chmod %04o %s", d.Mode.Perm(), d.Path))
		}
	}
	if len(fixes) > 0 {
		fix := fixes[0]
		if len(fixes) > 1 {
			fix += " && " + fixes[1]
		}
		return fmt.Errorf("%s has owner %d:%d and mode %04o, want %s and %04o, and only root can repair it: run `%s`, or start the service as root once",
			d.Path, st.Uid, st.Gid, st.Mode&0o7777, ownerName, d.Mode.Perm(), fix)
	}
	return nil
}

// wantOwner is the owner a directory must have: as root the layout's
// user and group (each -1 when it does not exist on this host); otherwise
// the process's own user, which must own what it relies on (the service
// user under systemd, the developer in a tree under --root).
func wantOwner(o atomicfile.Owner, euid int) (uid, gid int, name string) {
	if euid != 0 {
		name = strconv.Itoa(euid)
		if u, err := user.LookupId(name); err == nil {
			name = u.Username
		}
		return euid, -1, name
	}
	uid, gid = atomicfile.ResolveOwner(o)
	switch {
	case uid >= 0 && gid >= 0:
		name = o.User + ":" + o.Group
	case uid >= 0:
		name = o.User
	case gid >= 0:
		name = ":" + o.Group
	default:
		name = "root"
	}
	return uid, gid, name
}
