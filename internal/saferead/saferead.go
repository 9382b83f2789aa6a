// Package saferead reads files of a tree that someone else controls (an
// image under `audit --root`, users' home directories on the live host)
// without being led out of the tree, blocked, or made to read without end.
//
// Every read is resolved inside a root directory with os.Root: symlinks in
// the directories on the way are followed only while they stay inside the
// root (an absolute link or one with too many ".." is refused). The final
// component is never followed: it is opened with O_NOFOLLOW|O_NONBLOCK, so a
// symlink is refused and a FIFO cannot block the open, and it must be a
// regular file by fstat of the opened descriptor (device files such as
// /dev/zero, FIFOs and sockets are refused without reading a byte). At most
// the caller's limit is read; a larger file is refused, never truncated.
//
// For the live host the root is "/". There, an absolute symlink in a
// directory on the way does not leave the tree, so it is followed.
package saferead

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Default limits.
const (
	// ConfigLimit bounds configuration-like files: passwd, group, unit
	// files, localconfig.json, agentconfig.json, manifests.
	ConfigLimit = 1 << 20
	// ScanLimit bounds each file the secret scan reads.
	ScanLimit = 1 << 20
)

// Reasons a read is refused; test them with errors.Is.
var (
	ErrSymlink    = errors.New("is a symbolic link, which is not followed")
	ErrNotRegular = errors.New("is not a regular file")
	ErrTooLarge   = errors.New("is larger than the read limit")
	ErrEscapes    = errors.New("leads outside the audited root")
)

// Error says which path was refused and why. Its text names the path and,
// for ErrTooLarge, the limit.
type Error struct {
	Path  string // as given by the caller, relative to the root
	Err   error  // one of the Err* reasons, or the OS error
	Kind  string // for ErrNotRegular: what the file is
	Limit int64  // for ErrTooLarge
}

func (e *Error) Error() string {
	switch {
	case errors.Is(e.Err, ErrTooLarge):
		return fmt.Sprintf("%s is larger than the %s read limit: it was not read (a file that large is not one the agent writes; inspect it)", e.Path, human(e.Limit))
	case errors.Is(e.Err, ErrNotRegular):
		return fmt.Sprintf("%s is a %s, not a regular file: it was not read", e.Path, e.Kind)
	case errors.Is(e.Err, ErrSymlink):
		return fmt.Sprintf("%s is a symbolic link: links are not followed when reading this tree; replace it with the file itself", e.Path)
	case errors.Is(e.Err, ErrEscapes):
		return fmt.Sprintf("%s leads outside the audited root through a symbolic link (absolute or with ..): it was not read", e.Path)
	}
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func human(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d-byte", n)
}

// Root is a directory tree that reads are confined to.
type Root struct {
	r    *os.Root
	live bool // the root is "/": absolute links stay inside
}

// Open opens dir as the root of later reads.
func Open(dir string) (*Root, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s as the audited root: %w", dir, err)
	}
	return &Root{r: r, live: path.Clean(dir) == "/"}, nil
}

// Close releases the root.
func (r *Root) Close() error { return r.r.Close() }

// rel turns a production path ("/etc/passwd") or a relative one into the
// name os.Root wants ("etc/passwd", "." for the root itself).
func rel(name string) string {
	name = strings.TrimLeft(path.Clean("/"+name), "/")
	if name == "" {
		return "."
	}
	return name
}

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

func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b
	}
	nb := make([]byte, len(b), n)
	copy(nb, b)
	return nb
}

// ReadFile reads the regular file name (a production path such as
// "/etc/passwd" or one relative to the root) through the rules of the
// package, reading at most limit bytes.
func (r *Root) ReadFile(name string, limit int64) ([]byte, error) {
	n := rel(name)
	dir, base := path.Split(n)
	if base == "." || base == "" {
		return nil, &Error{Path: n, Err: ErrNotRegular, Kind: "directory"}
	}
	d, err := r.OpenDir(dir)
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			se.Path = n // name the file asked for
		}
		return nil, err
	}
	defer d.Close()
	return d.ReadFile(base, nil, limit)
}

// Open opens the regular file name of the tree for streaming, through the
// rules of the package but without a size limit.
func (r *Root) Open(name string) (*os.File, error) {
	n := rel(name)
	dir, base := path.Split(n)
	if base == "." || base == "" {
		return nil, &Error{Path: n, Err: ErrNotRegular, Kind: "directory"}
	}
	d, err := r.OpenDir(dir)
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			se.Path = n
		}
		return nil, err
	}
	defer d.Close()
	return d.Open(base)
}

// Readlink returns the target of the symbolic link name (directories on
// the way resolved inside the root).
func (r *Root) Readlink(name string) (string, error) {
	n := rel(name)
	t, err := r.r.Readlink(n)
	if err != nil {
		return "", wrap(n, err)
	}
	return t, nil
}

// Lstat describes name without following its final component.
func (r *Root) Lstat(name string) (fs.FileInfo, error) {
	n := rel(name)
	fi, err := r.r.Lstat(n)
	if err != nil && r.live && isEscape(err) {
		fi, err = os.Lstat("/" + n)
	}
	if err != nil {
		return nil, wrap(n, err)
	}
	return fi, nil
}

// ReadBounded reads at most limit bytes of a kernel file such as
// /proc/PID/status (no root, no checks: for /proc on the live host only).
func ReadBounded(name string, buf []byte, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return buf, err
	}
	defer f.Close()
	start := len(buf)
	buf = growTo(buf, start+4096)
	for {
		if len(buf) == cap(buf) {
			buf = growTo(buf, len(buf)*2)
		}
		room := buf[len(buf):min(cap(buf), start+int(limit)+1)]
		if len(room) == 0 {
			return buf[:start], &Error{Path: name, Err: ErrTooLarge, Limit: limit}
		}
		n, err := f.Read(room)
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf[:start], err
		}
	}
}

// isEscape recognises os.Root's refusal of a path leaving the root (os
// does not export that error).
func isEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}

// wrap gives an OS error the path; a link out of the root becomes
// ErrEscapes. fs.ErrNotExist and fs.ErrPermission stay testable.
func wrap(name string, err error) error {
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	if isEscape(err) {
		return &Error{Path: name, Err: ErrEscapes}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &Error{Path: name, Err: err}
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
