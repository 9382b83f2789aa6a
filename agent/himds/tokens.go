package himds

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// CacheMargin is how long before expiry a cached token stops being served.
const CacheMargin = 5 * time.Minute

// TokenSource fetches a managed-identity token for a resource from the
// control plane's issuer.
type TokenSource interface {
	Token(ctx context.Context, resource string) (apiv1.TokenResponse, error)
}

type cachedToken struct {
	resp    apiv1.TokenResponse
	expires time.Time
}

// tokenCache keeps one token per resource until CacheMargin before it
// expires. Concurrent misses for one resource share one fetch.
type tokenCache struct {
	now func() time.Time

	mu       sync.RWMutex
	tokens   map[string]*cachedToken
	inflight map[string]*fetch
	// gen counts identity changes (drop): a fetch started for an earlier
	// identity never stores or shares its token with a later one.
	gen uint64
}

type fetch struct {
	done chan struct{}
	tok  *cachedToken
	err  error
}

func newTokenCache(now func() time.Time) *tokenCache {
	return &tokenCache{now: now, tokens: map[string]*cachedToken{}, inflight: map[string]*fetch{}}
}

// get returns a cached token that is still valid for at least CacheMargin.
func (c *tokenCache) get(resource string) (*cachedToken, bool) {
	c.mu.RLock()
	t, ok := c.tokens[resource]
	c.mu.RUnlock()
	if !ok || !c.now().Add(CacheMargin).Before(t.expires) {
		return nil, false
	}
	return t, true
}

// valid returns a cached token that has not expired yet (used when the
// control plane cannot be reached).
func (c *tokenCache) valid(resource string) (*cachedToken, bool) {
	c.mu.RLock()
	t, ok := c.tokens[resource]
	c.mu.RUnlock()
	if !ok || !c.now().Before(t.expires) {
		return nil, false
	}
	return t, true
}

// fetch asks src for a token, sharing the call with concurrent callers for
// the same resource, and caches the result.
func (c *tokenCache) fetch(ctx context.Context, src TokenSource, resource string) (*cachedToken, error) {
	c.mu.Lock()
	if f, ok := c.inflight[resource]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.tok, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &fetch{done: make(chan struct{})}
	c.inflight[resource] = f
	gen := c.gen
	c.mu.Unlock()

	f.tok, f.err = c.fetchOne(ctx, src, resource)
	c.mu.Lock()
	if c.inflight[resource] == f {
		delete(c.inflight, resource)
	}
	if f.err == nil && c.gen == gen {
		c.tokens[resource] = f.tok
	}
	c.mu.Unlock()
	close(f.done)
	return f.tok, f.err
}

func (c *tokenCache) fetchOne(ctx context.Context, src TokenSource, resource string) (*cachedToken, error) {
	resp, err := src.Token(ctx, resource)
	if err != nil {
		return nil, err
	}
	sec, err := strconv.ParseInt(resp.ExpiresOn, 10, 64)
	if err != nil || resp.AccessToken == "" {
		return nil, fmt.Errorf("the control plane's token reply has no access_token or expires_on")
	}
	return &cachedToken{resp: resp, expires: time.Unix(sec, 0)}, nil
}

// drop forgets every cached token (a new identity after connect).
func (c *tokenCache) drop() {
	c.mu.Lock()
	c.gen++
	c.tokens = map[string]*cachedToken{}
	c.inflight = map[string]*fetch{}
	c.mu.Unlock()
}
