package extd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/agent/extensions/handler"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/saferead"
	"github.com/arcagent/arcagent/signing"
)

// ControlPlane is what the extension manager asks of the control plane;
// *cloud.Machine implements it.
type ControlPlane interface {
	DesiredState(ctx context.Context, etag string) (*apiv1.DesiredState, string, error)
	PutStatus(ctx context.Context, st apiv1.MachineStatus) error
	DownloadPackage(ctx context.Context, sha256 string, w io.Writer, maxSize int64) (int64, error)
	PackageSignature(ctx context.Context, sha256 string, maxSize int64) ([]byte, error)
}

// Options configure a Manager.
type Options struct {
	Layout layout.Layout
	// Trust loads the trust store; it is called on every pass, so a key
	// added with `arcagent trust add` counts without a restart.
	Trust func() (*signing.TrustStore, error)
	// Unseal opens an assignment's protected settings (sealed to the
	// machine key); nil refuses assignments that carry them.
	Unseal func(name, sealed string) ([]byte, error)
	// Timeouts of the handler commands (handler.DefaultTimeout when unset).
	Timeouts map[handler.Op]time.Duration
	// CgroupRoot overrides the cgroup mount (tests).
	CgroupRoot string
	Limits     extensions.Limits
	// MaxPackage bounds a download (default 256 MiB).
	MaxPackage int64
	// RetryMin is the first retry delay after a failure (default 30 s);
	// it doubles up to 64 times that.
	RetryMin time.Duration
	Log      *slog.Logger
	Now      func() time.Time
}

// Manager applies desired extensions to the machine. Every pass takes the
// state lock and reads the state from disk, so the local CLI verbs and the
// daemon can share it.
type Manager struct {
	o    Options
	mu   sync.Mutex // one pass at a time in this process
	poke chan struct{}
}

// Poke makes the running daemon loop poll the desired state now (SIGHUP).
func (m *Manager) Poke() {
	select {
	case m.poke <- struct{}{}:
	default:
	}
}

// New returns a Manager.
func New(o Options) *Manager {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxPackage == 0 {
		o.MaxPackage = 256 << 20
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 30 * time.Second
	}
	return &Manager{o: o, poke: make(chan struct{}, 1)}
}

// pass is the context of one reconcile pass.
type pass struct {
	ctx      context.Context
	m        *Manager
	st       *State
	settings *config.Settings
	cfgErr   error
	trust    *signing.TrustStore
	trustErr error
	runner   *handler.Runner
	cp       ControlPlane
	changed  bool // something was reported differently: send status
	degraded string
	saved    []byte // the state as last read or written: an unchanged state is not written again
	reported bool   // a report was sent during the pass
	attempt  string // the version apply works towards
}

func (m *Manager) begin(ctx context.Context, cp ControlPlane) (*pass, func(), error) {
	m.mu.Lock()
	lk, err := lockState(ctx, m.o.Layout)
	if err != nil {
		m.mu.Unlock()
		return nil, nil, err
	}
	done := func() { lk.Unlock(); m.mu.Unlock() }
	st, err := LoadState(m.o.Layout)
	if err != nil {
		done()
		return nil, nil, err
	}
	p := &pass{ctx: ctx, m: m, st: st, cp: cp}
	p.saved, _ = marshalState(st)
	p.settings, _, p.cfgErr = config.NewStore(m.o.Layout).Load()
	if p.cfgErr != nil {
		// Fail closed: with local controls unreadable nothing new installs.
		p.settings = nil
	}
	limit := 0
	if p.settings != nil {
		limit = p.settings.Int(config.ExtCPULimit)
	}
	p.runner = &handler.Runner{CPULimit: limit, Timeouts: m.o.Timeouts, CgroupRoot: m.o.CgroupRoot, Logger: m.o.Log}
	return p, done, nil
}

func (p *pass) loadTrust() (*signing.TrustStore, error) {
	if p.trust == nil && p.trustErr == nil {
		if p.m.o.Trust == nil {
			p.trustErr = errors.New("no trust store is configured")
		} else {
			p.trust, p.trustErr = p.m.o.Trust()
		}
	}
	return p.trust, p.trustErr
}

func (p *pass) save() error {
	data, err := marshalState(p.st)
	if err != nil {
		return err
	}
	if bytes.Equal(data, p.saved) {
		return nil
	}
	if err := writeState(p.m.o.Layout, data); err != nil {
		return err
	}
	p.saved = data
	return nil
}

