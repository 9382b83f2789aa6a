//go:build !windows

package himds

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadResult is one measured run.
type loadResult struct {
	ops  int64
	rate float64 // ops per second
	p50  time.Duration
	p99  time.Duration
}

// load runs op from workers goroutines for d and measures each op.
func load(workers int, d time.Duration, op func() error) (loadResult, error) {
	var (
		ops     atomic.Int64
		firstMu sync.Mutex
		first   error
		wg      sync.WaitGroup
		lat     = make([][]time.Duration, workers)
	)
	stop := time.Now().Add(d)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for time.Now().Before(stop) {
				t0 := time.Now()
				if err := op(); err != nil {
					firstMu.Lock()
					if first == nil {
						first = err
					}
					firstMu.Unlock()
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
				ops.Add(1)
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	r := loadResult{ops: ops.Load(), rate: float64(ops.Load()) / el.Seconds()}
	if len(all) > 0 {
		r.p50, r.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	return r, first
}

func serveLoopback(b *testing.B, h http.Handler) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Shutdown(context.Background()) }
}

func get(c *http.Client, url, auth string) (*http.Response, []byte, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Metadata", "true")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b, err
}

// BenchmarkCachedTokenVsBareHandler measures, in one run, cached tokens
// through the whole challenge flow (401 + read the secret file +
// authorised request) at 64 concurrent clients, and a bare net/http handler
// that writes a fixed JSON body, both on loopback. The figure is tokens/s
// (a token is two HTTP requests) and token-ratio, tokens/s over the bare
// handler's requests/s in the same run; it also reports p99 latencies.
//
//	go test -run '^$' -bench CachedToken -benchtime 1x ./agent/himds/
//
// HIMDS_BENCH_SECONDS sets each measurement's length (default 5).
// HIMDS_BENCH_FRESH=1 accounts every challenge to a uid of its own, so
// that none shares a realm and each creates and removes a secret file (the
// clients of one uid otherwise share their fresh challenge's realm).
func BenchmarkCachedTokenVsBareHandler(b *testing.B) {
	d := 5 * time.Second
	if s := os.Getenv("HIMDS_BENCH_SECONDS"); s != "" {
		if n, err := time.ParseDuration(s + "s"); err == nil {
			d = n
		}
	}
	const workers = 64
	f := newFixture(b, func(o *Options) {
		// The production sweep interval, not the tests' short one: each
		// sweep removes the used secret files no challenge took.
		o.ReloadEvery = 0
		// HIMDS_BENCH_TOKENS_DIR puts the secret files elsewhere (e.g. on
		// tmpfs) to separate the disk's cost from the service's.
		if d := os.Getenv("HIMDS_BENCH_TOKENS_DIR"); d != "" {
			dir, err := os.MkdirTemp(d, "tokens")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { os.RemoveAll(dir) })
			o.TokensDir = dir
		}
	})
	if os.Getenv("HIMDS_BENCH_FRESH") == "1" {
		var next atomic.Int64
		f.svc.lookupPeer = func(cli, srv netip.AddrPort) (int, error) { return int(next.Add(1)), nil }
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = f.svc.Run(ctx) }()
	api, stopAPI := serveLoopback(b, f.svc.Handler())
	defer stopAPI()
	body := []byte(`{"access_token":"x","expires_on":"1","expires_in":"1","token_type":"Bearer","resource":"r"}` + "\n")
	bare, stopBare := serveLoopback(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	defer stopBare()
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: workers * 2, MaxIdleConnsPerHost: workers * 2}}
	url := api + tokenPath
	tokenFlow := func() error {
		resp, _, err := get(client, url, "")
		if err != nil {
			return err
		}
		realm := strings.TrimPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=")
		secret, err := os.ReadFile(realm)
		if err != nil {
			return err
		}
		resp, _, err = get(client, url, "Basic "+string(secret))
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return &statusError{resp.StatusCode}
		}
		return nil
	}
	if err := tokenFlow(); err != nil { // warm the cache
		b.Fatal(err)
	}
	bareOp := func() error {
		_, _, err := get(client, bare+"/", "")
		return err
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := load(workers, time.Second, bareOp); err != nil { // warm up
			b.Fatal(err)
		}
		// Two alternating rounds each, so that load from other processes
		// on the host falls on both sides alike.
		var br, hr loadResult
		for round := 0; round < 2; round++ {
			r1, err := load(workers, d/2, bareOp)
			if err != nil {
				b.Fatal(err)
			}
			r2, err := load(workers, d/2, tokenFlow)
			if err != nil {
				b.Fatal(err)
			}
			br.rate, hr.rate = br.rate+r1.rate/2, hr.rate+r2.rate/2
			br.p50, br.p99 = max(br.p50, r1.p50), max(br.p99, r1.p99)
			hr.p50, hr.p99 = max(hr.p50, r2.p50), max(hr.p99, r2.p99)
		}
		b.ReportMetric(hr.rate, "tokens/s")
		b.ReportMetric(br.rate, "bare-req/s")
		b.ReportMetric(hr.rate/br.rate, "token-ratio")
		b.ReportMetric(float64(hr.p99.Microseconds())/1000, "token-p99-ms")
		b.ReportMetric(float64(br.p99.Microseconds())/1000, "bare-p99-ms")
		b.Logf("HIMDS %.0f tokens/s (token p50 %s p99 %s); bare handler %.0f req/s (p50 %s p99 %s); tokens/s ÷ bare req/s = %.2f; upstream calls %d",
			hr.rate, hr.p50, hr.p99, br.rate, br.p50, br.p99, hr.rate/br.rate, f.cp.tokenCalls.Load())
	}
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }
