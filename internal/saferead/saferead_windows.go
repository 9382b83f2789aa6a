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

// On Windows there is no openat with O_NOFOLLOW: each directory of a walk
// is an os.Root of its own, the final component is examined with Lstat
// before it is opened (a symbolic link or junction is refused, as is
// anything that is not a regular file), and the opened file is checked
// again by Stat of its handle. os.Root keeps every open inside the tree.

// Dir is an open directory of the tree: files are opened relative to it, so
// a walk does not resolve the same directories again for every file.
type Dir struct {
	r    *os.Root
	name string // relative to the root, for errors
}

// OpenDir opens a directory of the tree (intermediate links resolved
// inside the root, the final component too when it is a link to a
// directory inside the root).
func (r *Root) OpenDir(name string) (*Dir, error) {
	n := rel(name)
	sub, err := r.r.OpenRoot(n)
	if err != nil && r.live && isEscape(err) {
		sub, err = os.OpenRoot("/" + n)
	}
	if err != nil {
		return nil, wrap(n, err)
	}
	return &Dir{r: sub, name: n}, nil
}

// Close closes the directory.
func (d *Dir) Close() error { return d.r.Close() }

// Entries lists the directory (unsorted).
func (d *Dir) Entries() ([]fs.DirEntry, error) {
	f, err := d.r.Open(".")
	if err != nil {
		return nil, wrap(d.name, err)
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
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
	t, err := d.r.Readlink(base)
	if err != nil {
		return "", wrap(path.Join(d.name, base), err)
	}
	return t, nil
}

// Sub opens the subdirectory base, refusing a symlink.
func (d *Dir) Sub(base string) (*Dir, error) {
	name := path.Join(d.name, base)
	if err := checkBase(base); err != nil {
		return nil, err
	}
	fi, err := d.r.Lstat(base)
	if err != nil {
		return nil, wrap(name, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 || fi.Mode()&fs.ModeIrregular != 0 {
		return nil, &Error{Path: name, Err: ErrSymlink}
	}
	if !fi.IsDir() {
		return nil, &Error{Path: name, Err: ErrNotRegular, Kind: kindOf(fi.Mode())}
	}
	sub, err := d.r.OpenRoot(base)
	if err != nil {
		return nil, wrap(name, err)
	}
	return &Dir{r: sub, name: name}, nil
}

// checkBase refuses a name that is not one entry of the directory.
func checkBase(base string) error {
	if base == "" || base == "." || base == ".." || strings.ContainsAny(base, `/\:`) {
		return fmt.Errorf("bad file name %q", base)
	}
	return nil
}

// ReadFile reads the regular file base of d, appending to buf (which may
// be nil; pass buf[:0] to reuse it), reading at most limit bytes.
func (d *Dir) ReadFile(base string, buf []byte, limit int64) ([]byte, error) {
	name := path.Join(d.name, base)
	f, size, err := d.openRegular(base)
	if err != nil {
		return buf, err
	}
	defer f.Close()
	return readLimited(f, name, buf, size, limit)
}

// Open opens the regular file base of d for streaming (no size limit):
// a link or anything but a regular file is refused without reading a byte.
func (d *Dir) Open(base string) (*os.File, error) {
	f, _, err := d.openRegular(base)
	return f, err
}

func (d *Dir) openRegular(base string) (*os.File, int64, error) {
	name := path.Join(d.name, base)
	if err := checkBase(base); err != nil {
		return nil, 0, err
	}
	fi, err := d.r.Lstat(base)
	if err != nil {
		return nil, 0, wrap(name, err)
	}
	if err := regular(name, fi); err != nil {
		return nil, 0, err
	}
	f, err := d.r.Open(base)
	if err != nil {
		return nil, 0, wrap(name, err)
	}
	size, err := statRegular(f, name)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, size, nil
}

// regular refuses what is not a regular file: a link (or other reparse
// point) as ErrSymlink, anything else as ErrNotRegular.
func regular(name string, fi fs.FileInfo) error {
	m := fi.Mode()
	switch {
	case m&fs.ModeSymlink != 0 || m&fs.ModeIrregular != 0:
		return &Error{Path: name, Err: ErrSymlink}
	case !m.IsRegular():
		return &Error{Path: name, Err: ErrNotRegular, Kind: kindOf(m)}
	}
	return nil
}

func statRegular(f *os.File, name string) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, wrap(name, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, &Error{Path: name, Err: ErrNotRegular, Kind: kindOf(fi.Mode())}
	}
	return fi.Size(), nil
}

// readLimited reads the open regular file f (size by stat) to EOF, at most
// limit bytes, appending to buf.
func readLimited(f *os.File, name string, buf []byte, size, limit int64) ([]byte, error) {
	if size > limit {
		return buf, &Error{Path: name, Err: ErrTooLarge, Limit: limit}
	}
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
		n, err := f.Read(room)
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf[:start], wrap(name, err)
		}
	}
}

// openNamed opens a path the user named, following links, and checks
// before and after the open that it is a regular file.
func openNamed(name string) (*os.File, int64, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, 0, wrapNamed(name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, &Error{Path: name, Err: ErrNotRegular, Kind: kindOf(fi.Mode())}
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, wrapNamed(name, err)
	}
	size, err := statRegular(f, name)
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, size, nil
}

func wrapNamed(name string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &Error{Path: name, Err: err}
}

// File reads a file the user named (a --key FILE, a --config FILE), at
// most limit bytes. It follows links, since the user chose the path, but
// refuses anything that is not a regular file (a named pipe, a device such
// as NUL) without reading a byte. A file larger than limit is refused,
// never truncated.
func File(name string, limit int64) ([]byte, error) {
	f, size, err := openNamed(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, name, nil, size, limit)
}

// OpenFile is File for streaming: it returns the opened regular file,
// without a size limit (the caller bounds what it reads).
func OpenFile(name string) (*os.File, error) {
	f, _, err := openNamed(name)
	return f, err
}

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	}
	return "special file"
}
