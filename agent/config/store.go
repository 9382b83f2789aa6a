package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

// Store reads and writes localconfig.json.
type Store struct {
	Path  string
	Owner atomicfile.Owner
	Mode  fs.FileMode
	// LockTimeout bounds the wait for another writer (default 10s).
	LockTimeout time.Duration
}

// NewStore returns the store for the layout's localconfig.json, written
// with the owner and mode of its layout entry (root:himds 0640) every time.
func NewStore(l layout.Layout) *Store {
	e, _ := layout.Lookup("localconfig")
	return &Store{Path: l.LocalConfig(), Owner: atomicfile.Owner{User: e.Owner, Group: e.Group}, Mode: e.Mode}
}

// Load reads the settings. A missing file means all defaults. A file that
// cannot be read or parsed is an error naming the path; it is never reset.
func (st *Store) Load() (*Settings, []string, error) {
	data, err := os.ReadFile(st.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return NewSettings(), nil, nil
	}
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return nil, nil, errcode.Wrap(errcode.PermissionDenied, err, "cannot read %s", st.Path)
		}
		return nil, nil, errcode.Wrap(errcode.ConfigUnreadable, err, "cannot read %s", st.Path)
	}
	return ParseFile(st.Path, data)
}

// Update applies fn to the current settings under an exclusive lock and
// writes the result atomically. If fn fails nothing is written, so two
// concurrent processes lose no update and a crash leaves the old file.
func (st *Store) Update(ctx context.Context, fn func(*Settings) error) ([]string, error) {
	lock, err := st.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()

	s, warnings, err := st.Load()
	if err != nil {
		return warnings, err
	}
	if err := fn(s); err != nil {
		return warnings, err
	}
	return warnings, st.write(s)
}

func (st *Store) write(s *Settings) error {
	data, err := s.Marshal()
	if err != nil {
		return errcode.Wrap(errcode.Internal, err, "encode %s", st.Path)
	}
	mode := st.Mode
	if mode == 0 {
		mode = 0o640
	}
	// Enforce: the file gets the layout's owner and mode every time, never
	// those of the file it replaces (nor of a link's target: a symbolic
	// link at Path is replaced by a regular file).
	if err := atomicfile.WriteFile(st.Path, data, atomicfile.WriteOptions{Mode: mode, Owner: st.Owner, Enforce: true}); err != nil {
		return permOr(err, errcode.WriteFailed, "cannot write %s", st.Path)
	}
	return nil
}

// Reset moves the current file aside (kept as "<path>.bad-<time>", even if
// it is corrupt) and writes one with only the defaults. It returns the path
// the old file was moved to, or "" if there was none.
func (st *Store) Reset(ctx context.Context, now time.Time) (string, error) {
	lock, err := st.lock(ctx)
	if err != nil {
		return "", err
	}
	defer lock.Unlock()
	aside := ""
	if _, err := os.Lstat(st.Path); err == nil {
		aside = fmt.Sprintf("%s.bad-%s", st.Path, now.UTC().Format("20060102T150405Z"))
		if err := os.Link(st.Path, aside); err != nil {
			return "", permOr(err, errcode.WriteFailed, "cannot keep a copy of %s", st.Path)
		}
	}
	return aside, st.write(NewSettings())
}

// removeStale removes the temporary files of a writer that was killed
// before it renamed them. The caller holds the lock, so no live writer's
// file is among them; a failure only leaves litter, so it is not fatal.
func (st *Store) removeStale() {
	_ = atomicfile.RemoveStale(st.Path)
}

// lock takes the exclusive lock of the file (waiting at most LockTimeout,
// default 10 s, for another writer), after creating its directory, and
// removes what a killed writer left behind.
func (st *Store) lock(ctx context.Context) (*atomicfile.Lock, error) {
	if err := os.MkdirAll(filepath.Dir(st.Path), 0o755); err != nil {
		return nil, permOr(err, errcode.WriteFailed, "cannot create %s", filepath.Dir(st.Path))
	}
	timeout := st.LockTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lock, err := atomicfile.LockFile(lctx, st.Path)
	if err != nil {
		if errors.Is(err, atomicfile.ErrUnsafeLock) {
			return nil, errcode.Wrap(errcode.WriteFailed, err, "cannot lock %s", st.Path)
		}
		return nil, permOr(err, errcode.ConfigLocked, "cannot lock %s", st.Path)
	}
	st.removeStale()
	return lock, nil
}

func permOr(err error, code errcode.Code, format string, args ...any) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return errcode.Wrap(errcode.PermissionDenied, err, format, args...)
	}
	return errcode.Wrap(code, err, format, args...)
}
