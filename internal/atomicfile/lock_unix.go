//go:build !windows

package atomicfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// LockFile takes the exclusive lock for path, waiting until ctx is done.
//
// The lock file is opened without following a symbolic link (O_NOFOLLOW):
// a link planted at "<path>.lock" is refused, so a privileged writer never
// creates or opens the link's target. A lock file that is not a regular
// file is refused too. A new lock file has mode 0600.
func LockFile(ctx context.Context, path string) (*Lock, error) {
	return lockFile(ctx, path, syscall.LOCK_EX)
}

// LockFileShared takes the lock for path shared: any number of processes
// may hold it shared at once, while LockFile's exclusive lock excludes
// them all. It waits until ctx is done.
func LockFileShared(ctx context.Context, path string) (*Lock, error) {
	return lockFile(ctx, path, syscall.LOCK_SH)
}

func lockFile(ctx context.Context, path string, how int) (*Lock, error) {
	name := path + ".lock"
	fd, err := openNoFollow(name)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("lock %s: %s is a symbolic link; remove it (arcagent recreates it): %w", path, name, ErrUnsafeLock)
		}
		return nil, fmt.Errorf("lock %s: %w", path, &os.PathError{Op: "open", Path: name, Err: err})
	}
	f := os.NewFile(uintptr(fd), name)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("lock %s: %s is not a regular file (%s); remove it (arcagent recreates it): %w", path, name, fi.Mode().Type(), ErrUnsafeLock)
	}
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		err := syscall.Flock(fd, how|syscall.LOCK_NB)
		if err == nil {
			return &Lock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
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

func openNoFollow(name string) (int, error) {
	for {
		fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CREAT|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0o600)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		return fd, err
	}
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("unlock %s: %w", f.Name(), err)
	}
	return nil
}
