package guestconfig

import (
	"io/fs"
	"os"
	"path"
	"sort"
	"syscall"

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
	if err := CheckPath(p); err != nil {
		return err
	}
	f, err := e.writes.OpenFile(rel(p), os.O_WRONLY|syscall.O_NOFOLLOW, 0)
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
