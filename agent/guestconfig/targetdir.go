package guestconfig

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path"
	"sort"

	"github.com/arcagent/arcagent/errcode"
)

// listDir lists the target directory p sorted by name (a missing directory
// is an error satisfying errors.Is(err, fs.ErrNotExist)).
func (e *Env) listDir(p string) ([]fs.DirEntry, error) {
	d, err := e.reads.OpenDir(p)
	if err != nil {
		return nil, e.wrap(p, err)
	}
	defer d.Close()
	ents, err := d.Entries()
	if err != nil {
		return nil, e.wrap(p, err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	return ents, nil
}

// readlink returns the target of the link p of the target.
func (e *Env) readlink(p string) (string, error) {
	t, err := e.reads.Readlink(p)
	if err != nil {
		return "", e.wrap(p, err)
	}
	return t, nil
}

// resolveLink is where the link at p points, as a clean target path
// (relative targets taken from p's directory), lexically.
func resolveLink(p, target string) string {
	if path.IsAbs(target) {
		return path.Clean(target)
	}
	return path.Join(path.Dir(p), target)
}

// writeInPlace writes data into the existing file p without replacing it
// (kernel files of /proc/sys on the live system cannot be renamed over).
func (e *Env) writeInPlace(p string, data []byte) error {
	if err := e.requireWrite(p); err != nil {
		return err
	}
	d, done, err := e.parentDir(p, false)
	if err != nil {
		return err
	}
	defer done()
	f, err := d.OpenFile(path.Base(p), os.O_WRONLY|oNoFollow, 0)
	if err != nil {
		return errcode.Wrap(CodeResource, e.wrap(p, err), "open %s for writing", p)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return errcode.Wrap(CodeResource, err, "write %s", p)
	}
	if err := f.Close(); err != nil {
		return errcode.Wrap(CodeResource, err, "write %s", p)
	}
	return nil
}

// symlink makes p a symbolic link to target atomically (a temporary link
// beside it renamed over p). Only a missing p or a link is replaced.
func (e *Env) symlink(p, target string) error {
	if err := e.requireWrite(p); err != nil {
		return err
	}
	d, done, err := e.parentDir(p, true)
	if err != nil {
		return err
	}
	defer done()
	base := path.Base(p)
	fi, err := d.Lstat(base)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink == 0:
		return errcode.New(CodeResource, "refusing to replace %s with a link: it is a %s", p, fileType(fi.Mode()))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return errcode.Wrap(CodeResource, e.wrap(p, err), "inspect %s", p)
	}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	tmp := "." + base + ".gc-tmp-" + hex.EncodeToString(rb[:])
	if err := d.Symlink(target, tmp); err != nil {
		return errcode.Wrap(CodeResource, e.wrap(p, err), "link %s", p)
	}
	if err := d.Rename(tmp, base); err != nil {
		_ = d.Remove(tmp)
		return errcode.Wrap(CodeResource, e.wrap(p, err), "link %s", p)
	}
	return nil
}

// removeLink removes the symbolic link p (a missing p is not an error;
// anything else is refused).
func (e *Env) removeLink(p string) error {
	if err := e.requireWrite(p); err != nil {
		return err
	}
	d, done, err := e.parentDir(p, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer done()
	base := path.Base(p)
	fi, err := d.Lstat(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errcode.Wrap(CodeResource, e.wrap(p, err), "inspect %s", p)
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return errcode.New(CodeResource, "refusing to remove %s: it is a %s, not a link", p, fileType(fi.Mode()))
	}
	if err := d.Remove(base); err != nil {
		return errcode.Wrap(CodeResource, e.wrap(p, err), "remove %s", p)
	}
	return nil
}
