package himds

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arcagent/arcagent/agent/daemon"
	"github.com/arcagent/arcagent/internal/tlskex"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/agent/proxy"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/saferead"
)

// Options configures a Service. Zero values mean the production defaults.
type Options struct {
	Layout layout.Layout
	// TokensDir holds the challenge secret files; default the layout's
	// /var/opt/azcmagent/tokens.
	TokensDir string
	Log       *slog.Logger
	Now       func() time.Time
	// HeartbeatInterval overrides the interval the server asks for.
	HeartbeatInterval time.Duration
	// BackoffMin and BackoffMax bound the retry delay after a failed
	// heartbeat (defaults 10s and the heartbeat interval).
	BackoffMin, BackoffMax time.Duration
	// ReloadEvery is how often agentconfig.json and localconfig.json are
	// checked for changes (default 2s).
	ReloadEvery   time.Duration
	ChallengeTTL  time.Duration
	MaxChallenges int
	// MaxChallengesPerPeer bounds the challenges of one client uid
	// (default DefaultMaxChallengesPerPeer).
	MaxChallengesPerPeer int
	AgentVersion         string
	// Listen is the address the local API is served on (for show).
	Listen string
	// Inventory describes the machine for heartbeats (default
	// CollectInventory under Layout).
	Inventory func() apiv1.Inventory
}

// Service is HIMDS: registration state, heartbeats, token cache and the
// local APIs.
type Service struct {
	o     Options
	log   *slog.Logger
	now   func() time.Time
	ch    *challenges
	cache *tokenCache
	kick  chan struct{}
	// lookupPeer finds the uid owning a client's socket (a seam for tests).
	lookupPeer func(cli, srv netip.AddrPort) (int, error)
	peerWarned atomic.Bool

	mu          sync.RWMutex
	cfg         *AgentConfig
	machine     *cloud.Machine
	self        *apiv1.Machine
	selfAt      time.Time
	status      string
	lastHB      time.Time
	lastAttempt time.Time
	lastErr     string
	settings    *config.Settings
	cfgStamp    string
	localStamp  string
	// invSent and invRefused are "machine id:inventory digest" of the
	// inventory the control plane last accepted and last refused: a
	// heartbeat carries the inventory only when it differs from both.
	invSent, invRefused string

	// ready is closed by the first successful Reload; requests wait for
	// it (or for Run to return, closing stopped) rather than answer from
	// a registration not yet read.
	ready, stopped         chan struct{}
	readyOnce, stoppedOnce sync.Once
}

// New returns a Service. It does no I/O: Run checks the tokens directory
// and loads the state. A machine that is not connected is not an error:
// the service serves agent status and waits for `arcagent connect`.
func New(o Options) (*Service, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TokensDir == "" {
		o.TokensDir = o.Layout.TokensDir()
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 10 * time.Second
	}
	if o.ReloadEvery <= 0 {
		o.ReloadEvery = 2 * time.Second
	}
	if o.AgentVersion == "" {
		o.AgentVersion = "dev"
	}
	if o.Inventory == nil {
		l, v := o.Layout, o.AgentVersion
		o.Inventory = func() apiv1.Inventory { return CollectInventory(l, v) }
	}
	s := &Service{
		o: o, log: o.Log, now: o.Now,
		ch:         newChallenges(o.TokensDir, o.ChallengeTTL, o.MaxChallenges, o.MaxChallengesPerPeer, o.Now, o.Log),
		cache:      newTokenCache(o.Now),
		kick:       make(chan struct{}, 1),
		lookupPeer: lookupPeerUID,
		status:     StatusNotConnected,
		ready:      make(chan struct{}), stopped: make(chan struct{}),
	}
	return s, nil
}

// start checks the tokens directory, removes the secret files of an
// earlier run and loads the state.
func (s *Service) start(ctx context.Context) error {
	if fi, err := os.Stat(s.o.TokensDir); err != nil || !fi.IsDir() {
		return errcode.New(CodeStateUnreadable, "the tokens directory %s is missing: run `sudo arcagent connect` (it creates it himds:himds 0710) or create it", s.o.TokensDir)
	}
	s.ch.clean()
	return s.Reload(ctx)
}

// waitReady holds a request until the state is loaded. It reports false,
// having answered, when Run returned first or the client went away.
func (s *Service) waitReady(w http.ResponseWriter, r *http.Request) bool {
	select {
	case <-s.ready:
		return true
	default:
	}
	select {
	case <-s.ready:
		return true
	case <-s.stopped:
		apiError(w, http.StatusServiceUnavailable, "service_unavailable", "HIMDS could not load its state; see its log")
	case <-r.Context().Done():
	}
	return false
}

// Reload re-reads agentconfig.json, the machine key, the server CA and
// localconfig.json, and rebuilds the control plane client. A new machine
// identity drops every cached token.
func (s *Service) Reload(ctx context.Context) error {
	l := s.o.Layout
	cfgStamp, localStamp := daemon.FileStamp(l.AgentConfig()), daemon.FileStamp(l.LocalConfig())
	settings, _, err := config.NewStore(l).Load()
	if err != nil {
		s.log.Warn("localconfig.json cannot be read; keeping the previous settings", "err", err)
		s.mu.RLock()
		settings = s.settings
		s.mu.RUnlock()
		if settings == nil {
			settings = config.NewSettings()
		}
	}
	cfg, err := LoadAgentConfig(l)
	if err != nil {
		return err
	}
	var m *cloud.Machine
	if cfg != nil {
		m, err = s.machineClient(cfg, settings)
		if err != nil {
			return err
		}
	}
	st, _ := LoadStatus(l)

	s.mu.Lock()
	defer s.mu.Unlock()
	changed := (s.cfg == nil) != (cfg == nil) || (cfg != nil && s.cfg != nil && cfg.MachineID != s.cfg.MachineID)
	s.cfg, s.machine, s.settings = cfg, m, settings
	s.cfgStamp, s.localStamp = cfgStamp, localStamp
	s.readyOnce.Do(func() { close(s.ready) })
	if changed {
		s.cache.drop()
		s.self, s.selfAt, s.lastErr, s.lastAttempt = nil, time.Time{}, "", time.Time{}
		s.lastHB = time.Time{}
		switch {
		case cfg == nil:
			s.status = StatusNotConnected
		default:
			if cfg.LastHeartbeat != nil {
				s.lastHB = *cfg.LastHeartbeat
			}
			if st != nil && st.MachineID == cfg.MachineID && st.LastHeartbeat != nil && st.LastHeartbeat.After(s.lastHB) {
				s.lastHB = *st.LastHeartbeat
			}
			s.status = StatusAt(s.lastHB, s.now())
			if st != nil && st.MachineID == cfg.MachineID && st.Status == StatusExpired {
				s.status = StatusExpired
			}
		}
		s.log.Info("registration loaded", "machine", idOf(cfg), "status", s.status)
	}
	return nil
}

func idOf(c *AgentConfig) string {
	if c == nil {
		return ""
	}
	return c.MachineID
}

// machineClient builds the control plane client of a registration, with
// the proxy of localconfig.json (which wins over HTTPS_PROXY).
func (s *Service) machineClient(cfg *AgentConfig, settings *config.Settings) (*cloud.Machine, error) {
	return MachineClient(s.o.Layout, cfg, settings, "arcagent-himds/"+s.o.AgentVersion)
}

// LoadMachineKey reads and parses the machine key (certs/machine.key),
// bounded and without following a link (CodeMachineKey when it cannot).
func LoadMachineKey(l layout.Layout) (*ecdsa.PrivateKey, error) {
	keyPEM, err := saferead.File(l.MachineKey(), 64<<10)
	if err != nil {
		return nil, errcode.Wrap(CodeMachineKey, err, "read the machine key")
	}
	key, err := cloud.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, errcode.Wrap(CodeMachineKey, err, "parse the machine key")
	}
	return key, nil
}

// MachineClient builds the control plane client of the registration cfg,
// authenticated with the machine key and trusting the control plane CA of
// the layout, with the proxy of localconfig.json (which wins over
// HTTPS_PROXY). The other services (extd) use it too.
func MachineClient(l layout.Layout, cfg *AgentConfig, settings *config.Settings, userAgent string) (*cloud.Machine, error) {
	key, err := LoadMachineKey(l)
	if err != nil {
		return nil, err
	}
	hc, err := httpClient(l, cfg, settings)
	if err != nil {
		return nil, err
	}
	c, err := cloud.New(cfg.Server, cloud.Options{HTTPClient: hc, UserAgent: userAgent})
	if err != nil {
		return nil, err
	}
	return c.Machine(cfg.MachineID, cfg.Audience, key), nil
}

// httpClient is the HTTPS client to the control plane: its CA from certs/
// and the route of agent/proxy (through the arc proxy when it is on,
// else direct or HTTPS_PROXY, honouring proxy.bypass).
func httpClient(l layout.Layout, cfg *AgentConfig, settings *config.Settings) (*http.Client, error) {
	tr, err := proxy.Transport(l, settings, cfg.Server)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: tlskex.Wrap(tr)}, nil
}

// Kick asks for a heartbeat now (after connect).
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run loads the state (the first reload), then runs the heartbeat loop,
// the challenge sweeper and the reload watch until ctx is done. It returns
// at once with the error when the state cannot be loaded.
func (s *Service) Run(ctx context.Context) error {
	defer s.stoppedOnce.Do(func() { close(s.stopped) })
	if err := s.start(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.watch(ctx) }()
	go func() { defer wg.Done(); s.heartbeatLoop(ctx) }()
	wg.Wait()
	return nil
}

// watch reloads changed configuration files and sweeps expired secrets.
func (s *Service) watch(ctx context.Context) {
	t := time.NewTicker(s.o.ReloadEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.ch.sweep()
		l := s.o.Layout
		s.mu.RLock()
		same := s.cfgStamp == daemon.FileStamp(l.AgentConfig()) && s.localStamp == daemon.FileStamp(l.LocalConfig())
		s.mu.RUnlock()
		if same {
			continue
		}
		s.mu.RLock()
		before := idOf(s.cfg)
		s.mu.RUnlock()
		if err := s.Reload(ctx); err != nil {
			s.log.Warn("configuration changed but cannot be loaded; keeping the previous one", "err", err)
			continue
		}
		s.log.Info("configuration reloaded")
		s.mu.RLock()
		after := idOf(s.cfg)
		s.mu.RUnlock()
		if after != before {
			s.Kick()
		}
	}
}

func (s *Service) interval() time.Duration {
	if s.o.HeartbeatInterval > 0 {
		return s.o.HeartbeatInterval
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cfg != nil && s.cfg.HeartbeatSeconds > 0 {
		return time.Duration(s.cfg.HeartbeatSeconds) * time.Second
	}
	return DefaultHeartbeatInterval
}

// jitter spreads d by ±10% so that a fleet does not beat in step.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
}

// Backoff is the delay after the n-th consecutive failure: exponential
// from min, capped at max, with jitter (between half and all of it).
func Backoff(n int, min, max time.Duration) time.Duration {
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (s *Service) heartbeatLoop(ctx context.Context) {
	failures := 0
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		err := s.Heartbeat(ctx)
		var wait time.Duration
		switch {
		case errors.Is(err, errNotConnected):
			failures, wait = 0, s.interval()
		case err != nil:
			failures++
			max := s.o.BackoffMax
			if max <= 0 {
				max = s.interval()
			}
			wait = Backoff(failures, s.o.BackoffMin, max)
			s.log.Warn("heartbeat failed; retrying", "err", err, "in", wait.Round(time.Millisecond), "failures", failures)
		default:
			failures, wait = 0, jitter(s.interval())
		}
		t.Reset(wait)
	}
}

