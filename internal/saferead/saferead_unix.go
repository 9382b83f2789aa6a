//go:build !windows

package saferead

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dir is an open directory of the tree: files are opened relative to it, so
// a walk does not resolve the same directories again for every file.
type Dir struct {
	f    *os.File
	name string // relative to the root, for errors
}

// OpenDir opens a directory of the tree (intermediate links resolved
// inside the root, the final component too when it is a link to a
// directory inside the root).
func (r *Root) OpenDir(name string) (*Dir, error) {
	n := rel(name)
	f, err := r.r.OpenFile(n, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil && r.live && isEscape(err) {
		// On the live host an absolute link is still inside "/".
		f, err = os.OpenFile("/"+n, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	}
	if err != nil {
		return nil, wrap(n, err)
	}
	return &Dir{f: f, name: n}, nil
}

// Close closes the directory.
func (d *Dir) Close() error { return d.f.Close() }

// Entries lists the directory (unsorted).
func (d *Dir) Entries() ([]fs.DirEntry, error) {
	ents, err := d.f.ReadDir(-1)
	if err != nil {
		return ents, wrap(d.name, err)
	}
	return ents, nil
}

// Readlink returns the target of the symbolic link base of d, without
// following it.
func (d *Dir) Readlink(base string) (string, error) {
	if err := checkBase(base); err != nil {
		return "", err
	}
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(int(d.f.Fd()), base, buf)
		if err != nil {
			return "", wrap(path.Join(d.name, base), err)
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		if len(buf) >= 4096 {
			return "", wrap(path.Join(d.name, base), unix.ENAMETOOLONG)
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Sub opens the subdirectory base, refusing a symlink.
func (d *Dir) Sub(base string) (*Dir, error) {
	name := path.Join(d.name, base)
	fd, err := d.openat(base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		return nil, wrap(name, err)
	}
	return &Dir{f: os.NewFile(uintptr(fd), name), name: name}, nil
}

// checkBase refuses a name that is not one entry of the directory.
func checkBase(base string) error {
	if base == "" || base == "." || base == ".." || strings.Contains(base, "/") {
		return fmt.Errorf("bad file name %q", base)
	}
	return nil
}

func (d *Dir) openat(base string, flags int) (int, error) {
	if err := checkBase(base); err != nil {
		return -1, err
	}
	rc, err := d.f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, oerr := -1, error(nil)
	if err := rc.Control(func(dfd uintptr) {
		for {
			fd, oerr = unix.Openat(int(dfd), base, flags, 0)
			if oerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return -1, err
	}
	return fd, oerr
}

func (d *Dir) lstatat(base string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := checkBase(base); err != nil {
		return st, err
	}
	rc, err := d.f.SyscallConn()
	if err != nil {
		return st, err
	}
	var serr error
	if err := rc.Control(func(dfd uintptr) {
		serr = unix.Fstatat(int(dfd), base, &st, unix.AT_SYMLINK_NOFOLLOW)
	}); err != nil {
		return st, err
	}
	return st, serr
}

// ReadFile reads the regular file base of d, appending to buf (which may
// be nil; pass buf[:0] to reuse it), reading at most limit bytes.
func (d *Dir) ReadFile(base string, buf []byte, limit int64) ([]byte, error) {
	name := path.Join(d.name, base)
	fd, st, err := d.openRegular(base)
	if err != nil {
		return buf, err
	}
	defer unix.Close(fd)
	return readFD(fd, name, buf, st.Size, limit)
}

// Open opens the regular file base of d for streaming (no size limit):
// a link, FIFO, device or socket is refused without reading a byte.
func (d *Dir) Open(base string) (*os.File, error) {
	fd, _, err := d.openRegular(base)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path.Join(d.name, base)), nil
}

// openRegular opens base without following it, without blocking, and
// checks by fstat that it is a regular file.
func (d *Dir) openRegular(base string) (int, unix.Stat_t, error) {
	name := path.Join(d.name, base)
	// Look before opening: opening a device can act (a watchdog arms, a
	// tape rewinds), so a non-regular file is refused unopened. The fstat
	// after the open catches a swap in between.
	if st, err := d.lstatat(base); err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, st, &Error{Path: name, Err: ErrSymlink}
		}
		return -1, st, &Error{Path: name, Err: ErrNotRegular, Kind: kindOf(st.Mode)}
	}
	fd, err := d.openat(base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return -1, unix.Stat_t{}, &Error{Path: name, Err: ErrSymlink}
		}
		return -1, unix.Stat_t{}, wrap(name, err)
	}
	st, err := fstatRegular(fd, name)
	if err != nil {
		unix.Close(fd)
		return -1, st, err
	}
	return fd, st, nil
}

func fstatRegular(fd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return st, wrap(name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return st, &Error{Path: name, Err: ErrNotRegular, Kind: kindOf(st.Mode)}
	}
	return st, nil
}

// readFD reads the open regular file fd (size by fstat) to EOF, at most
// limit bytes, appending to buf.
func readFD(fd int, name string, buf []byte, size, limit int64) ([]byte, error) {
	if size > limit {
		return buf, &Error{Path: name, Err: ErrTooLarge, Limit: limit}
	}
	// Files of size 0 (those of /proc) and files that grow while being
	// read are read until EOF, one byte past the limit at most.
	start := len(buf)
	buf = growTo(buf, start+int(size)+512)
	for {
		if len(buf) == cap(buf) {
			buf = growTo(buf, len(buf)*2)
		}
		room := buf[len(buf):min(cap(buf), start+int(limit)+1)]
		if len(room) == 0 {
			return buf[:start], &Error{Path: name, Err: ErrTooLarge, Limit: limit}
		}
		n, err := unix.Read(fd, room)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return buf[:start], wrap(name, err)
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// openNamed opens a path the user named, following links, without
// blocking, and checks by fstat that it is a regular file.
func openNamed(name string) (int, unix.Stat_t, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return -1, unix.Stat_t{}, &Error{Path: name, Err: err}
	}
	st, err := fstatRegular(fd, name)
	if err != nil {
		unix.Close(fd)
		return -1, st, err
	}
	return fd, st, nil
}

// File reads a file the user named (a --key FILE, a package's signature
// next to a package given on the command line), at most limit bytes. It is
// not confined to a root and follows symbolic links, since the user chose
// the path; but it opens with O_NONBLOCK, so a FIFO cannot block it, and
// refuses anything that is not a regular file by fstat of the opened
// descriptor (a link to /dev/zero is refused without reading a byte). A
// file larger than limit is refused, never truncated. Reads of a tree
// someone else controls go through Root instead.
func File(name string, limit int64) ([]byte, error) {
	fd, st, err := openNamed(name)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return readFD(fd, name, nil, st.Size, limit)
}

// OpenFile is File for streaming: it returns the opened regular file,
// without a size limit (the caller bounds what it reads).
func OpenFile(name string) (*os.File, error) {
	fd, _, err := openNamed(name)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

func kindOf(m uint32) string {
	switch m & unix.S_IFMT {
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symbolic link"
	}
	return "special file"
}
