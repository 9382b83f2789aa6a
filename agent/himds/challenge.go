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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

// Challenge limits.
const (
	// DefaultChallengeTTL is how long a secret file may be redeemed.
	DefaultChallengeTTL = 60 * time.Second
	// DefaultMaxChallenges bounds the outstanding secret files.
	DefaultMaxChallenges = 4096
	// DefaultMaxChallengesPerPeer bounds one client uid's outstanding
	// secret files.
	DefaultMaxChallengesPerPeer = 64
	// MaxSecretFileSize is what MSAL and the Azure SDKs accept.
	MaxSecretFileSize = 4096
)

var errBadSecret = errors.New("the secret is unknown, already used or expired")

// secretFile is one secret file in the tokens directory. It is not kept
// open: an outstanding challenge costs HIMDS no file descriptor.
type secretFile struct {
	dir  *tokensDir // the tokens directory the file was created in
	name string     // its name in dir: <random>.key
	path string     // the realm: its path
}

// dispose removes the file.
func (sf *secretFile) dispose() {
	_ = sf.dir.remove(sf.name)
}

type challenge struct {
	file    *secretFile
	key     [32]byte // sha256 of the secret
	peer    int      // uid of the client it was issued to, or anonymousPeer
	expires time.Time
	// uses counts the hand-outs not yet redeemed: a client that asks again
	// while it holds a fresh challenge gets the same realm, and each
	// hand-out may be redeemed once.
	uses int
}

