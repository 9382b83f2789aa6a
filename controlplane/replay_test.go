package controlplane

import (
	"fmt"
	"hash/maphash"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

func TestReplayCacheOnce(t *testing.T) {
	c := newReplayCache()
	now := time.Unix(1_800_000_000, 0)
	exp := now.Add(apiv1.MaxAssertionLifetime)
	steps := []struct {
		name string
		key  string
		exp  time.Time
		at   time.Time
		want bool
	}{
		{"first use", "m\x00a", exp, now, true},
		{"replay", "m\x00a", exp, now.Add(time.Second), false},
		{"same jti, other exp", "m\x00a", exp.Add(-time.Minute), now.Add(2 * time.Second), false},
		{"other jti", "m\x00b", exp, now, true},
		{"same jti, other machine", "n\x00a", exp, now, true},
		{"replay at exp", "m\x00a", exp, exp, false},
		{"replay within the leeway", "m\x00a", exp, exp.Add(assertionLeeway - time.Second), false},
		{"after exp+leeway (exp check refuses it)", "m\x00a", exp, exp.Add(assertionLeeway + replayBucket), true},
		{"beyond the horizon", "m\x00z", now.Add(replayHorizon + replayBucket), now, false},
	}
	for _, s := range steps {
		if got := c.remember(s.key, s.exp, s.at); got != s.want {
			t.Errorf("%s: remember = %v, want %v", s.name, got, s.want)
		}
	}
}

// The cache holds only what has not expired: after a full horizon of
// assertions, the next insert drops everything older. The previous cache
// kept every jti until 4,096 more inserts reached the same shard.
func TestReplayCacheBounded(t *testing.T) {
	c := newReplayCache()
	now := time.Unix(1_800_000_000, 0)
	for i := range 10_000 {
		if !c.remember(fmt.Sprintf("m\x00%d", i), now.Add(apiv1.MaxAssertionLifetime), now) {
			t.Fatalf("fresh key %d refused", i)
		}
	}
	if n := c.len(); n != 10_000 {
		t.Fatalf("len = %d, want 10000", n)
	}
	later := now.Add(apiv1.MaxAssertionLifetime + assertionLeeway + 2*replayBucket)
	for s := range replayShards { // one insert per shard sweeps it
		for i := 0; ; i++ {
			key := fmt.Sprintf("late-%d-%d", s, i)
			if c.shardOf(key) == s {
				c.remember(key, later.Add(time.Minute), later)
				break
			}
		}
	}
	if n := c.len(); n != replayShards {
		t.Errorf("len after expiry = %d, want %d (the expired 10000 dropped)", n, replayShards)
	}
}

func (c *replayCache) shardOf(key string) int {
	return int(maphash.String(c.seed, key) % replayShards)
}

// BenchmarkReplayCache inserts fresh keys from parallel goroutines while
// the clock advances 1 ms per insert, as under load: the number of keys
// held levels off at one horizon's worth.
func BenchmarkReplayCache(b *testing.B) {
	c := newReplayCache()
	base := time.Unix(1_800_000_000, 0)
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			now := base.Add(time.Duration(i) * time.Millisecond)
			if !c.remember(fmt.Sprintf("machine-%d\x00jti-%d", i%1000, i), now.Add(apiv1.MaxAssertionLifetime), now) {
				b.Fatal("fresh key refused")
			}
		}
	})
	held := c.len()
	b.ReportMetric(float64(held), "keys-held")
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(c)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	if max := int(replayHorizon/time.Millisecond) + replayBuckets*int(replayBucket/time.Millisecond); held > max {
		b.Fatalf("%d keys held, more than one horizon (%d)", held, max)
	}
}
