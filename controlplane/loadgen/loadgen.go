// Package loadgen drives heartbeats from many simulated machines against
// an arcserver over loopback HTTPS and measures throughput and latency. It
// is used by `arcserver loadgen` and by the package benchmark. Every
// simulated heartbeat takes the full production path: a fresh ES256
// assertion signed by the machine's own key, TLS, JSON, RBAC-free machine
// authentication with the replay cache, and a durable (group-committed)
// write to the store.
package loadgen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/internal/tlskex"
)

// Config describes a run.
type Config struct {
	ServerURL string // https://127.0.0.1:PORT
	// Replicas are further URLs of arcserver replicas sharing ServerURL's
	// database (and CA). Setup registers through ServerURL; Drive spreads
	// the heartbeats over all of them, each worker sending its successive
	// heartbeats to successive servers, as a round-robin balancer would.
	Replicas []string
	Token    string // an API token that may create subscriptions (Owner at /)
	CAPEM    []byte // CA of the server certificate
	Machines int    // simulated machines (default 1000)
	Workers  int    // concurrent requests in flight (default 64)
	Duration time.Duration
	Warmup   time.Duration
	HTTP2    bool // use HTTP/2 instead of HTTP/1.1 keep-alive connections
	// Reconnect opens a new TCP connection and does a full TLS handshake
	// (no session resumption) for every heartbeat, as a real agent does:
	// it closes idle connections after 90 s and heartbeats every 5 min.
	Reconnect bool
	// Resume, with Reconnect, lets each simulated machine resume its TLS
	// session from the ticket the server gave its previous connection
	// (as the agent's client does): the handshake then skips the
	// certificate signature and chain verification. A machine's first
	// connection is a full handshake.
	Resume bool
	// PreSign signs every assertion before the timed window, so that the
	// simulated machines' signing (which real machines do on their own
	// CPUs) does not compete with the server for this host's CPU. The
	// server still verifies every assertion and checks every jti.
	PreSign bool
	// ServerPIDs are the processes of the servers measured (ServerURL and
	// Replicas, when they run as separate processes on this host): the
	// result then says how much CPU they spent per heartbeat.
	ServerPIDs []int
	// Acked, if set, is called (from many goroutines at once) after every
	// heartbeat a server acknowledged with 200, with the time taken just
	// before it was sent: the stored last heartbeat of m is at least that.
	Acked func(m *Machine, sent time.Time)
	// Progress, if set, receives a line per setup step.
	Progress func(format string, args ...any)
}

// Result is what a run measured.
type Result struct {
	Machines  int    `json:"machines"`
	Workers   int    `json:"workers"`
	Protocol  string `json:"protocol"`
	Servers   int    `json:"servers"`
	Reconnect bool   `json:"reconnect"`
	Resume    bool   `json:"resume"`
	// Connections is how many TCP connections the measured window opened
	// (about Workers with keep-alive, Heartbeats+Errors when reconnecting).
	Connections int64 `json:"connections"`
	// Resumed is how many of those connections resumed a TLS session.
	Resumed    int64         `json:"resumed"`
	PreSigned  bool          `json:"preSigned"`
	Heartbeats int           `json:"heartbeats"`
	Errors     int           `json:"errors"`
	Elapsed    time.Duration `json:"elapsed"`
	PerSecond  float64       `json:"heartbeatsPerSecond"`
	P50        time.Duration `json:"p50"`
	P90        time.Duration `json:"p90"`
	P99        time.Duration `json:"p99"`
	Max        time.Duration `json:"max"`
	FirstError string        `json:"firstError,omitempty"`
	// CPUPerHeartbeat is the CPU time (user+system) this process spent per
	// heartbeat during the window: server and simulated machines together
	// when the server runs in-process. It shows the cost independently of
	// other load on the host.
	CPUPerHeartbeat time.Duration `json:"cpuPerHeartbeat"`
	// ServerCPUPerHeartbeat is the CPU time the Config.ServerPIDs spent
	// per heartbeat during the window (0: not measured): what one
	// heartbeat costs the control plane alone, without the simulated
	// machines' TLS and JSON work that shares the host in a load test.
	ServerCPUPerHeartbeat time.Duration `json:"serverCpuPerHeartbeat,omitempty"`
}

