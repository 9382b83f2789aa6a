package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRememberAssertion(t *testing.T) {
	backends(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		t0 := time.UnixMilli(1_700_000_000_000)
		steps := []struct {
			name  string
			key   string
			exp   time.Time
			now   time.Time
			fresh bool
		}{
			{"first use", "m\x00a", t0.Add(time.Minute), t0, true},
			{"replay", "m\x00a", t0.Add(time.Minute), t0.Add(time.Second), false},
			{"replay with a later exp", "m\x00a", t0.Add(time.Hour), t0.Add(time.Second), false},
			{"other jti", "m\x00b", t0.Add(time.Minute), t0, true},
			{"same jti after the row expired", "m\x00a", t0.Add(3 * time.Minute), t0.Add(2 * time.Minute), true},
			{"and replayed again", "m\x00a", t0.Add(3 * time.Minute), t0.Add(2 * time.Minute), false},
		}
		for _, st := range steps {
			fresh, err := s.RememberAssertion(ctx, st.key, st.exp, st.now)
			if err != nil || fresh != st.fresh {
				t.Fatalf("%s: fresh=%v err=%v, want %v", st.name, fresh, err, st.fresh)
			}
		}
		n, err := s.SweepAssertions(ctx, t0.Add(2*time.Minute))
		if err != nil || n != 1 { // m\x00b expired; m\x00a lives to +3m
			t.Fatalf("sweep: %d, %v; want 1", n, err)
		}
		if fresh, _ := s.RememberAssertion(ctx, "m\x00a", t0.Add(3*time.Minute), t0.Add(2*time.Minute)); fresh {
			t.Fatal("a live key was swept")
		}
	})
}

// TestRememberAssertionConcurrent: many goroutines (as replicas would)
// presenting one jti at once: exactly one is fresh.
func TestRememberAssertionConcurrent(t *testing.T) {
	backends(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		now := time.Now()
		var fresh atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.RememberAssertion(ctx, "m\x00same", now.Add(time.Minute), now)
				if err != nil {
					t.Error(err)
				}
				if ok {
					fresh.Add(1)
				}
			}()
		}
		wg.Wait()
		if fresh.Load() != 1 {
			t.Fatalf("%d fresh, want exactly 1", fresh.Load())
		}
	})
}

func TestEnsureSetting(t *testing.T) {
	backends(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		v, err := s.EnsureSetting(ctx, "k", []byte("first"), time.Now())
		if err != nil || string(v) != "first" {
			t.Fatalf("%q %v", v, err)
		}
		v, err = s.EnsureSetting(ctx, "k", []byte("second"), time.Now())
		if err != nil || string(v) != "first" {
			t.Fatalf("the first value must win: %q %v", v, err)
		}
	})
}

func TestMachineAuthNotFound(t *testing.T) {
	backends(t, func(t *testing.T, s *DB) {
		if _, err := s.MachineAuth(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("want ErrNotFound, got %v", err)
		}
	})
}

func TestRememberAssertions(t *testing.T) {
	backends(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		now := time.UnixMilli(1_700_000_000_000)
		exp := now.Add(time.Minute)
		if fresh, err := s.RememberAssertion(ctx, "m\x00old", exp, now); err != nil || !fresh {
			t.Fatal(fresh, err)
		}
		if fresh, err := s.RememberAssertion(ctx, "m\x00expired", now.Add(-time.Second), now.Add(-time.Minute)); err != nil || !fresh {
			t.Fatal(fresh, err)
		}
		keys := []AssertionKey{{"m\x00z", exp}, {"m\x00old", exp}, {"m\x00a", exp}, {"m\x00z", exp}, {"m\x00expired", exp}, {"m\x00expired", exp}}
		fresh, err := s.RememberAssertions(ctx, keys, now)
		if err != nil {
			t.Fatal(err)
		}
		// A key twice is fresh at its first place only; an expired row is
		// taken over (fresh), once.
		want := []bool{true, false, true, false, true, false}
		for i := range want {
			if fresh[i] != want[i] {
				t.Fatalf("fresh = %v, want %v", fresh, want)
			}
		}
	})
}

// TestRememberAssertionsConcurrent: batches from many writers (replicas)
// overlapping on the same keys, each in its own order: every key is fresh
// in exactly one batch.
func TestRememberAssertionsConcurrent(t *testing.T) {
	backends(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		now := time.Now()
		const writers, nkeys = 8, 64
		var mu sync.Mutex
		freshCount := map[string]int{}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				keys := make([]AssertionKey, nkeys)
				for i := range keys {
					k := (i*(w+1) + w) % nkeys // a different order per writer
					keys[i] = AssertionKey{Key: fmt.Sprintf("m\x00%d", k), Expires: now.Add(time.Minute)}
				}
				fresh, err := s.RememberAssertions(ctx, keys, now)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for i, f := range fresh {
					if f {
						freshCount[keys[i].Key]++
					}
				}
			}()
		}
		wg.Wait()
		if len(freshCount) != nkeys {
			t.Fatalf("%d keys were fresh somewhere, want %d", len(freshCount), nkeys)
		}
		for k, n := range freshCount {
			if n != 1 {
				t.Fatalf("%q fresh %d times, want once", k, n)
			}
		}
	})
}

// MachineAuths answers exactly what MachineAuth answers, for many ids in
// one query: missing ids absent, an id twice read once.
func TestMachineAuths(t *testing.T) {
	backends(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		id := registerOne(t, s)
		at := time.UnixMilli(time.Now().Add(time.Minute).UnixMilli())
		if err := s.RecordHeartbeats(ctx, []Heartbeat{{MachineID: id, At: at}}); err != nil {
			t.Fatal(err)
		}
		one, err := s.MachineAuth(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, ids := range [][]string{{id}, {id, "nope", id}, {"nope"}, nil} {
			got, err := s.MachineAuths(ctx, ids)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]MachineAuth{}
			for _, x := range ids {
				if x == id {
					want[id] = one
				}
			}
			if len(got) != len(want) || (len(want) == 1 && !reflect.DeepEqual(got[id], one)) {
				t.Fatalf("ids %q: %+v, want %+v", ids, got, want)
			}
		}
		if !one.LastHeartbeat.Equal(at) || one.PublicKeyPEM != "k" || one.DesiredETag != "e0" {
			t.Fatalf("MachineAuth read %+v", one)
		}
	})
}
