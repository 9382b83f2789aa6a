package layout

import (
	"context"
	"fmt"
	"time"

	"github.com/gofrs/flock"
)

// Lock is an advisory inter-process lock on a sidecar file ("<path>.lock").
// Writers of a state file that read-modify-write it hold the lock so that
// two concurrent processes lose no update.
type Lock struct {
	fl *flock.Flock
}

// LockFile takes the exclusive lock for path, waiting until ctx is done.
func LockFile(ctx context.Context, path string) (*Lock, error) {
	fl := flock.New(path + ".lock")
	ok, err := fl.TryLockContext(ctx, 10*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("lock %s: another arcagent process holds it", path)
	}
	return &Lock{fl: fl}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil || l.fl == nil {
		return nil
	}
	return l.fl.Unlock()
}