func (r Result) String() string {
	signing := "signed in the loop"
	if r.PreSigned {
		signing = "pre-signed"
	}
	conns := "keep-alive"
	if r.Reconnect {
		conns = "a new TLS connection per heartbeat"
		if r.Resume {
			conns += fmt.Sprintf(" resuming the machine's TLS session (%d of %d resumed)", r.Resumed, r.Connections)
		}
	}
	servers := ""
	if r.Servers > 1 {
		servers = fmt.Sprintf(", spread over %d servers", r.Servers)
	}
	return fmt.Sprintf("%d heartbeats from %d machines over %d workers (%s, %s, assertions %s%s) in %s: %.0f heartbeats/s, p50 %s, p90 %s, p99 %s, max %s, %d errors",
		r.Heartbeats, r.Machines, r.Workers, r.Protocol, conns, signing, servers, r.Elapsed.Round(time.Millisecond), r.PerSecond,
		r.P50.Round(time.Microsecond), r.P90.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond), r.Errors) +
		fmt.Sprintf("; CPU %s per heartbeat (this process)", r.CPUPerHeartbeat.Round(time.Microsecond)) + r.serverCPU()
}

func (r Result) serverCPU() string {
	if r.ServerCPUPerHeartbeat <= 0 {
		return ""
	}
	return fmt.Sprintf("; server processes' CPU %s per heartbeat (%.0f heartbeats/s per core)",
		r.ServerCPUPerHeartbeat.Round(time.Microsecond), float64(time.Second)/float64(r.ServerCPUPerHeartbeat))
}

func (c *Config) defaults() {
	if c.Machines <= 0 {
		c.Machines = 1000
	}
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Progress == nil {
		c.Progress = func(string, ...any) {}
	}
}

// machineKey carries a heartbeat's machine in its request context, so that
// a resuming dialer finds the machine's session cache.
type machineKey struct{}

// dialStats counts what a client's dialer did.
type dialStats struct {
	dials   atomic.Int64
	resumed atomic.Int64
}

func httpClient(caPEM []byte, conns int, h2, reconnect, resume bool, st *dialStats) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the CA bundle holds no PEM certificate")
	}
	tr := &http.Transport{
		// The agent's key exchange (agent/proxy and agent/cloud offer
		// tlskex.Preferred first): what each handshake costs the server.
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, CurvePreferences: tlskex.Preferred},
		// Per server, not in all: with Replicas, a total of conns would
		// close (and so re-handshake) the connections beyond it.
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
		ForceAttemptHTTP2:   h2,
		// Without a ClientSessionCache every new connection is a full
		// handshake.
		DisableKeepAlives: reconnect,
	}
	if st != nil {
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			st.dials.Add(1)
			return d.DialContext(ctx, network, addr)
		}
	}
	if resume {
		// The transport's own TLS dial has one session cache for all;
		// each machine keeps its own ticket, as each agent does.
		tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			tc := tr.TLSClientConfig.Clone()
			if m, ok := ctx.Value(machineKey{}).(*Machine); ok {
				tc.ClientSessionCache = m.sessions()
			}
			if !h2 {
				tc.NextProtos = []string{"http/1.1"}
			}
			d := tls.Dialer{Config: tc}
			st.dials.Add(1)
			c, err := d.DialContext(ctx, network, addr)
			if err == nil && c.(*tls.Conn).ConnectionState().DidResume {
				st.resumed.Add(1)
			}
			return c, err
		}
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// Fleet is a set of registered simulated machines.
type Fleet struct {
	Machines []*Machine
	client   *client
	stats    *dialStats // what client's dialer did
}

