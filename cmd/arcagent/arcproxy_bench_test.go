//go:build !windows

package main

import (
	"bytes"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/agent/proxy"
)

// proxyBench is a TLS backend in the test process and a real
// `arcagent daemon arcproxy` process (connection.type gateway, the
// backend on proxy.allowed, no upstream: the proxy dials direct), with
// two clients built the same way: one routed through the arc proxy by
// agent/proxy.Transport, one direct.
type proxyBench struct {
	backend          *httptest.Server
	daemon           *arcProxyProc
	viaProxy, direct *http.Client
}

const downloadSize = 100 << 20

func newProxyBench(b *testing.B, keepAlive bool) *proxyBench {
	b.Helper()
	zeros := make([]byte, 1<<20)
	pb := &proxyBench{}
	pb.backend = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/download" {
			w.Header().Set("Content-Length", "104857600")
			for i := 0; i < downloadSize/len(zeros); i++ {
				if _, err := w.Write(zeros); err != nil {
					return
				}
			}
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"Connected","heartbeatSeconds":300,"desiredStateETag":"\"7\""}`)
	}))
	b.Cleanup(pb.backend.Close)
	bin := buildArcagent(b)
	root := worldTraversableTemp(b)
	l := layout.New(root)
	backendAddr := strings.TrimPrefix(pb.backend.URL, "https://")
	for _, kv := range [][2]string{{"connection.type", "gateway"}, {"proxy.allowed", backendAddr}} {
		if out, stderr, code := runBin(b, bin, "config", "set", "--root", root, kv[0], kv[1]); code != 0 {
			b.Fatalf("config set: %s %s", out, stderr)
		}
	}
	if os.Geteuid() == 0 {
		ensureArcProxyUser(b)
	}
	pb.daemon, _ = startArcProxy(b, bin, root)
	settings, _, err := config.NewStore(l).Load()
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(pb.backend.Certificate())
	mk := func(via bool) *http.Client {
		tr, err := proxy.Transport(l, settings, "")
		if err != nil {
			b.Fatal(err)
		}
		if !via {
			tr.Proxy = nil
		}
		tr.TLSClientConfig.RootCAs = pool
		tr.DisableKeepAlives = !keepAlive
		return &http.Client{Transport: tr, Timeout: time.Minute}
	}
	pb.viaProxy, pb.direct = mk(true), mk(false)
	return pb
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// BenchmarkArcProxyHeartbeatLatency: one heartbeat-sized request (a
// 1 KiB JSON POST, a small JSON answer) on a fresh connection (a heartbeat
// every 5 minutes outlives the idle connection), through the arc proxy
// and direct, alternating in the same run. Reported: p50 and p99 of each,
// in µs, and the ratios.
//
//	go test -run '^$' -bench ArcProxyHeartbeatLatency -benchtime 400x ./cmd/arcagent/
func BenchmarkArcProxyHeartbeatLatency(b *testing.B) {
	pb := newProxyBench(b, false)
	body := bytes.Repeat([]byte("x"), 1024)
	one := func(c *http.Client) time.Duration {
		start := time.Now()
		res, err := c.Post(pb.backend.URL+"/v1/machines/m/heartbeat", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return time.Since(start)
	}
	one(pb.viaProxy)
	one(pb.direct)
	var via, direct []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		via = append(via, one(pb.viaProxy))
		direct = append(direct, one(pb.direct))
	}
	b.StopTimer()
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	vp50, vp99, dp50, dp99 := percentile(via, .5), percentile(via, .99), percentile(direct, .5), percentile(direct, .99)
	b.ReportMetric(us(vp50), "via-p50-µs")
	b.ReportMetric(us(vp99), "via-p99-µs")
	b.ReportMetric(us(dp50), "direct-p50-µs")
	b.ReportMetric(us(dp99), "direct-p99-µs")
	b.ReportMetric(us(vp50)/us(dp50), "p50-ratio")
	b.ReportMetric(us(vp99)/us(dp99), "p99-ratio")
}

// BenchmarkArcProxyDownload: a 100 MiB download through the arc proxy
// and direct, alternating in the same run (keep-alive connections, as a
// package download reuses the client's). Reported: MiB/s of each and the
// ratio.
//
//	go test -run '^$' -bench ArcProxyDownload -benchtime 5x ./cmd/arcagent/
func BenchmarkArcProxyDownload(b *testing.B) {
	pb := newProxyBench(b, true)
	one := func(c *http.Client) time.Duration {
		start := time.Now()
		res, err := c.Get(pb.backend.URL + "/download")
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil || n != downloadSize {
			b.Fatalf("downloaded %d bytes: %v", n, err)
		}
		return time.Since(start)
	}
	var via, direct time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		via += one(pb.viaProxy)
		direct += one(pb.direct)
	}
	b.StopTimer()
	mib := float64(b.N) * downloadSize / (1 << 20)
	b.ReportMetric(mib/via.Seconds(), "via-MiB/s")
	b.ReportMetric(mib/direct.Seconds(), "direct-MiB/s")
	b.ReportMetric(direct.Seconds()/via.Seconds(), "throughput-ratio")
}

// BenchmarkArcProxyIdleRSS: the resident memory of the arc proxy daemon
// after it carried one heartbeat and sat idle for five seconds.
//
//	go test -run '^$' -bench ArcProxyIdleRSS -benchtime 1x ./cmd/arcagent/
func BenchmarkArcProxyIdleRSS(b *testing.B) {
	pb := newProxyBench(b, false)
	res, err := pb.viaProxy.Get(pb.backend.URL + "/v1/x")
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	for i := 0; i < b.N; i++ {
		time.Sleep(5 * time.Second)
		kb := vmRSS(b, pb.daemon.pid())
		b.ReportMetric(float64(kb), "idle-rss-KiB")
		b.Logf("idle RSS of the arc proxy: %d KiB (%.1f MiB)", kb, float64(kb)/1024)
	}
}
