package controlplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/arcagent/arcagent/controlplane/store"
)

// keySkew is how long past its tokens' expiry a retired key stays
// published, to cover clock skew between issuer and validators.
const keySkew = 5 * time.Minute

type sigKey struct {
	kid     string
	priv    *ecdsa.PrivateKey
	created time.Time
	retired time.Time
}

// keyring holds the token-signing keys: the active one signs, retired ones
// stay in the JWKS until every token they signed has expired.
type keyring struct {
	st       store.Store
	lifetime time.Duration // longest token lifetime
	// prepublish is how long a new key is published before it signs.
	prepublish time.Duration

	mu        sync.RWMutex
	active    *sigKey
	published []*sigKey
}

// kidOf derives a key id from the public key (SHA-256 of its SPKI).
func kidOf(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	h := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(h[:16]), nil
}

// KeyPrepublication is how long `arcserver keys rotate` publishes a new
// key before it signs: two reload intervals of a server with the default
// KeyReload, so that every replica has published it before any signs.
const KeyPrepublication = 2 * time.Minute

// prepublication is the pre-publication period for a key reload interval.
func prepublication(reload time.Duration) time.Duration { return 2 * reload }

// newSigningKey generates and stores a key and retires every other one at
// now+prepublish: until then the previous key still signs and the new one
// is only published (see load).
func newSigningKey(ctx context.Context, st store.Store, now time.Time, prepublish time.Duration) (string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate token-signing key: %w", err)
	}
	kid, err := kidOf(&k.PublicKey)
	if err != nil {
		return "", err
	}
	p, err := encodeKey(k)
	if err != nil {
		return "", err
	}
	if err := st.AddSigningKey(ctx, store.SigningKey{KID: kid, PrivatePEM: p, CreatedAt: now}); err != nil {
		return "", err
	}
	if err := st.RetireSigningKeys(ctx, kid, now.Add(prepublish)); err != nil {
		return "", err
	}
	return kid, nil
}

// RotateSigningKey adds a new token-signing key to the store. Every
// running server (replica) publishes it at its next key reload (within a
// minute); it signs from KeyPrepublication on, and the previous key stays
// published until its tokens expire.
func RotateSigningKey(ctx context.Context, st store.Store) (string, error) {
	return newSigningKey(ctx, st, time.Now(), KeyPrepublication)
}

// load reads the keys from the store and drops from the JWKS (and the
// store) retired keys whose tokens have all expired. Every key read is
// published; the signer is the newest key that is not retired yet and was
// created at least prepublish ago (so every replica has published it by
// now). Only when there is none (a tenant younger than the period) does
// a younger key sign: the previous signer, that is the live key retiring
// soonest (a rotation retires it at the end of the period), else the
// oldest.
func (kr *keyring) load(ctx context.Context, now time.Time) error {
	keys, err := kr.st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	var active, fallback *sigKey
	var pub []*sigKey
	for _, k := range keys {
		if !k.RetiredAt.IsZero() && now.After(k.RetiredAt.Add(kr.lifetime+keySkew)) {
			_ = kr.st.DeleteSigningKey(ctx, k.KID) // best effort: it only shrinks the table
			continue
		}
		priv, err := parseECKey(k.PrivatePEM)
		if err != nil {
			return fmt.Errorf("signing key %s in the database is damaged: %w", k.KID, err)
		}
		sk := &sigKey{kid: k.KID, priv: priv, created: k.CreatedAt, retired: k.RetiredAt}
		pub = append(pub, sk)
		if !k.RetiredAt.IsZero() && !now.Before(k.RetiredAt) {
			continue // retired: published, never signs again
		}
		if fallback == nil || fallbackBefore(sk, fallback) {
			fallback = sk
		}
		if !sk.created.After(now.Add(-kr.prepublish)) && (active == nil || sk.created.After(active.created)) {
			active = sk
		}
	}
	if active == nil {
		active = fallback
	}
	if active == nil {
		return fmt.Errorf("the database has no active token-signing key: run `arcserver keys rotate --data DIR`")
	}
	kr.mu.Lock()
	kr.active, kr.published = active, pub
	kr.mu.Unlock()
	return nil
}

// fallbackBefore orders live keys for the fallback signer: keys already
// due to retire (previous signers) first, the soonest first, then by age.
func fallbackBefore(a, b *sigKey) bool {
	switch {
	case a.retired.IsZero() != b.retired.IsZero():
		return !a.retired.IsZero()
	case !a.retired.Equal(b.retired):
		return a.retired.Before(b.retired)
	}
	return a.created.Before(b.created)
}

// sign signs claims with the active key.
func (kr *keyring) sign(claims jwt.Claims) (string, error) {
	kr.mu.RLock()
	k := kr.active
	kr.mu.RUnlock()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["kid"] = k.kid
	return t.SignedString(k.priv)
}

// JWK is one public key in a JWKS.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

func (kr *keyring) jwks() JWKS {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	out := JWKS{Keys: []JWK{}}
	for _, k := range kr.published {
		epub, err := k.priv.PublicKey.ECDH()
		if err != nil {
			continue
		}
		b := epub.Bytes() // 0x04 || X || Y
		out.Keys = append(out.Keys, JWK{
			Kty: "EC", Crv: "P-256", Use: "sig", Alg: "ES256", Kid: k.kid,
			X: base64.RawURLEncoding.EncodeToString(b[1:33]),
			Y: base64.RawURLEncoding.EncodeToString(b[33:65]),
		})
	}
	return out
}