// step records that e enters phase (before the step runs) and saves; a
// changed reported state is sent to the control plane at once, so that it
// sees every transition (a failed send stays pending).
func (p *pass) step(e *Entry, phase string) error {
	e.Phase = phase
	p.st.put(e)
	if err := p.save(); err != nil {
		return err
	}
	if p.changed && p.cp != nil {
		p.report(p.ctx)
		p.changed = false
		p.reported = true
	}
	return nil
}

// setStatus records a reported state for e.
//
// A Transitioning or Failed state is about the version being applied (the
// control plane compares it with the one it asked for); the others about
// the installed one.
func (p *pass) setStatus(e *Entry, state, op, msg string) {
	s := &e.Status
	version := e.Version
	if (state == apiv1.ExtensionTransitioning || state == apiv1.ExtensionFailed) && p.attempt != "" {
		version = p.attempt
	}
	if s.State != state || s.Message != msg || s.Version != version || s.Operation != op || s.Sequence != e.Sequence {
		p.changed = true
	}
	s.Name, s.Publisher, s.Type, s.Version = e.Name, e.Publisher, e.Type, version
	s.State, s.Operation, s.Message, s.Sequence = state, op, msg, e.Sequence
	s.UpdatedAt = p.m.o.Now().UTC().Truncate(time.Second)
}

func (p *pass) now() time.Time { return p.m.o.Now() }

// ext is the handler view of e at version v.
func (p *pass) ext(e *Entry, version string) (handler.Extension, error) {
	pkg := signing.Package{Publisher: e.Publisher, Type: e.Type, Version: version}
	dir := filepath.Join(p.m.o.Layout.ExtensionsDir(), pkg.Name())
	x := handler.Extension{Publisher: e.Publisher, Type: e.Type, Version: version, Dir: dir,
		LogDir: filepath.Join(p.m.o.Layout.ExtensionLogsDir(), pkg.Name())}
	data, err := saferead.File(filepath.Join(dir, extensions.HandlerManifestName), 1<<20)
	if err != nil {
		return x, fmt.Errorf("read the handler manifest of %s: %w", pkg.Name(), err)
	}
	if x.Manifest, err = extensions.ParseHandlerManifest(data); err != nil {
		return x, err
	}
	return x, nil
}

// run runs one handler operation of e at version v and notes a degraded
// CPU limit.
func (p *pass) run(ctx context.Context, e *Entry, version string, op handler.Op) (*handler.Result, error) {
	x, err := p.ext(e, version)
	if err != nil {
		return nil, err
	}
	if err := handler.Prepare(x); err != nil {
		return nil, err
	}
	res, err := p.runner.Run(ctx, x, op, e.Sequence)
	if res != nil {
		e.Status.Degraded = res.Degraded
		if res.Degraded != "" {
			p.degraded = res.Degraded
		}
	}
	p.m.o.Log.Debug("handler command", "extension", e.Name, "version", version, "op", string(op), "err", err)
	return res, err
}