// Setup creates a subscription, a resource group and an onboarding
// credential, and registers cfg.Machines machines (each with its own key).
func Setup(ctx context.Context, cfg Config) (*Fleet, error) {
	cfg.defaults()
	stats := new(dialStats)
	hc, err := httpClient(cfg.CAPEM, cfg.Workers, cfg.HTTP2, false, false, stats)
	if err != nil {
		return nil, err
	}
	c, err := newClient(cfg.ServerURL, hc)
	if err != nil {
		return nil, err
	}
	var sub apiv1.Subscription
	if err := c.call(ctx, http.MethodPost, "/v1/subscriptions", cfg.Token, apiv1.CreateSubscriptionRequest{DisplayName: fmt.Sprintf("loadgen-%d", time.Now().UnixNano())}, &sub); err != nil {
		return nil, fmt.Errorf("create the load-test subscription: %w", err)
	}
	if err := c.call(ctx, http.MethodPost, "/v1/subscriptions/"+url.PathEscape(sub.SubID)+"/resourceGroups", cfg.Token, apiv1.CreateResourceGroupRequest{Name: "loadgen"}, nil); err != nil {
		return nil, fmt.Errorf("create the load-test resource group: %w", err)
	}
	var cred apiv1.OnboardingCredential
	if err := c.call(ctx, http.MethodPost, "/v1/onboardingCredentials", cfg.Token, apiv1.CreateOnboardingRequest{SubscriptionID: sub.SubID, ResourceGroup: "loadgen", ExpiresIn: "1h", Uses: min(cfg.Machines, 10000)}, &cred); err != nil {
		return nil, fmt.Errorf("create the load-test onboarding credential: %w", err)
	}
	cfg.Progress("registering %d machines in %s", cfg.Machines, sub.ID+"/resourceGroups/loadgen")
	f := &Fleet{Machines: make([]*Machine, cfg.Machines), client: c, stats: stats}
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < min(cfg.Workers, 16); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.Machines || ctx.Err() != nil {
					return
				}
				m, err := c.register(ctx, cred.Secret, fmt.Sprintf("sim-%06d", i))
				if err == nil {
					f.Machines[i] = m
					continue
				}
				once.Do(func() { firstErr = err })
				return
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("register simulated machines: %w", firstErr)
	}
	return f, ctx.Err()
}

// Drive sends heartbeats from the fleet for cfg.Duration (after
// cfg.Warmup) with cfg.Workers requests in flight, or exactly n heartbeats
// when n > 0.
func (f *Fleet) Drive(ctx context.Context, cfg Config, n int) Result {
	cfg.defaults()
	res := Result{Machines: len(f.Machines), Workers: cfg.Workers, Protocol: "HTTP/1.1", PreSigned: cfg.PreSign, Reconnect: cfg.Reconnect, Resume: cfg.Reconnect && cfg.Resume, Servers: 1 + len(cfg.Replicas)}
	if cfg.HTTP2 {
		res.Protocol = "HTTP/2"
	}
	c, stats := f.client, f.stats
	if cfg.ServerURL != "" && cfg.ServerURL != c.base {
		// Heartbeats to other servers than the one Setup registered
		// through (replicas over its database).
		var err error
		if c, err = newClient(cfg.ServerURL, c.http); err != nil {
			res.FirstError = err.Error()
			return res
		}
	}
	if cfg.Reconnect {
		stats = new(dialStats)
		hc, err := httpClient(cfg.CAPEM, cfg.Workers, cfg.HTTP2, true, res.Resume, stats)
		if err != nil {
			res.FirstError = err.Error()
			return res
		}
		c = &client{base: c.base, http: hc}
		defer hc.CloseIdleConnections()
	}
	cs := []*client{c}
	for _, u := range cfg.Replicas {
		rc, err := newClient(u, c.http)
		if err != nil {
			res.FirstError = err.Error()
			return res
		}
		cs = append(cs, rc)
	}
	if cfg.Warmup > 0 && n == 0 {
		wctx, cancel := context.WithTimeout(ctx, cfg.Warmup)
		f.run(wctx, cs, cfg.Workers, 0, nil, cfg.Acked)
		cancel()
	}
	var pre [][]string
	if cfg.PreSign {
		total := n
		if total == 0 {
			total = int(cfg.Duration.Seconds() * 12000) // more than this host can serve
		}
		var err error
		if pre, err = f.presign(cfg.Workers, total); err != nil {
			res.FirstError = err.Error()
			return res
		}
	}
	dctx := ctx
	if n == 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	srv0, srvErr := serversCPU(cfg.ServerPIDs)
	if srvErr != nil {
		res.FirstError = srvErr.Error()
		return res
	}
	start, cpu0, dials0, resumed0 := time.Now(), cpuTime(), stats.dials.Load(), stats.resumed.Load()
	lat, errs, firstErr := f.run(dctx, cs, cfg.Workers, n, pre, cfg.Acked)
	res.Elapsed = time.Since(start)
	res.Connections = stats.dials.Load() - dials0
	res.Resumed = stats.resumed.Load() - resumed0
	if len(lat) > 0 {
		res.CPUPerHeartbeat = (cpuTime() - cpu0) / time.Duration(len(lat))
		if len(cfg.ServerPIDs) > 0 {
			if srv1, err := serversCPU(cfg.ServerPIDs); err == nil {
				res.ServerCPUPerHeartbeat = (srv1 - srv0) / time.Duration(len(lat))
			}
		}
	}
	res.Heartbeats, res.Errors = len(lat), errs
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	if res.Elapsed > 0 {
		res.PerSecond = float64(len(lat)) / res.Elapsed.Seconds()
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		res.P50, res.P90, res.P99, res.Max = pct(0.50), pct(0.90), pct(0.99), lat[len(lat)-1]
	}
	return res
}

