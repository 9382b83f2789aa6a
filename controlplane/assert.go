package controlplane

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/store"
)

// assertionLeeway is the clock skew tolerated on exp, nbf and iat.
const assertionLeeway = 30 * time.Second

// Replay cache geometry. An accepted assertion has iat <= now+leeway and
// exp-iat <= apiv1.MaxAssertionLifetime, and its jti is remembered until
// exp+leeway, so nothing needs remembering beyond now + replayHorizon.
// Entries live in a ring of time buckets by that expiry: a bucket whose
// time has passed is dropped whole (its map freed), so memory follows the
// rate of assertions over one lifetime, never the total ever accepted.
const (
	replayBucket  = 10 * time.Second
	replayHorizon = apiv1.MaxAssertionLifetime + 2*assertionLeeway
	replayBuckets = int(replayHorizon/replayBucket) + 2
	replayShards  = 32
)

// replayCache remembers the jti of every accepted assertion until it
// expires, so that an assertion can be used once. It is sharded to keep
// lock contention low under many concurrent machines. Keys are kept as
// 64-bit seeded hashes: a collision can only refuse a fresh assertion (the
// machine signs another), never accept a replayed one.
type replayCache struct {
	seed   maphash.Seed
	shards [replayShards]replayShard
}

type replayShard struct {
	mu      sync.Mutex
	buckets [replayBuckets]replayBucketSet
}

// replayBucketSet holds the keys that expire within one bucket period:
// slot is the expiry in seconds divided by the bucket width.
type replayBucketSet struct {
	slot int64
	keys map[uint64]struct{}
}

func newReplayCache() *replayCache {
	return &replayCache{seed: maphash.MakeSeed()}
}

func replaySlot(t time.Time) int64 { return t.Unix() / int64(replayBucket/time.Second) }

// remember records key until exp (plus the clock leeway) and reports false
// if it was already there, or if exp lies beyond what the cache can hold
// (which verifyAssertion's lifetime checks rule out: fail closed).
func (c *replayCache) remember(key string, exp, now time.Time) bool {
	h := maphash.String(c.seed, key)
	sh := &c.shards[h%replayShards]
	nowSlot, slot := replaySlot(now), replaySlot(exp.Add(assertionLeeway))
	if slot >= nowSlot+int64(replayBuckets) {
		return false
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for i := range sh.buckets {
		b := &sh.buckets[i]
		if b.keys == nil {
			continue
		}
		if b.slot < nowSlot { // expired: drop the whole bucket
			b.keys = nil
			continue
		}
		if _, ok := b.keys[h]; ok {
			return false
		}
	}
	if slot < nowSlot {
		return true // already expired: the exp check refuses it from now on
	}
	b := &sh.buckets[slot%int64(replayBuckets)]
	switch {
	case b.keys == nil:
		b.slot, b.keys = slot, make(map[uint64]struct{})
	case b.slot != slot:
		// A live bucket from another slot: only a clock stepped back
		// by more than the horizon gets here. Refuse rather than forget.
		return false
	}
	b.keys[h] = struct{}{}
	return true
}

// len is the number of keys remembered (for tests and benchmarks).
func (c *replayCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for _, b := range sh.buckets {
			n += len(b.keys)
		}
		sh.mu.Unlock()
	}
	return n
}

// machineClaims are the claims of a machine assertion.
type machineClaims struct {
	jwt.RegisteredClaims
}

