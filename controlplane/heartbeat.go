package controlplane

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arcagent/arcagent/controlplane/store"
)

// maxHeartbeatBatch bounds one write transaction.
const maxHeartbeatBatch = 1024

var errShuttingDown = errors.New("the server is shutting down")

// heartbeatBatcher is a group commit for heartbeats: handlers queue a
// heartbeat and wait; one writer goroutine takes everything queued, writes
// it in one transaction and wakes the waiters. While a transaction commits,
// the next batch gathers, so throughput grows with load and no heartbeat
// is acknowledged before it is written.
type heartbeatBatcher struct {
	st   store.Store
	log  *slog.Logger
	ch   chan *hbReq
	quit chan struct{}
	done chan struct{}
	once sync.Once
	pool sync.Pool
	// started is set by run; stop does not wait for a writer never started.
	started atomic.Bool
}

type hbReq struct {
	hb  store.Heartbeat
	err chan error
}

func newHeartbeatBatcher(st store.Store, log *slog.Logger) *heartbeatBatcher {
	b := &heartbeatBatcher{st: st, log: log, ch: make(chan *hbReq, 4*maxHeartbeatBatch), quit: make(chan struct{}), done: make(chan struct{})}
	b.pool.New = func() any { return &hbReq{err: make(chan error, 1)} }
	return b
}

// record queues hb and waits until it is written.
func (b *heartbeatBatcher) record(ctx context.Context, hb store.Heartbeat) error {
	r := b.pool.Get().(*hbReq)
	select { // a pooled request never carries an answer; make sure
	case <-r.err:
	default:
	}
	r.hb = hb
	select {
	case b.ch <- r:
	case <-b.quit:
		return errShuttingDown
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.err:
		r.hb = store.Heartbeat{}
		b.pool.Put(r)
		return err
	case <-ctx.Done():
		// The writer still answers r later (r.err is buffered); r is not
		// reused.
		return ctx.Err()
	case <-b.done:
		// The writer has exited; it answers every queued request before
		// exiting, so the answer is already in r.err.
		select {
		case err := <-r.err:
			return err
		default:
			return errShuttingDown
		}
	}
}

func (b *heartbeatBatcher) run() {
	if !b.started.CompareAndSwap(false, true) {
		return
	}
	defer close(b.done)
	batch := make([]*hbReq, 0, maxHeartbeatBatch)
	hbs := make([]store.Heartbeat, 0, maxHeartbeatBatch)
	for {
		var first *hbReq
		select {
		case first = <-b.ch:
		case <-b.quit:
			// Drain what is queued, then exit. (batch still holds the
			// previous, already answered batch: start afresh.)
			batch = batch[:0]
			for {
				select {
				case r := <-b.ch:
					batch = append(batch, r)
					if len(batch) == maxHeartbeatBatch {
						b.flush(batch, hbs)
						batch = batch[:0]
					}
				default:
					b.flush(batch, hbs)
					return
				}
			}
		}
		batch = append(batch[:0], first)
	gather:
		for len(batch) < maxHeartbeatBatch {
			select {
			case r := <-b.ch:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		b.flush(batch, hbs)
	}
}

func (b *heartbeatBatcher) flush(batch []*hbReq, hbs []store.Heartbeat) {
	if len(batch) == 0 {
		return
	}
	hbs = hbs[:0]
	for _, r := range batch {
		hbs = append(hbs, r.hb)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := b.st.RecordHeartbeats(ctx, hbs)
	cancel()
	if err != nil {
		b.log.Error("record heartbeats", "count", len(hbs), "err", err)
	}
	for _, r := range batch {
		// r.err has room for exactly this answer; never block the writer
		// on a request that was answered already.
		select {
		case r.err <- err:
		default:
			b.log.Error("heartbeat answered twice (bug)", "machine", r.hb.MachineID)
		}
	}
}

// stop makes the writer flush what is queued and exit, and waits for it.
func (b *heartbeatBatcher) stop() {
	b.once.Do(func() { close(b.quit) })
	if b.started.Load() {
		<-b.done
	}
}