// serversCPU sums the CPU time of the server processes.
func serversCPU(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, pid := range pids {
		d, err := processCPU(pid)
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// run returns the latencies of successful heartbeats and the error count.
// presign signs total assertions, split by worker in the order run uses
// the machines.
func (f *Fleet) presign(workers, total int) ([][]string, error) {
	pre := make([][]string, workers)
	now := time.Now()
	for w := range pre {
		k := total/workers + 1
		pre[w] = make([]string, 0, k)
		for j := 0; j < k; j++ {
			m := f.Machines[(w+j*workers)%len(f.Machines)]
			a, err := m.assertion(now, apiv1.MaxAssertionLifetime)
			if err != nil {
				return nil, err
			}
			pre[w] = append(pre[w], a)
		}
	}
	return pre, nil
}

func (f *Fleet) run(ctx context.Context, cs []*client, workers, n int, pre [][]string, acked func(*Machine, time.Time)) ([]time.Duration, int, error) {
	var mu sync.Mutex
	var all []time.Duration
	var errs int
	var firstErr error
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			e := 0
			var fe error
			for i, k := w, 0; ctx.Err() == nil; i, k = i+workers, k+1 {
				if n > 0 && sent.Add(1) > int64(n) {
					break
				}
				m := f.Machines[i%len(f.Machines)]
				a := ""
				if pre != nil && k < len(pre[w]) {
					a = pre[w][k]
				}
				t0 := time.Now()
				err := cs[(w+k)%len(cs)].heartbeat(ctx, m, a)
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					e++
					if fe == nil {
						fe = err
					}
					continue
				}
				lat = append(lat, d)
				if acked != nil {
					acked(m, t0)
				}
			}
			mu.Lock()
			all = append(all, lat...)
			errs += e
			if firstErr == nil {
				firstErr = fe
			}
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	return all, errs, firstErr
}

// Local is an arcserver started in-process on 127.0.0.1:0 over a fresh
// data directory, for load tests.
type Local struct {
	URL   string
	Token string
	CAPEM []byte
	stop  func() error
}

// Stop shuts the server down gracefully.
func (l *Local) Stop() error { return l.stop() }

// StartLocal initialises dir and serves it on a loopback port. log
// receives the server's request log (nil: discarded, after formatting).
func StartLocal(ctx context.Context, dir string, log *slog.Logger) (*Local, error) {
	return startLocal(ctx, dir, log, false)
}

// startLocal is StartLocal, serving as a replica (state shared through the
// database) when replica is set.
func startLocal(ctx context.Context, dir string, log *slog.Logger, replica bool) (*Local, error) {
	res, err := controlplane.Init(ctx, controlplane.InitOptions{DataDir: dir})
	if err != nil {
		return nil, err
	}
	return serveLocal(ctx, controlplane.ServeOptions{DataDir: dir, Replica: replica, Logger: log}, res.OwnerToken)
}
