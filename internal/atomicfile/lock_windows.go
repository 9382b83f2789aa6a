package atomicfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// LockFile takes the exclusive lock for path, waiting until ctx is done.
//
// On Windows the lock is LockFileEx on the first byte of "<path>.lock".
// The file is opened with FILE_FLAG_OPEN_REPARSE_POINT, so a symbolic link
// or junction planted at "<path>.lock" is opened itself, not its target,
// and then refused; a lock file that is not a regular disk file is refused
// too. A new lock file inherits the ACL of its directory.
func LockFile(ctx context.Context, path string) (*Lock, error) {
	return lockFile(ctx, path, windows.LOCKFILE_EXCLUSIVE_LOCK)
}

// LockFileShared takes the lock for path shared: any number of processes
// may hold it shared at once, while LockFile's exclusive lock excludes
// them all. It waits until ctx is done.
func LockFileShared(ctx context.Context, path string) (*Lock, error) {
	return lockFile(ctx, path, 0)
}

func lockFile(ctx context.Context, path string, how uint32) (*Lock, error) {
	name := path + ".lock"
	p, err := windows.UTF16PtrFromString(name)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_ALWAYS, windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, &os.PathError{Op: "open", Path: name, Err: err})
	}
	f := os.NewFile(uintptr(h), name)
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, &os.PathError{Op: "stat", Path: name, Err: err})
	}
	if info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0 {
		f.Close()
		return nil, fmt.Errorf("lock %s: %s is a symbolic link or junction; remove it (arcagent recreates it): %w", path, name, ErrUnsafeLock)
	}
	if t, _ := windows.GetFileType(h); t != windows.FILE_TYPE_DISK || info.FileAttributes&windows.FILE_ATTRIBUTE_DIRECTORY != 0 {
		f.Close()
		return nil, fmt.Errorf("lock %s: %s is not a regular file; remove it (arcagent recreates it): %w", path, name, ErrUnsafeLock)
	}
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		ol := new(windows.Overlapped)
		err := windows.LockFileEx(h, how|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
		if err == nil {
			return &Lock{f: f}, nil
		}
		if !errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: another arcagent process holds it; retry when it has finished: %w", path, ctx.Err())
		case <-t.C:
		}
	}
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	err := windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, new(windows.Overlapped))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("unlock %s: %w", f.Name(), err)
	}
	return nil
}