var errNotConnected = errors.New("not connected")

// Heartbeat sends one heartbeat and records the outcome.
func (s *Service) Heartbeat(ctx context.Context) error {
	s.mu.RLock()
	m, cfg := s.machine, s.cfg
	s.mu.RUnlock()
	if m == nil {
		return errNotConnected
	}
	now := s.now()
	req := apiv1.HeartbeatRequest{AgentVersion: s.o.AgentVersion, AgentStatus: "Ready"}
	inv := s.o.Inventory()
	if inv.VMID == "" { // the product UUID is root's to read; connect read it
		inv.VMID = cfg.VMID
	}
	key := cfg.MachineID + ":" + InventoryDigest(inv)
	s.mu.RLock()
	withInv := key != s.invSent && key != s.invRefused
	s.mu.RUnlock()
	if withInv {
		req.Inventory = &inv
	}
	_, err := m.Heartbeat(ctx, req)
	refused := false
	if withInv && cloud.StatusOf(err) == http.StatusBadRequest {
		// An older control plane does not know the field (it decodes
		// strictly), or this one refuses a value: the heartbeat still
		// goes, without the inventory, until the inventory changes.
		s.log.Warn("the control plane refused the machine's inventory; heartbeats go on without it until it changes", "err", err)
		refused, req.Inventory = true, nil
		_, err = m.Heartbeat(ctx, req)
	}
	s.mu.Lock()
	if idOf(s.cfg) != cfg.MachineID { // another registration meanwhile
		s.mu.Unlock()
		return err
	}
	s.lastAttempt = now
	switch {
	case err == nil:
		s.status, s.lastHB, s.lastErr = StatusConnected, now, ""
		switch {
		case refused:
			s.invRefused = key
		case withInv:
			s.invSent = key
		}
	case cloud.CodeOf(err) == apiv1.CodeMachineExpired:
		s.status, s.lastErr = StatusExpired, err.Error()
	default:
		s.status, s.lastErr = StatusDisconnected, err.Error()
		if StatusAt(s.lastHB, now) == StatusExpired {
			s.status = StatusExpired
		}
	}
	refresh := err == nil && (s.self == nil || now.Sub(s.selfAt) > time.Hour)
	sf := s.statusFileLocked()
	s.mu.Unlock()
	if werr := WriteStatus(s.o.Layout, sf); werr != nil {
		s.log.Warn("cannot record the heartbeat status", "err", werr)
	}
	if refresh {
		s.refreshSelf(ctx, m, cfg)
	}
	if err == nil {
		s.log.Debug("heartbeat sent", "machine", cfg.MachineID)
	}
	return err
}

// refreshSelf refreshes the machine's metadata (name, tags, location).
func (s *Service) refreshSelf(ctx context.Context, m *cloud.Machine, cfg *AgentConfig) {
	me, err := m.Self(ctx)
	if err != nil {
		s.log.Warn("cannot refresh the machine's metadata; serving the cached copy", "err", err)
		return
	}
	s.mu.Lock()
	if idOf(s.cfg) == cfg.MachineID {
		s.self, s.selfAt = &me, s.now()
	}
	s.mu.Unlock()
}

func (s *Service) statusFileLocked() *StatusFile {
	sf := &StatusFile{MachineID: idOf(s.cfg), Status: s.status, LastError: s.lastErr, AgentVersion: s.o.AgentVersion, UpdatedAt: s.now().UTC()}
	if !s.lastHB.IsZero() {
		t := s.lastHB.UTC()
		sf.LastHeartbeat = &t
	}
	if !s.lastAttempt.IsZero() {
		t := s.lastAttempt.UTC()
		sf.LastAttempt = &t
	}
	return sf
}
