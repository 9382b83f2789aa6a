package himds

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
)

// Challenge limits.
const (
	// DefaultChallengeTTL is how long a secret file may be redeemed.
	DefaultChallengeTTL = 60 * time.Second
	// DefaultMaxChallenges bounds the outstanding secret files.
	DefaultMaxChallenges = 4096
	// MaxSecretFileSize is what MSAL and the Azure SDKs accept.
	MaxSecretFileSize = 4096
)

// Errors of the challenge store.
var (
	errTooManyChallenges = errors.New("too many outstanding challenges")
	errBadSecret         = errors.New("the secret is unknown, already used or expired")
)

type challenge struct {
	path    string
	expires time.Time
}

// challenges issues and redeems the single-use secrets of the
// managed-identity challenge flow. Each secret lives in a file named
// <random>.key in the tokens directory, mode 0640, owner himds:himds, so
// that only root and members of group himds can read it.
type challenges struct {
	dir string
	ttl time.Duration
	max int
	now func() time.Time
	log *slog.Logger

	// uid and gid are applied to new secret files when running as root
	// (resolved once: a user lookup per request is slow).
	uid, gid int

	mu       sync.Mutex
	pending  map[[32]byte]challenge // by sha256 of the secret
	reserved int                    // slots taken by files being written

	// While run is running, used secret files are removed by one
	// goroutine, off the request path (the secret is invalid already).
	remove  chan string
	running atomic.Bool

	// root is the tokens directory opened once: secret files are created
	// and removed relative to it (openat), without walking the path on
	// every request, and never outside it.
	rootMu sync.Mutex
	root   *os.Root
}

// dirRoot returns the opened tokens directory, opening it on first use.
func (c *challenges) dirRoot() (*os.Root, error) {
	c.rootMu.Lock()
	defer c.rootMu.Unlock()
	if c.root == nil {
		r, err := os.OpenRoot(c.dir)
		if err != nil {
			return nil, err
		}
		c.root = r
	}
	return c.root, nil
}

// removeFile removes a secret file by its path in the tokens directory.
func (c *challenges) removeFile(path string) {
	if r, err := c.dirRoot(); err == nil && filepath.Dir(path) == filepath.Clean(c.dir) {
		_ = r.Remove(filepath.Base(path))
		return
	}
	_ = os.Remove(path)
}

func newChallenges(dir string, ttl time.Duration, max int, now func() time.Time, log *slog.Logger) *challenges {
	if ttl <= 0 || ttl > DefaultChallengeTTL {
		ttl = DefaultChallengeTTL
	}
	if max <= 0 {
		max = DefaultMaxChallenges
	}
	c := &challenges{dir: dir, ttl: ttl, max: max, now: now, log: log, pending: map[[32]byte]challenge{}, uid: -1, gid: -1,
		remove: make(chan string, 4096)}
	if os.Geteuid() == 0 {
		c.uid, c.gid = layout.ResolveOwner(layout.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS})
	}
	return c
}

// clean removes secret files left by an earlier run: none of them can be
// redeemed any more.
func (c *challenges) clean() {
	matches, _ := filepath.Glob(filepath.Join(c.dir, "*.key"))
	for _, m := range matches {
		_ = os.Remove(m)
	}
}

// issue creates a secret file and returns its path. The file is written
// outside the lock (concurrent requests do not queue behind the disk); a
// slot is reserved first so the bound holds.
func (c *challenges) issue() (string, error) {
	c.mu.Lock()
	if len(c.pending)+c.reserved >= c.max {
		c.sweepLocked()
		if len(c.pending)+c.reserved >= c.max {
			c.mu.Unlock()
			return "", errTooManyChallenges
		}
	}
	c.reserved++
	c.mu.Unlock()
	path, secret, err := c.write()
	c.mu.Lock()
	c.reserved--
	if err == nil {
		c.pending[sha256.Sum256([]byte(secret))] = challenge{path: path, expires: c.now().Add(c.ttl)}
	}
	c.mu.Unlock()
	return path, err
}

// write creates one secret file: a random name, 0640, himds:himds.
func (c *challenges) write() (path, secret string, err error) {
	var nameb, secb [32]byte
	if _, err := rand.Read(nameb[:16]); err != nil {
		return "", "", fmt.Errorf("generate a challenge name: %w", err)
	}
	if _, err := rand.Read(secb[:]); err != nil {
		return "", "", fmt.Errorf("generate a challenge secret: %w", err)
	}
	secret = hex.EncodeToString(secb[:])
	name := hex.EncodeToString(nameb[:16]) + ".key"
	path = filepath.Join(c.dir, name)
	root, err := c.dirRoot()
	if err != nil {
		return "", "", fmt.Errorf("open the tokens directory %s: %w", c.dir, err)
	}
	// O_EXCL: never write into a file (or through a link) someone else made.
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return "", "", fmt.Errorf("create the secret file in %s: %w", c.dir, err)
	}
	// The umask may have narrowed the mode; group himds must read it.
	err = f.Chmod(0o640)
	if err == nil && (c.uid >= 0 || c.gid >= 0) {
		err = f.Chown(c.uid, c.gid)
	}
	if err == nil {
		_, err = f.WriteString(secret)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		c.removeFile(path)
		return "", "", fmt.Errorf("write the secret file %s: %w", path, err)
	}
	return path, secret, nil
}

// redeem consumes a secret: it succeeds once, within the TTL, and removes
// the file whatever the outcome.
func (c *challenges) redeem(secret string) error {
	secret = strings.TrimSpace(secret)
	if secret == "" || len(secret) > MaxSecretFileSize {
		return errBadSecret
	}
	k := sha256.Sum256([]byte(secret))
	c.mu.Lock()
	ch, ok := c.pending[k]
	if ok {
		delete(c.pending, k)
	}
	c.mu.Unlock()
	if !ok {
		return errBadSecret
	}
	c.discard(ch.path)
	if !c.now().Before(ch.expires) {
		return errBadSecret
	}
	return nil
}

// sweep removes expired secrets and their files, and notices when the
// tokens directory was replaced (the opened one would hand out realms
// that no longer exist): the next secret opens it again.
func (c *challenges) sweep() {
	c.mu.Lock()
	c.sweepLocked()
	c.mu.Unlock()
	c.rootMu.Lock()
	defer c.rootMu.Unlock()
	if c.root == nil {
		return
	}
	opened, err1 := c.root.Stat(".")
	current, err2 := os.Stat(c.dir)
	if err1 != nil || err2 != nil || !os.SameFile(opened, current) {
		_ = c.root.Close()
		c.root = nil
	}
}

func (c *challenges) sweepLocked() {
	now := c.now()
	for k, ch := range c.pending {
		if !now.Before(ch.expires) {
			delete(c.pending, k)
			c.removeFile(ch.path)
		}
	}
}

// outstanding is the number of secrets not yet redeemed or swept.
func (c *challenges) outstanding() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// discard removes a used secret file, in the background while run runs.
// The secret is already invalid: it left pending before this call.
func (c *challenges) discard(path string) {
	if !c.running.Load() {
		c.removeFile(path)
		return
	}
	select {
	case c.remove <- path:
	default:
		c.removeFile(path)
	}
}

// run removes used secret files until ctx is done, then the rest of its
// queue.
func (c *challenges) run(ctx context.Context) {
	c.running.Store(true)
	defer func() {
		c.running.Store(false)
		for {
			select {
			case path := <-c.remove:
				c.removeFile(path)
			default:
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case path := <-c.remove:
			c.removeFile(path)
		}
	}
}