// challenges issues and redeems the secrets of the managed-identity
// challenge flow. Each secret lives in a file of its own, named
// <random>.key in the tokens directory, created with O_EXCL, mode 0640,
// owner himds:himds, so that only root and members of group himds can
// read it. The file is removed the moment its last hand-out is redeemed,
// or by the sweep once it expired: a file is never written twice.
//
// Challenges are accounted per peer, the uid owning the client's socket,
// so that nobody who cannot read the secret files can stop those who can:
//   - a peer that asks while it holds a challenge with at least half its
//     TTL left gets that challenge's realm again, not a new file;
//   - a peer never holds more than perPeer challenges: its oldest one
//     makes room for its newest;
//   - when the table is full, the oldest challenge of the peer holding
//     the most makes room. A new challenge is never refused.
type challenges struct {
	dir     string
	ttl     time.Duration
	max     int
	perPeer int
	now     func() time.Time
	log     *slog.Logger

	// uid and gid are applied to new secret files when running as root
	// (resolved once: a user lookup per request is slow).
	uid, gid int

	mu      sync.Mutex
	pending map[[32]byte]*challenge // by sha256 of the secret
	peers   map[int][]*challenge    // by peer, oldest first

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

func newChallenges(dir string, ttl time.Duration, max, perPeer int, now func() time.Time, log *slog.Logger) *challenges {
	if ttl <= 0 || ttl > DefaultChallengeTTL {
		ttl = DefaultChallengeTTL
	}
	if max <= 0 {
		max = DefaultMaxChallenges
	}
	if perPeer <= 0 {
		perPeer = DefaultMaxChallengesPerPeer
	}
	perPeer = min(perPeer, max)
	c := &challenges{dir: dir, ttl: ttl, max: max, perPeer: perPeer, now: now, log: log,
		pending: map[[32]byte]*challenge{}, peers: map[int][]*challenge{}, uid: -1, gid: -1}
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

// issue returns the realm of a challenge for peer: the peer's newest
// challenge when it has at least half its TTL left, otherwise a new secret
// file. The file is written outside the lock (concurrent requests do not
// queue behind the disk); the bounds are enforced when it is added, by
// evicting (see challenges).
func (c *challenges) issue(peer int) (string, error) {
	c.mu.Lock()
	if q := c.peers[peer]; len(q) > 0 {
		if ch := q[len(q)-1]; ch.expires.Sub(c.now()) >= c.ttl/2 {
			ch.uses++
			c.mu.Unlock()
			return ch.file.path, nil
		}
	}
	c.mu.Unlock()
	return c.issueNew(peer)
}

// issueNew writes a new secret file for peer and adds its challenge.
func (c *challenges) issueNew(peer int) (string, error) {
	sf, secret, err := c.write()
	if err != nil {
		return "", err
	}
	ch := &challenge{file: sf, key: sha256.Sum256([]byte(secret)), peer: peer, expires: c.now().Add(c.ttl), uses: 1}
	c.mu.Lock()
	var files []*secretFile
	if len(c.pending) >= c.max {
		// Expired ones go before any live one is evicted (the periodic
		// sweep takes them otherwise).
		files = c.sweepLocked()
	}
	c.pending[ch.key] = ch
	c.peers[peer] = append(c.peers[peer], ch)
	files = append(files, c.evictLocked(ch)...)
	c.mu.Unlock()
	disposeAll(files)
	return sf.path, nil
}

// evictLocked restores the bounds after keep was added and returns the
// files of the challenges it dropped: first the oldest of keep's peer
// beyond perPeer, then, while the table is over max, the oldest of the
// peer holding the most. keep itself is never dropped.
func (c *challenges) evictLocked(keep *challenge) []*secretFile {
	var files []*secretFile
	for q := c.peers[keep.peer]; len(q) > c.perPeer && q[0] != keep; q = c.peers[keep.peer] {
		files = append(files, c.dropLocked(q[0]))
	}
	for len(c.pending) > c.max {
		var victim *challenge
		n := 0
		for _, q := range c.peers {
			old := q[0]
			if old == keep {
				if len(q) < 2 {
					continue
				}
				old = q[1]
			}
			if len(q) > n || (len(q) == n && old.expires.Before(victim.expires)) {
				victim, n = old, len(q)
			}
		}
		if victim == nil {
			break
		}
		files = append(files, c.dropLocked(victim))
	}
	return files
}

// dropLocked takes ch out of the table and returns its file.
func (c *challenges) dropLocked(ch *challenge) *secretFile {
	delete(c.pending, ch.key)
	q := slices.DeleteFunc(c.peers[ch.peer], func(o *challenge) bool { return o == ch })
	if len(q) == 0 {
		delete(c.peers, ch.peer)
	} else {
		c.peers[ch.peer] = q
	}
	return ch.file
}

// write puts a new secret into a new file under a new random name (0640,
// himds:himds).
func (c *challenges) write() (sf *secretFile, secret string, err error) {
	var rnd [48]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, "", fmt.Errorf("generate a challenge secret: %w", err)
	}
	secret = hex.EncodeToString(rnd[:32])
	name := hex.EncodeToString(rnd[32:]) + ".key"
	path := filepath.Join(c.dir, name)
	root, err := c.dirRoot()
	if err != nil {
		return nil, "", fmt.Errorf("open the tokens directory %s: %w", c.dir, err)
	}
	// O_EXCL|O_NOFOLLOW: never write into a file (or through a link)
	// someone else made.
	fd, err := root.create(name, 0o640)
	if err != nil {
		return nil, "", fmt.Errorf("create the secret file in %s: %w", c.dir, err)
	}
	sf = &secretFile{dir: root, name: name, path: path}
	err = finishSecret(fd, c.uid, c.gid, []byte(secret))
	if err != nil {
		sf.dispose()
		return nil, "", fmt.Errorf("write the secret file %s: %w", path, err)
	}
	return sf, secret, nil
}

// redeem consumes one hand-out of a secret: it succeeds once per
// hand-out, within the TTL. The file is removed with the last hand-out or
// at the first attempt after expiry.
func (c *challenges) redeem(secret string) error {
	secret = strings.TrimSpace(secret)
	if secret == "" || len(secret) > MaxSecretFileSize {
		return errBadSecret
	}
	k := sha256.Sum256([]byte(secret))
	c.mu.Lock()
	ch, ok := c.pending[k]
	if !ok {
		c.mu.Unlock()
		return errBadSecret
	}
	valid := c.now().Before(ch.expires)
	ch.uses--
	var file *secretFile
	if !valid || ch.uses <= 0 {
		file = c.dropLocked(ch)
	}
	c.mu.Unlock()
	if file != nil {
		file.dispose()
	}
	if !valid {
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
	if old == nil {
		return
	}
	// The challenges in the replaced directory name files that are not
	// there any more: none is handed out again.
	c.mu.Lock()
	for _, ch := range c.pending {
		if ch.file.dir == old {
			c.dropLocked(ch)
		}
	}
	c.mu.Unlock()
	old.close()
}

// sweepLocked takes the expired secrets out of the table and returns
// their files, to be removed without the lock held.
func (c *challenges) sweepLocked() []*secretFile {
	now := c.now()
	var files []*secretFile
	for _, ch := range c.pending {
		if !now.Before(ch.expires) {
			files = append(files, c.dropLocked(ch))
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
