// Package atomicfile writes files atomically and takes advisory file
// locks. It is a leaf: every side of arcagent (agent, control plane, CLI,
// signing, reports) uses it for its state and output files, and it imports
// nothing of arcagent.
//
// A write goes to a temporary file beside the target, is fsynced, gets its
// mode and owner, is renamed over the target, and the directory is fsynced:
// readers see the old file or the new one, and a crash leaves the old one.
// Nothing in this package follows a symbolic link at the target or at a lock
// file: a link is replaced (writes) or refused (locks), never written
// through.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Owner names a file's owner and group. Empty names leave that part alone.
type Owner struct {
	User  string
	Group string
}

// WriteOptions controls WriteFile and Write.
type WriteOptions struct {
	// Mode is the permission of the file written (default 0600). Without
	// Enforce, an existing regular file keeps its mode.
	Mode fs.FileMode
	// Owner is applied when the process may change ownership (root) and
	// the named user/group exist. Without Enforce, an existing regular
	// file keeps its owner.
	Owner Owner
	// Enforce applies Mode and Owner even when the file exists: for files
	// whose owner and mode a layout prescribes, so that a tampered mode is
	// repaired on the next write instead of carried forward.
	Enforce bool
	// Output marks a path a person named for a command's output (-o
	// FORMAT=FILE). Links are followed, as the person meant them; when the
	// path leads to something other than a regular file (/dev/null,
	// /dev/stdout, a FIFO, a terminal) the content is written into it in
	// place, never by replacing it. Without Output such a path is refused:
	// a state file is a regular file or a link to be replaced.
	Output bool
}

// WriteFile writes data to path atomically (see the package comment).
func WriteFile(path string, data []byte, opts WriteOptions) error {
	return Write(path, opts, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// TempPattern is the pattern of the temporary files a write of path
// creates beside it, as os.CreateTemp takes it.
func TempPattern(path string) string {
	return "." + filepath.Base(path) + ".tmp-*"
}

// Write is WriteFile for content that a function streams into the file.
// The previous file's mode and owner are read with Lstat: a symbolic link
// at path is replaced by a regular file with opts' mode and owner, and its
// target is neither written nor consulted.
func Write(path string, opts WriteOptions, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	mode := opts.Mode.Perm()
	if mode == 0 {
		mode = 0o600
	}
	uid, gid := ResolveOwner(opts.Owner)
	if opts.Output {
		if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
			return writeInPlace(path, write)
		}
		// A link to a regular file: replace the file it names, not the link.
		if real, err := filepath.EvalSymlinks(path); err == nil {
			path, dir = real, filepath.Dir(real)
		}
	}
	fi, statErr := os.Lstat(path)
	switch {
	case statErr == nil && !fi.Mode().IsRegular() && !fi.IsDir() && fi.Mode()&fs.ModeSymlink == 0:
		return fmt.Errorf("replace %s: it is not a regular file (%s); remove it or choose another path", path, fi.Mode().Type())
	case statErr == nil && fi.Mode().IsRegular() && !opts.Enforce:
		mode = fi.Mode().Perm()
		if u, g, ok := fileOwner(fi); ok {
			uid, gid = u, g
		}
	case statErr == nil && fi.IsDir():
		return fmt.Errorf("replace %s: it is a directory; move it away and retry", path)
	case statErr != nil && !errors.Is(statErr, fs.ErrNotExist):
		return fmt.Errorf("inspect %s: %w", path, statErr)
	}

	tmp, err := os.CreateTemp(dir, TempPattern(path))
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
	if (uid >= 0 || gid >= 0) && os.Geteuid() == 0 {
		if err = tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("set owner of %s: %w", tmpName, err)
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

// writeInPlace writes into an existing device, FIFO or socket path (opened
// without creating or truncating anything), for Output paths.
func writeInPlace(path string, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if err := write(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// RemoveStale removes the temporary files that writes of path left behind
// when their process was killed between creating and renaming them. Call it
// only while holding the lock of path (LockFile), so that no live writer's
// temporary file is removed. Links among them are removed, not followed.
func RemoveStale(path string) error {
	matches, err := filepath.Glob(filepath.Join(filepath.Dir(path), TempPattern(path)))
	if err != nil {
		return fmt.Errorf("list temporary files of %s: %w", path, err)
	}
	var errs []error
	prefix := strings.TrimSuffix(TempPattern(path), "*")
	for _, m := range matches {
		if !strings.HasPrefix(filepath.Base(m), prefix) {
			continue
		}
		if err := os.Remove(m); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove stale temporary file %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
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

// Chown applies o to path (not following a link) when running as root and
// the names exist. It is a no-op for an unprivileged process (development
// trees under --root).
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
