package atomicfile

import (
	"errors"
	"os"
	"time"
)

// lockPoll is how often LockFile retries a lock another process holds.
const lockPoll = 10 * time.Millisecond

// ErrUnsafeLock marks a lock file that LockFile refuses to use: a symbolic
// link or not a regular file. Removing it is the fix.
var ErrUnsafeLock = errors.New("unsafe lock file")

// Lock is an advisory inter-process lock (flock) on a sidecar file
// "<path>.lock". Writers of a state file that read-modify-write it hold the
// lock so that two concurrent processes lose no update.
type Lock struct {
	f *os.File
}
