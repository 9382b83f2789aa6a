//go:build !windows

package himds

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// tokensDir is the tokens directory opened once. Secret files are created
// and removed relative to it (openat with O_EXCL|O_NOFOLLOW, unlinkat) by a
// single name generated here, never a path: nothing walks the path on a
// request, and nothing lands outside the directory. Every operation holds
// a read lock, so close never lets an operation run on a reused
// descriptor number.
type tokensDir struct {
	path string

	mu     sync.RWMutex
	fd     int
	closed bool
}

func openTokensDir(path string) (*tokensDir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &tokensDir{path: path, fd: fd}, nil
}

var errDirClosed = errors.New("the tokens directory was closed")

// do runs f with the directory's descriptor unless it was closed.
func (d *tokensDir) do(f func(fd int) error) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return errDirClosed
	}
	return f(d.fd)
}

// create makes a new file name, mode perm, that did not exist before: no
// existing file or link is ever opened.
func (d *tokensDir) create(name string, perm uint32) (int, error) {
	var fd int
	err := d.do(func(dirfd int) error {
		var err error
		fd, err = unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		return err
	})
	if err != nil {
		return -1, &os.PathError{Op: "create", Path: d.path + "/" + name, Err: err}
	}
	return fd, nil
}

// remove unlinks name.
func (d *tokensDir) remove(name string) error {
	return d.do(func(dirfd int) error { return unix.Unlinkat(dirfd, name, 0) })
}

// same reports whether the opened directory is still the one at its path.
func (d *tokensDir) same() bool {
	var opened unix.Stat_t
	if err := d.do(func(dirfd int) error { return unix.Fstat(dirfd, &opened) }); err != nil {
		return false
	}
	var current unix.Stat_t
	if err := unix.Stat(d.path, &current); err != nil {
		return false
	}
	return opened.Dev == current.Dev && opened.Ino == current.Ino
}

// close closes the descriptor once no operation uses it.
func (d *tokensDir) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		_ = unix.Close(d.fd)
	}
}

// pwriteAll writes b at offset 0 of fd.
func pwriteAll(fd int, b []byte) error {
	for off := 0; off < len(b); {
		n, err := unix.Pwrite(fd, b[off:], int64(off))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("short write: %w", unix.EIO)
		}
		off += n
	}
	return nil
}

// finishSecret gives the new secret file fd its mode and owner, writes the
// secret and closes the file.
func finishSecret(fd, uid, gid int, secret []byte) error {
	// The umask may have narrowed the mode; group himds must read it.
	err := unix.Fchmod(fd, 0o640)
	if err == nil && (uid >= 0 || gid >= 0) {
		err = unix.Fchown(fd, uid, gid)
	}
	if err == nil {
		err = pwriteAll(fd, secret)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	return err
}
