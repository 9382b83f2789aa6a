package controlplane

import (
	"context"
	"sync"
	"time"

	"github.com/arcagent/arcagent/controlplane/store"
)

// maxReplayBatch bounds one replay-cache transaction.
const maxReplayBatch = 1024

// replayBatcher is a group commit for the store's replay cache: requests
// arriving while a batch is being written queue up, and the next batch
// writes them all in one transaction. There is no goroutine to start or
// stop: the first request finding no batch in flight writes one (the
// leader); when it is done it hands the lead to the oldest queued request.
// Each request waits only for the batch holding it, so nothing is
// acknowledged before its key is committed.
type replayBatcher struct {
	sh  store.Shared
	now func() time.Time

	mu      sync.Mutex
	busy    bool
	pending []*replayReq
}

type replayReq struct {
	key   store.AssertionKey
	fresh bool
	err   error
	done  chan struct{} // closed once fresh and err are set
	lead  chan struct{} // closed when this request is to write the next batch
}

// remember records key until exp and reports whether it was fresh.
func (b *replayBatcher) remember(key string, exp time.Time) (bool, error) {
	r := &replayReq{key: store.AssertionKey{Key: key, Expires: exp}, done: make(chan struct{}), lead: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	leader := !b.busy
	b.busy = true
	b.mu.Unlock()
	if !leader {
		select {
		case <-r.done:
			return r.fresh, r.err
		case <-r.lead:
		}
	}
	b.mu.Lock()
	n := min(len(b.pending), maxReplayBatch)
	batch := b.pending[:n:n]
	b.pending = b.pending[n:]
	b.mu.Unlock()
	b.flush(batch)
	b.mu.Lock()
	if len(b.pending) > 0 {
		close(b.pending[0].lead)
	} else {
		b.busy = false
		b.pending = nil
	}
	b.mu.Unlock()
	return r.fresh, r.err
}

func (b *replayBatcher) flush(batch []*replayReq) {
	keys := make([]store.AssertionKey, len(batch))
	for i, r := range batch {
		keys[i] = r.key
	}
	// Not a request's context: the batch is shared by many requests.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	fresh, err := b.sh.RememberAssertions(ctx, keys, b.now())
	cancel()
	for i, r := range batch {
		if err != nil {
			r.err = err
		} else {
			r.fresh = fresh[i]
		}
		close(r.done)
	}
}
