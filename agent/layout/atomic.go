package layout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// Owner names a file's owner and group. Empty names leave that part alone.
type Owner struct {
	User  string
	Group string
}

// WriteOptions controls WriteFileAtomic.
type WriteOptions struct {
	// Mode is the permission of a new file. An existing file keeps its mode.
	Mode fs.FileMode
	// Owner is applied to a new file when the process may change ownership
	// and the named user/group exist. An existing file keeps its owner.
	Owner Owner
}

// WriteFileAtomic writes data to path so that readers see either the old
// file or the new one, never a mix, and a crash leaves the old file intact:
// it writes a temporary file in the same directory, fsyncs it, gives it the
// mode and owner of the file it replaces (or opts for a new file), renames
// it over path, and fsyncs the directory.
func WriteFileAtomic(path string, data []byte, opts WriteOptions) error {
	return WriteAtomic(path, opts, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic is WriteFileAtomic for content produced by a function that
// streams into the file.
func WriteAtomic(path string, opts WriteOptions, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	mode := opts.Mode
	if mode == 0 {
		mode = 0o600
	}
	uid, gid := -1, -1
	if fi, statErr := os.Stat(path); statErr == nil {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	} else if !errors.Is(statErr, fs.ErrNotExist) {
		return fmt.Errorf("inspect %s: %w", path, statErr)
	} else {
		uid, gid = ResolveOwner(opts.Owner)
	}

	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file beside %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	// CreateTemp uses 0600; set the final mode before any content lands so
	// a secret is never briefly more readable than it should be.
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("set mode of %s: %w", tmpName, err)
	}
	if uid >= 0 || gid >= 0 {
		if os.Geteuid() == 0 {
			if err = tmp.Chown(uid, gid); err != nil {
				return fmt.Errorf("set owner of %s: %w", tmpName, err)
			}
		}
	}
	if err = write(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmpName, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmpName, err)
	}
	if err = os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that a rename in it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// ResolveOwner looks up the numeric ids of o. A name that is empty or does
// not exist on this host yields -1 (leave unchanged).
func ResolveOwner(o Owner) (uid, gid int) {
	uid, gid = -1, -1
	if o.User != "" {
		if u, err := user.Lookup(o.User); err == nil {
			if n, err := strconv.Atoi(u.Uid); err == nil {
				uid = n
			}
		}
	}
	if o.Group != "" {
		if g, err := user.LookupGroup(o.Group); err == nil {
			if n, err := strconv.Atoi(g.Gid); err == nil {
				gid = n
			}
		}
	}
	return uid, gid
}

// Chown applies o to path when running as root and the names exist. It is a
// no-op for an unprivileged process (development trees under --root).
func Chown(path string, o Owner) error {
	if os.Geteuid() != 0 {
		return nil
	}
	uid, gid := ResolveOwner(o)
	if uid < 0 && gid < 0 {
		return nil
	}
	if err := os.Lchown(path, uid, gid); err != nil {
		return fmt.Errorf("set owner of %s: %w", path, err)
	}
	return nil
}