// verifyAssertion checks a machine's signed assertion and returns the
// machine id. lookup returns the machine's public key (or an error for an
// unknown machine).
func (s *Server) verifyAssertion(ctx context.Context, raw string, lookup func(id string) (*ecdsa.PublicKey, error)) (string, error) {
	now := s.now()
	var lookupErr error
	var c machineClaims
	_, err := jwt.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		cl := t.Claims.(*machineClaims)
		if cl.Subject == "" {
			return nil, errf(apiv1.CodeAssertionInvalid, "the assertion has no sub claim: it must name the machine id")
		}
		k, err := lookup(cl.Subject)
		if err != nil {
			lookupErr = err
			return nil, err
		}
		return k, nil
	},
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithAudience(s.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(assertionLeeway),
		jwt.WithTimeFunc(s.now),
	)
	if lookupErr != nil {
		return "", lookupErr
	}
	if err != nil {
		return "", assertionError(err, c, s.audience)
	}
	switch {
	case c.IssuedAt == nil:
		return "", errf(apiv1.CodeAssertionInvalid, "the assertion has no iat claim")
	case c.Issuer != c.Subject:
		return "", errf(apiv1.CodeAssertionInvalid, "the assertion's iss (%q) must equal its sub (the machine id)", c.Issuer)
	case c.IssuedAt.Time.Before(s.started.Truncate(time.Second)):
		// No clock leeway here: the in-memory replay cache starts empty
		// at each start, so an assertion signed before it may have been
		// used already. iat has one-second resolution, hence the
		// truncation. Replicas keep the cache in the store, but keep the
		// rule too: a data directory last served without --replica has
		// its recent assertions in no store.
		return "", errf(apiv1.CodeAssertionInvalid, "the assertion was issued before this server started: sign a fresh one")
	case c.ExpiresAt.Sub(c.IssuedAt.Time) > apiv1.MaxAssertionLifetime:
		return "", errf(apiv1.CodeAssertionInvalid, "the assertion lives %s; at most %s is allowed", c.ExpiresAt.Sub(c.IssuedAt.Time), apiv1.MaxAssertionLifetime)
	case c.ID == "" || len(c.ID) > 128:
		return "", errf(apiv1.CodeAssertionInvalid, "the assertion needs a jti claim of 1 to 128 characters, unique per assertion")
	}
	fresh, err := s.rememberAssertion(ctx, c.Subject+"\x00"+c.ID, c.ExpiresAt.Time, now)
	if err != nil {
		return "", err
	}
	if !fresh {
		return "", errf(apiv1.CodeAssertionInvalid, "the assertion was already used (jti %q): sign a fresh assertion for every request", c.ID)
	}
	return c.Subject, nil
}

// rememberAssertion records an accepted assertion's key until exp (plus
// the clock leeway) and reports whether it was fresh: in memory when this
// process is the store's only user, in the store (seen by every replica)
// otherwise. A store error refuses the request (fail closed).
func (s *Server) rememberAssertion(ctx context.Context, key string, exp, now time.Time) (bool, error) {
	if s.exclusive {
		return s.replay.remember(key, exp, now), nil
	}
	fresh, err := s.replayDB.do(store.AssertionKey{Key: key, Expires: exp.Add(assertionLeeway)})
	if err != nil {
		return false, fmt.Errorf("check the assertion against the replay cache: %w", err)
	}
	return fresh, nil
}

func assertionError(err error, c machineClaims, aud string) error {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errf(apiv1.CodeAssertionInvalid, "the bearer token is not a well-formed JWT assertion")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return errf(apiv1.CodeAssertionInvalid, "the assertion's signature does not verify with machine %s's registered key", c.Subject)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return errf(apiv1.CodeAssertionInvalid, "the assertion cannot be verified: it must be signed with ES256 by the machine key")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return errf(apiv1.CodeAssertionInvalid, "the assertion's audience %v is not this server (%s)", []string(c.Audience), aud)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return errf(apiv1.CodeAssertionInvalid, "the assertion lacks a required claim (exp, iat, aud): %s", err.Error())
	case errors.Is(err, jwt.ErrTokenExpired):
		return errf(apiv1.CodeAssertionInvalid, "the assertion has expired: check the machine's clock and sign a fresh one")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued), errors.Is(err, jwt.ErrTokenNotValidYet):
		return errf(apiv1.CodeAssertionInvalid, "the assertion is dated in the future: check the machine's clock")
	}
	return errf(apiv1.CodeAssertionInvalid, "the assertion was refused: %s", err.Error())
}
