package controlplane

import (
	"crypto/ecdsa"
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// assertionLeeway is the clock skew tolerated on exp, nbf and iat.
const assertionLeeway = 30 * time.Second

// replayCache remembers the jti of every accepted assertion until it
// expires, so that an assertion can be used once. It is sharded to keep
// lock contention low under many concurrent machines.
type replayCache struct {
	seed   maphash.Seed
	shards [32]replayShard
}

type replayShard struct {
	mu   sync.Mutex
	seen map[string]int64 // key -> expiry (unix seconds)
	n    int              // inserts since last sweep
}

func newReplayCache() *replayCache {
	c := &replayCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].seen = map[string]int64{}
	}
	return c
}

// remember records key until exp and reports false if it was already there.
func (c *replayCache) remember(key string, exp, now time.Time) bool {
	sh := &c.shards[maphash.String(c.seed, key)%uint64(len(c.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	nowS := now.Unix()
	if e, ok := sh.seen[key]; ok && e >= nowS {
		return false
	}
	sh.seen[key] = exp.Add(assertionLeeway).Unix()
	sh.n++
	if sh.n >= 4096 { // sweep expired entries now and then
		sh.n = 0
		for k, e := range sh.seen {
			if e < nowS {
				delete(sh.seen, k)
			}
		}
	}
	return true
}

// machineClaims are the claims of a machine assertion.
type machineClaims struct {
	jwt.RegisteredClaims
}

// verifyAssertion checks a machine's signed assertion and returns the
// machine id. lookup returns the machine's public key (or an error for an
// unknown machine).
func (s *Server) verifyAssertion(raw string, lookup func(id string) (*ecdsa.PublicKey, error)) (string, error) {
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
		// No clock leeway here: the replay cache starts empty at each
		// start, so an assertion signed before it may have been used
		// already. iat has one-second resolution, hence the truncation.
		return "", errf(apiv1.CodeAssertionInvalid, "the assertion was issued before this server started: sign a fresh one")
	case c.ExpiresAt.Sub(c.IssuedAt.Time) > apiv1.MaxAssertionLifetime:
		return "", errf(apiv1.CodeAssertionInvalid, "the assertion lives %s; at most %s is allowed", c.ExpiresAt.Sub(c.IssuedAt.Time), apiv1.MaxAssertionLifetime)
	case c.ID == "" || len(c.ID) > 128:
		return "", errf(apiv1.CodeAssertionInvalid, "the assertion needs a jti claim of 1 to 128 characters, unique per assertion")
	}
	if !s.replay.remember(c.Subject+"\x00"+c.ID, c.ExpiresAt.Time, now) {
		return "", errf(apiv1.CodeAssertionInvalid, "the assertion was already used (jti %q): sign a fresh assertion for every request", c.ID)
	}
	return c.Subject, nil
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