// settingsHash fingerprints what the settings of spec are made from.
func settingsHash(spec *apiv1.ExtensionSpec) string {
	pub, _ := json.Marshal(spec.Settings) // map keys are sorted
	h := sha256.New()
	h.Write(pub)
	h.Write([]byte{0})
	h.Write([]byte(spec.ProtectedSettings))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// key identifies what was asked for, for backoff and refusals.
func key(spec *apiv1.ExtensionSpec) string {
	return spec.Publisher + "/" + spec.Type + "@" + spec.Version + "#" + spec.PackageSHA256 + "#" + settingsHash(spec)
}

// writeSettings writes config/<seq>.settings for e at version v.
func (p *pass) writeSettings(e *Entry, version string, spec *apiv1.ExtensionSpec) error {
	x, err := p.ext(e, version)
	if err != nil {
		return err
	}
	if err := handler.Prepare(x); err != nil {
		return err
	}
	var protected []byte
	var cert *handler.Cert
	if spec.ProtectedSettings != "" {
		if p.m.o.Unseal == nil {
			return errors.New("the assignment carries protected settings but no machine key is available to open them")
		}
		if protected, err = p.m.o.Unseal(spec.Name, spec.ProtectedSettings); err != nil {
			return fmt.Errorf("open the protected settings: %w", err)
		}
		if cert, err = handler.EnsureCert(p.m.o.Layout.ExtensionsDir()); err != nil {
			return err
		}
	}
	if err := handler.WriteSettings(x, e.Sequence, spec.Settings, protected, cert); err != nil {
		return err
	}
	clear(protected)
	e.SettingsHash = settingsHash(spec)
	return nil
}

// TransitionTimeout is how long a handler may report transitioning after
// enable before the extension is reported Failed.
const TransitionTimeout = 30 * time.Minute

// enable runs enable for e and reads its status back.
func (p *pass) enable(ctx context.Context, e *Entry) error {
	p.setStatus(e, apiv1.ExtensionTransitioning, "Enable", "")
	if err := p.step(e, PhaseEnabling); err != nil {
		return err
	}
	res, err := p.run(ctx, e, e.Version, handler.OpEnable)
	if err != nil {
		p.fail(e, "Enable", err, res)
		return p.save()
	}
	e.Phase = PhaseEnabled
	p.readStatus(e, res)
	return p.save()
}

// readStatus turns status/<seq>.status (or the exit of enable when the
// handler wrote none) into the reported state.
func (p *pass) readStatus(e *Entry, res *handler.Result) {
	x, err := p.ext(e, e.Version)
	if err != nil {
		p.setStatus(e, apiv1.ExtensionFailed, "Enable", err.Error())
		return
	}
	if res != nil { // right after an enable: a new wait starts
		e.TransitioningSince = time.Time{}
	}
	st, err := handler.ReadStatus(x, e.Sequence)
	defer func() {
		if e.Status.State != apiv1.ExtensionTransitioning {
			e.TransitioningSince = time.Time{}
		}
	}()
	switch {
	case errors.Is(err, os.ErrNotExist):
		if e.Status.State == apiv1.ExtensionTransitioning && res == nil {
			return // still waiting for the handler
		}
		p.setStatus(e, apiv1.ExtensionSucceeded, "Enable", "enable completed; the handler wrote no status file")
	case err != nil:
		p.setStatus(e, apiv1.ExtensionFailed, "Enable", "the handler's status file is unreadable: "+err.Error())
	default:
		op := st.Operation
		if op == "" {
			op = "Enable"
		}
		e.Status.Code = st.Code
		switch strings.ToLower(st.Status) {
		case "success", "warning":
			p.setStatus(e, apiv1.ExtensionSucceeded, op, st.Message)
		case "transitioning":
			// A handler that never settles is reported Failed after
			// TransitionTimeout, not re-read every 5 s for ever.
			now := p.now()
			if e.TransitioningSince.IsZero() {
				e.TransitioningSince = now
			}
			if now.Sub(e.TransitioningSince) > TransitionTimeout {
				p.setStatus(e, apiv1.ExtensionFailed, op, fmt.Sprintf("the handler has reported transitioning since %s, more than %s: %s", e.TransitioningSince.UTC().Format(time.RFC3339), TransitionTimeout, st.Message))
				return
			}
			p.setStatus(e, apiv1.ExtensionTransitioning, op, st.Message)
			return
		default:
			p.setStatus(e, apiv1.ExtensionFailed, op, st.Message)
		}
	}
}

// fail records a failed step: reported Failed, retried with backoff.
func (p *pass) fail(e *Entry, op string, err error, res *handler.Result) {
	msg := errcode.Format(err)
	if res != nil && res.Tail != "" {
		msg += "; output: " + res.Tail
	}
	e.Attempts++
	backoff := time.Duration(1<<min(e.Attempts-1, 6)) * p.m.o.RetryMin // 30 s … 32 min by default
	e.NotBefore = p.now().Add(backoff)
	if e.Phase != PhaseRefused {
		e.Phase = PhaseFailed
	}
	p.setStatus(e, apiv1.ExtensionFailed, op, msg)
	p.m.o.Log.Warn("extension failed", "extension", e.Name, "op", op, "err", err, "retry_after", backoff)
}

// refuse records that local controls refuse spec for e.
func (p *pass) refuse(e *Entry, spec *apiv1.ExtensionSpec, msg string) {
	e.FailedFor = key(spec)
	if !e.installed() {
		e.Phase = PhaseRefused
	}
	p.setStatus(e, apiv1.ExtensionFailed, "Install", msg)
}

// decide applies local policy to installing or updating spec.
func (p *pass) decide(spec *apiv1.ExtensionSpec) Verdict {
	if p.settings == nil {
		return Verdict{Reason: "the local security controls (localconfig.json) cannot be read: " + p.cfgErr.Error(),
			Setting: "localconfig.json", Command: "arcagent config list (and fix or reset the file: arcagent config reset)"}
	}
	return Decide(p.settings, spec.Publisher, spec.Type)
}
