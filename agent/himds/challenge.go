package himds

import (
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
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"golang.org/x/sys/unix"
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

// secretFile is one secret file in the tokens directory. It is not kept
// open: an outstanding challenge costs HIMDS no file descriptor.
type secretFile struct {
	dir  *tokensDir // the tokens directory the file was created in
	name string     // its name in dir: <random>.key
}

// dispose removes the file.
func (sf *secretFile) dispose() {
	_ = sf.dir.remove(sf.name)
}

type challenge struct {
	file    *secretFile
	expires time.Time
}

// challenges issues and redeems the single-use secrets of the
// managed-identity challenge flow. Each secret lives in a file of its own,
// named <random>.key in the tokens directory, created with O_EXCL, mode
// 0640, owner himds:himds, so that only root and members of group himds
// can read it. The file is removed the moment its secret is redeemed, or
// by the sweep once it expired: a file is never written twice.
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

	// root is the tokens directory, opened on first use and again when it
	// was replaced.
	rootMu sync.Mutex
	root   *tokensDir
}

// dirRoot returns the opened tokens directory, opening it on first use.
func (c *challenges) dirRoot() (*tokensDir, error) {
	c.rootMu.Lock()
	defer c.rootMu.Unlock()
	if c.root == nil {
		r, err := openTokensDir(c.dir)
		if err != nil {
			return nil, err
		}
		c.root = r
	}
	return c.root, nil
}

func newChallenges(dir string, ttl time.Duration, max int, now func() time.Time, log *slog.Logger) *challenges {
	if ttl <= 0 || ttl > DefaultChallengeTTL {
		ttl = DefaultChallengeTTL
	}
	if max <= 0 {
		max = DefaultMaxChallenges
	}
	c := &challenges{dir: dir, ttl: ttl, max: max, now: now, log: log, pending: map[[32]byte]challenge{}, uid: -1, gid: -1}
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

// issue writes a new secret into a new secret file and returns the
// file's path. The file is written outside the lock (concurrent requests
// do not queue behind the disk); a slot is reserved first so the bound
// holds.
func (c *challenges) issue() (string, error) {
	c.mu.Lock()
	var expired []*secretFile
	if len(c.pending)+c.reserved >= c.max {
		expired = c.sweepLocked()
		if len(c.pending)+c.reserved >= c.max {
			c.mu.Unlock()
			disposeAll(expired)
			return "", errTooManyChallenges
		}
	}
	c.reserved++
	c.mu.Unlock()
	disposeAll(expired)
	sf, path, secret, err := c.write()
	c.mu.Lock()
	c.reserved--
	if err == nil {
		c.pending[sha256.Sum256([]byte(secret))] = challenge{file: sf, expires: c.now().Add(c.ttl)}
	}
	c.mu.Unlock()
	return path, err
}

// write puts a new secret into a new file under a new random name (0640,
// himds:himds).
func (c *challenges) write() (sf *secretFile, path, secret string, err error) {
	var rnd [48]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, "", "", fmt.Errorf("generate a challenge secret: %w", err)
	}
	secret = hex.EncodeToString(rnd[:32])
	name := hex.EncodeToString(rnd[32:]) + ".key"
	path = filepath.Join(c.dir, name)
	root, err := c.dirRoot()
	if err != nil {
		return nil, "", "", fmt.Errorf("open the tokens directory %s: %w", c.dir, err)
	}
	// O_EXCL|O_NOFOLLOW: never write into a file (or through a link)
	// someone else made.
	fd, err := root.create(name, 0o640)
	if err != nil {
		return nil, "", "", fmt.Errorf("create the secret file in %s: %w", c.dir, err)
	}
	sf = &secretFile{dir: root, name: name}
	// The umask may have narrowed the mode; group himds must read it.
	err = unix.Fchmod(fd, 0o640)
	if err == nil && (c.uid >= 0 || c.gid >= 0) {
		err = unix.Fchown(fd, c.uid, c.gid)
	}
	if err == nil {
		err = pwriteAll(fd, []byte(secret))
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		sf.dispose()
		return nil, "", "", fmt.Errorf("write the secret file %s: %w", path, err)
	}
	return sf, path, secret, nil
}

// redeem consumes a secret: it succeeds once, within the TTL, and its file
// is removed whatever the outcome.
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
	ch.file.dispose()
	if !c.now().Before(ch.expires) {
		return errBadSecret
	}
	return nil
}

func disposeAll(files []*secretFile) {
	for _, sf := range files {
		sf.dispose()
	}
}

// sweep removes the files of expired secrets, and notices when
// the tokens directory was replaced (the opened one would hand out realms
// that no longer exist): the next secret opens it again.
func (c *challenges) sweep() {
	c.mu.Lock()
	files := c.sweepLocked()
	c.mu.Unlock()
	disposeAll(files)

	c.rootMu.Lock()
	old := c.root
	if old != nil && old.same() {
		old = nil
	}
	if old != nil {
		c.root = nil
	}
	c.rootMu.Unlock()
	if old != nil {
		old.close()
	}
}

// sweepLocked takes the expired secrets out of pending and returns their
// files, to be removed without the lock held.
func (c *challenges) sweepLocked() []*secretFile {
	now := c.now()
	var files []*secretFile
	for k, ch := range c.pending {
		if !now.Before(ch.expires) {
			delete(c.pending, k)
			files = append(files, ch.file)
		}
	}
	return files
}

// outstanding is the number of secrets not yet redeemed or swept.
func (c *challenges) outstanding() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}
