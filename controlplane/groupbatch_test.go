package controlplane

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// Concurrent requests are answered each with its own result, in fewer
// batches than requests while a batch is in flight, none over the bound.
func TestGroupBatch(t *testing.T) {
	var runs, biggest atomic.Int32
	release := make(chan struct{})
	first := make(chan struct{})
	var once sync.Once
	b := &groupBatch[int, string]{max: 8, run: func(qs []int) ([]string, error) {
		if runs.Add(1) == 1 {
			once.Do(func() { close(first) })
			<-release // hold the first batch so that the others queue up
		}
		if n := int32(len(qs)); n > biggest.Load() {
			biggest.Store(n)
		}
		out := make([]string, len(qs))
		for i, q := range qs {
			out[i] = fmt.Sprint(q * q)
		}
		return out, nil
	}}
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	do := func(i int) {
		defer wg.Done()
		got, err := b.do(i)
		if err != nil || got != fmt.Sprint(i*i) {
			errs <- fmt.Errorf("request %d: %q, %v", i, got, err)
		}
	}
	wg.Add(1)
	go do(0)
	<-first
	for i := 1; i < n; i++ {
		wg.Add(1)
		go do(i)
	}
	for b.queued() < n-1 {
		runtime.Gosched() // until every other request queues behind the first batch
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// 1 + ceil(39/8) = 6 batches; a batch per request would be 40.
	if r := runs.Load(); r != 6 {
		t.Errorf("%d batches for %d requests, want 6", r, n)
	}
	if biggest.Load() > 8 {
		t.Errorf("a batch of %d, over the bound of 8", biggest.Load())
	}
	if b.queued() != 0 || b.busy {
		t.Error("the batcher did not go idle")
	}
}

// A failed batch fails every request in it, and a batch answered with the
// wrong number of results is an error, not a misattributed answer.
func TestGroupBatchErrors(t *testing.T) {
	boom := errors.New("database gone")
	for _, c := range []struct {
		name string
		run  func([]int) ([]int, error)
		want string
	}{
		{"store error", func([]int) ([]int, error) { return nil, boom }, "database gone"},
		{"short answer", func([]int) ([]int, error) { return nil, nil }, "a batch of 1 got 0 answers"},
	} {
		b := &groupBatch[int, int]{max: 4, run: c.run}
		if _, err := b.do(1); err == nil || err.Error() != c.want {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		// The batcher is usable after a failure.
		b.run = func(qs []int) ([]int, error) { return qs, nil }
		if got, err := b.do(7); err != nil || got != 7 {
			t.Errorf("%s: after the failure: %d, %v", c.name, got, err)
		}
	}
}
