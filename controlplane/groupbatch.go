package controlplane

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/arcagent/arcagent/controlplane/store"
)

// groupBatch is a group commit over the store: requests arriving while a
// batch is being run queue up, and the next batch carries them all, so a
// burst costs one round trip instead of one each. There is no goroutine
// to start or stop: the first request finding no batch in flight runs one
// (the leader); when it is done it hands the lead to the oldest queued
// request. Each request waits only for the batch holding it, so nothing
// is answered before its batch is done.
type groupBatch[Q, R any] struct {
	max     int                    // bound of one batch
	run     func([]Q) ([]R, error) // answers batch[i] with res[i]
	mu      sync.Mutex             // guards busy and pending
	busy    bool
	pending []*groupReq[Q, R]
}

type groupReq[Q, R any] struct {
	q    Q
	res  R
	err  error
	done chan struct{} // closed once res and err are set
	lead chan struct{} // closed when this request is to run the next batch
}

// do queues q and returns its answer once its batch has run.
func (b *groupBatch[Q, R]) do(q Q) (R, error) {
	r := &groupReq[Q, R]{q: q, done: make(chan struct{}), lead: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	leader := !b.busy
	b.busy = true
	b.mu.Unlock()
	if !leader {
		select {
		case <-r.done:
			return r.res, r.err
		case <-r.lead:
		}
	}
	b.mu.Lock()
	n := min(len(b.pending), b.max)
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
	return r.res, r.err
}

func (b *groupBatch[Q, R]) flush(batch []*groupReq[Q, R]) {
	qs := make([]Q, len(batch))
	for i, r := range batch {
		qs[i] = r.q
	}
	res, err := b.run(qs)
	if err == nil && len(res) != len(batch) {
		err = fmt.Errorf("a batch of %d got %d answers", len(batch), len(res))
	}
	for i, r := range batch {
		if err != nil {
			r.err = err
		} else {
			r.res = res[i]
		}
		close(r.done)
	}
}

// Bounds of one batch: a replay-cache transaction, a machine read.
const (
	maxReplayBatch  = 1024
	maxMachineBatch = 256
)

// batchTimeout bounds one batch's store call. It is not a request's
// context: the batch is shared by many requests.
const batchTimeout = 10 * time.Second

// newReplayBatch is the group commit of the store's replay cache.
func newReplayBatch(sh store.Shared, now func() time.Time) *groupBatch[store.AssertionKey, bool] {
	return &groupBatch[store.AssertionKey, bool]{max: maxReplayBatch, run: func(keys []store.AssertionKey) ([]bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		defer cancel()
		return sh.RememberAssertions(ctx, keys, now())
	}}
}

// machineRead is one machine's answer of a batched read: found false
// means no such machine.
type machineRead struct {
	auth  store.MachineAuth
	found bool
}

// newMachineBatch reads the machines of concurrent requests in one query
// (replicas re-read a machine on every request after the cache bound,
// which for a fleet heartbeating minutes apart is every request).
func newMachineBatch(sh store.Shared) *groupBatch[string, machineRead] {
	return &groupBatch[string, machineRead]{max: maxMachineBatch, run: func(ids []string) ([]machineRead, error) {
		ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
		defer cancel()
		got, err := sh.MachineAuths(ctx, ids)
		if err != nil {
			return nil, err
		}
		res := make([]machineRead, len(ids))
		for i, id := range ids {
			res[i].auth, res[i].found = got[id]
		}
		return res, nil
	}}
}

// queued is the number of requests waiting for a batch (tests).
func (b *groupBatch[Q, R]) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}
