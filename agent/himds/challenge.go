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

	"golang.org/x/sys/unix"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

// Challenge limits.
const (
	// DefaultChallengeTTL is how long a secret file may be redeemed.
	DefaultChallengeTTL = 60 * time.Second
	// DefaultMaxChallenges bounds the outstanding secret files.
	DefaultMaxChallenges = 4096
	// MaxSecretFileSize is what MSAL and the Azure SDKs accept.
	MaxSecretFileSize = 4096
	// maxUsed bounds the used secret files kept for reuse between sweeps.
	maxUsed = 256
)

// Errors of the challenge store.
var (
	errTooManyChallenges = errors.New("too many outstanding challenges")
	errBadSecret         = errors.New("the secret is unknown, already used or expired")
)

// secretFile is one secret file in the tokens directory. It is not kept
// open: an outstanding challenge costs HIMDS no file descriptor.
type secretFile struct {
	dir      *tokensDir // the tokens directory the file was created in
	name     string     // its current name in dir: <random>.key
	dev, ino uint64     // the file's identity
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
// managed-identity challenge flow. Each secret lives in a file named
// <random>.key in the tokens directory, mode 0640, owner himds:himds, so
// that only root and members of group himds can read it.
//
// A secret is invalid the moment it is redeemed or expires; its file is
// then reused for a later challenge: renamed to that challenge's new
// random name, then overwritten with its secret. A rename allocates no
// inode, and on a disk file system under load inode allocation (create
// and unlink of a file per challenge) is what limits the challenge rate.
// A used file that no challenge takes is removed by the next sweep, so a
// used realm disappears at the next challenge or the next sweep,
// whichever comes first.
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
	used     []*secretFile          // files of redeemed secrets, most recent last
	stopped  bool                   // run returned: no sweep removes used files any more

	noLeases atomic.Bool // the "no write leases" notice was logged

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
		c.uid, c.gid = atomicfile.ResolveOwner(atomicfile.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS})
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

// issue writes a new secret into a secret file and returns the file's
// path. The file is written outside the lock (concurrent requests do not
// queue behind the disk); a slot is reserved first so the bound holds.
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
	var sf *secretFile
	if n := len(c.used); n > 0 {
		sf = c.used[n-1]
		c.used[n-1] = nil
		c.used = c.used[:n-1]
	}
	c.mu.Unlock()
	disposeAll(expired)
	sf, path, secret, err := c.write(sf)
	c.mu.Lock()
	c.reserved--
	if err == nil {
		c.pending[sha256.Sum256([]byte(secret))] = challenge{file: sf, expires: c.now().Add(c.ttl)}
	}
	c.mu.Unlock()
	return path, err
}

// write puts a new secret under a new random name: into a used file,
// renamed, when there is one, otherwise into a new file (0640,
// himds:himds). A used file that does not take the secret is removed.
// The caller must not touch used afterwards.
func (c *challenges) write(used *secretFile) (sf *secretFile, path, secret string, err error) {
	defer func() {
		if used != nil && sf != used {
			used.dispose()
		}
	}()
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
	if used != nil {
		if used.dir == root {
			err := c.reuse(used, name, secret)
			if err == nil {
				return used, path, secret, nil
			}
			c.reuseFailed(err)
		}
		// Removed before the create below, which may take the same name.
		used.dispose()
		used = nil
	}
	// O_EXCL: never write into a file (or through a link) someone else made.
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
	var st unix.Stat_t
	if err == nil {
		err = unix.Fstat(fd, &st)
		sf.dev, sf.ino = st.Dev, st.Ino
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

// errNotOurs is returned when the entry renamed to a new realm is not the
// secret file HIMDS made: someone replaced or changed it.
var errNotOurs = errors.New("the used secret file was replaced or changed in the tokens directory")

// reuse renames a used file to name, then writes secret into it. The
// rename comes first: a new secret is never readable under an old realm.
// The secret is written only into the very file HIMDS made, still a
// regular file with one link, mode 0640 and its owner: an entry someone
// put in its place (a link, a FIFO, another file) is never written to nor
// handed out, nor is a file someone else still has open. Every secret has
// the same length, so the write replaces the old one whole.
func (c *challenges) reuse(sf *secretFile, name, secret string) error {
	if err := sf.dir.rename(sf.name, name); err != nil {
		return err
	}
	sf.name = name
	fd, err := sf.dir.openWrite(name)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 || st.Mode&0o7777 != 0o640 ||
		st.Dev != sf.dev || st.Ino != sf.ino || !c.owns(st) {
		return errNotOurs
	}
	// A process that opened (or mapped) the file under an old realm would
	// read the new secret through it: a write lease is granted only while
	// no other descriptor has the file open, and while it is held an open
	// waits for its release (the close below). Where leases are refused
	// or unsupported the file is not reused.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_WRLCK); err != nil {
		return fmt.Errorf("%w: cannot take a write lease: %w", errNotOurs, err)
	}
	return pwriteAll(fd, []byte(secret))
}

// reuseFailed logs why a used secret file was not reused. A file that is
// gone or no longer the one HIMDS made is worth a warning each time; a file
// system that refuses write leases is said once, since then no file is
// ever reused (challenges still work, each with a new file).
func (c *challenges) reuseFailed(err error) {
	switch {
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOLCK):
		if c.noLeases.CompareAndSwap(false, true) {
			c.log.Info("secret files are not reused: the tokens directory's file system refuses write leases (is fs.leases-enable 0?); each challenge creates a new file", "dir", c.dir, "err", err)
		}
	default:
		c.log.Warn("a used secret file in the tokens directory was removed, replaced, changed or is held open by another process; a new file is used instead", "dir", c.dir, "err", err)
	}
}

// owns reports whether a secret file has the owner HIMDS gives them.
func (c *challenges) owns(st unix.Stat_t) bool {
	uid, gid := c.uid, c.gid
	if uid < 0 {
		uid = os.Geteuid()
	}
	if gid < 0 {
		return int(st.Uid) == uid
	}
	return int(st.Uid) == uid && int(st.Gid) == gid
}

// redeem consumes a secret: it succeeds once, within the TTL, and its file
// is done with whatever the outcome.
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
		if len(c.used) < maxUsed && !c.stopped {
			c.used = append(c.used, ch.file)
			ch.file = nil
		}
	}
	c.mu.Unlock()
	if !ok {
		return errBadSecret
	}
	if ch.file != nil {
		ch.file.dispose()
	}
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

// sweep removes the files of expired and used secrets, and notices when
// the tokens directory was replaced (the opened one would hand out realms
// that no longer exist): the next secret opens it again.
func (c *challenges) sweep() {
	c.mu.Lock()
	files := append(c.sweepLocked(), c.used...)
	c.used = nil
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

// run waits until ctx is done, then removes the files of used secrets;
// from then on redeem removes them itself (requests are still served
// while the HTTP server drains, and no sweep comes any more).
func (c *challenges) run(ctx context.Context) {
	c.mu.Lock()
	c.stopped = false
	c.mu.Unlock()
	<-ctx.Done()
	c.mu.Lock()
	c.stopped = true
	used := c.used
	c.used = nil
	c.mu.Unlock()
	disposeAll(used)
}
