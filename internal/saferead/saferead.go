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
