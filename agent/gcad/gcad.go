package gcad

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/extensions/handler"
	"github.com/arcagent/arcagent/agent/guestconfig"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/signing"
)

// Defaults of the loop.
const (
	DefaultInterval = 15 * time.Minute // evaluation of every assignment
	DefaultPoll     = 5 * time.Minute  // poll of the desired state
)

// DisabledMessage is the status message of every assignment while
// guestconfiguration.enabled is false.
const DisabledMessage = "disabled by local configuration (guestconfiguration.enabled is false)"

// ServiceName is the name gcad reports its own state under.
const ServiceName = "gcad"

// CgroupName is the child cgroup (under handler.SliceName) the resources'
// commands run in.
const CgroupName = "gcad"

// maxSignature bounds a downloaded envelope.
const maxSignature = 1 << 20

var digestRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })

// ControlPlane is what gcad asks of the control plane; *cloud.Machine
// implements it.
type ControlPlane interface {
	DesiredState(ctx context.Context, etag string) (*apiv1.DesiredState, string, error)
	PutStatus(ctx context.Context, st apiv1.MachineStatus) error
	DownloadPackage(ctx context.Context, sha256 string, w io.Writer, maxSize int64) (int64, error)
	PackageSignature(ctx context.Context, sha256 string, maxSize int64) ([]byte, error)
}

// Options configure a Daemon.
type Options struct {
	Layout layout.Layout
	// Trust loads the machine's trust store; it is called on every pass,
	// so a key added with `arcagent trust add` counts without a restart.
	Trust func() (*signing.TrustStore, error)
	// CgroupRoot overrides the cgroup mount (tests).
	CgroupRoot string
	// CommandTimeout bounds each command a resource runs (guestconfig's
	// default when zero).
	CommandTimeout time.Duration
	Log            *slog.Logger
	Now            func() time.Time
}

// Daemon evaluates the assigned configuration packages. Every pass takes
// the state lock and reads the state from disk.
type Daemon struct {
	o    Options
	mu   sync.Mutex
	poke chan struct{}
}

// New returns a Daemon.
func New(o Options) *Daemon {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Daemon{o: o, poke: make(chan struct{}, 1)}
}

// Poke makes the running loop poll the desired state now (SIGHUP).
func (d *Daemon) Poke() {
	select {
	case d.poke <- struct{}{}:
	default:
	}
}

// PassOptions say which assignments a pass evaluates.
type PassOptions struct {
	// All evaluates every assignment (a --once run, localconfig.json
	// changed); otherwise only new or changed assignments and those whose
	// last evaluation is Interval old.
	All bool
	// Interval between evaluations of an unchanged assignment
	// (DefaultInterval).
	Interval time.Duration
}

// Outcome says what a pass did.
type Outcome struct {
	Evaluated int       `json:"evaluated"`               // assignments evaluated
	Pending   bool      `json:"statusPending"`           // a status report is still to be sent
	Next      time.Time `json:"nextEvaluation,omitzero"` // when the next assignment is due (zero: none)
	Degraded  string    `json:"degraded,omitempty"`      // why the CPU limit is not applied ("" when it is)
}

// Fingerprint is what makes an assignment new for the daemon: version,
// digest, mode and parameters. A new fingerprint is evaluated at once and
// applied once in ApplyAndMonitor.
func Fingerprint(a *apiv1.GuestConfigurationAssignment) string {
	keys := make([]string, 0, len(a.Parameters))
	for k := range a.Parameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	_ = json.NewEncoder(h).Encode([]any{a.Policy, a.Version, a.PackageSHA256, a.PackageSize, a.Mode})
	for _, k := range keys {
		_ = json.NewEncoder(h).Encode([]string{k, a.Parameters[k]})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// splitPolicy splits "<Publisher>.<Name>" (publishers have dots, names do
// not).
func splitPolicy(policy, version string) (signing.Package, error) {
	i := strings.LastIndexByte(policy, '.')
	if i <= 0 {
		return signing.Package{}, errcode.New(CodeAssignment, "policy %q is not <Publisher>.<Name>", policy)
	}
	p := signing.Package{Publisher: policy[:i], Type: policy[i+1:], Version: version}
	if err := p.Validate(); err != nil {
		return p, errcode.Wrap(CodeAssignment, err, "policy %q version %q", policy, version)
	}
	return p, nil
}

func validAssignment(a *apiv1.GuestConfigurationAssignment) (signing.Package, guestconfig.Mode, error) {
	if !nameRE().MatchString(a.Name) {
		return signing.Package{}, "", errcode.New(CodeAssignment, "assignment name %q: use letters, digits, '.', '_' and '-' (at most 80)", a.Name)
	}
	p, err := splitPolicy(a.Policy, a.Version)
	if err != nil {
		return p, "", err
	}
	m, err := guestconfig.ParseMode(a.Mode)
	if err != nil {
		return p, "", errcode.Wrap(CodeAssignment, err, "assignment %s", a.Name)
	}
	if !digestRE().MatchString(a.PackageSHA256) {
		return p, "", errcode.New(CodeAssignment, "assignment %s does not pin its package by a sha256 digest (got %q)", a.Name, a.PackageSHA256)
	}
	if a.PackageSize < 0 || a.PackageSize > guestconfig.MaxPackage {
		return p, "", errcode.New(CodeAssignment, "assignment %s pins a package of %d bytes (at most %d)", a.Name, a.PackageSize, guestconfig.MaxPackage)
	}
	return p, m, nil
}

// pass is the context of one pass.
type pass struct {
	d        *Daemon
	st       *State
	cp       ControlPlane
	settings *config.Settings
	cfgErr   error
	trust    *signing.TrustStore
	trustErr error
	trustSet bool
	limiter  *handler.CPULimiter
	changed  bool
}

// Pass applies desired (nil: the last desired state, kept in the state
// file), evaluates the assignments that are due and reports status to cp
// when anything was evaluated or changed or a report is pending. cp may be
// nil (offline: packages already downloaded are still evaluated, status
// stays pending).
func (d *Daemon) Pass(ctx context.Context, cp ControlPlane, desired *apiv1.DesiredState, etag string, o PassOptions) (Outcome, error) {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	lk, err := lockState(ctx, d.o.Layout)
	if err != nil {
		return Outcome{}, err
	}
	defer lk.Unlock()
	st, err := LoadState(d.o.Layout)
	if err != nil {
		return Outcome{}, err
	}
	p := &pass{d: d, st: st, cp: cp}
	p.settings, _, p.cfgErr = config.NewStore(d.o.Layout).Load()
	if desired != nil {
		if etag != st.DesiredETag {
			p.changed = true
		}
		st.DesiredETag = etag
		st.Desired = desired.GuestConfigurationAssignments
		if st.Desired == nil {
			st.Desired = []apiv1.GuestConfigurationAssignment{}
		}
	}
	// Removed assignments: state and report dropped; nothing is un-applied.
	want := map[string]bool{}
	for _, a := range st.Desired {
		want[a.Name] = true
	}
	kept := st.Assignments[:0]
	for _, e := range st.Assignments {
		if want[e.Name] {
			kept = append(kept, e)
			continue
		}
		p.changed = true
		d.o.Log.Info("assignment removed from the desired state: its state and report are dropped, nothing is un-applied", "assignment", e.Name)
		if nameRE().MatchString(e.Name) {
			_ = os.Remove(ReportPath(d.o.Layout, e.Name))
		}
	}
	st.Assignments = kept
	if err := saveState(d.o.Layout, st); err != nil {
		return Outcome{}, err
	}

	enabled := p.cfgErr == nil && p.settings.EffectiveBool(config.GCEnabled)
	if enabled {
		limit := p.settings.Int(config.GCCPULimit)
		p.limiter = handler.NewCPULimiter(d.o.CgroupRoot, CgroupName, limit)
		defer p.limiter.Close()
		if r := p.limiter.Reason(); r != "" {
			d.o.Log.Warn("running the resources' commands without a CPU limit", "reason", r)
		}
	}
	out := Outcome{}
	seen := map[string]bool{}
	for i := range st.Desired {
		a := &st.Desired[i]
		if seen[a.Name] {
			d.o.Log.Warn("the desired state names an assignment twice; the second is ignored", "assignment", a.Name)
			continue
		}
		seen[a.Name] = true
		if ctx.Err() != nil {
			break
		}
		e := st.Lookup(a.Name)
		if e == nil {
			st.Assignments = append(st.Assignments, Entry{Name: a.Name})
			e = &st.Assignments[len(st.Assignments)-1]
		}
		fp := Fingerprint(a)
		now := d.o.Now()
		if enabled && !p.enabledNow() {
			// Turned off while this pass runs: nothing more is changed.
			enabled = false
			d.o.Log.Warn("guest configuration was disabled during the pass: the remaining assignments are not evaluated")
		}
		switch {
		case !enabled:
			msg := DisabledMessage
			if p.cfgErr != nil {
				msg = "not evaluated: the local configuration (localconfig.json) cannot be read: " + p.cfgErr.Error()
			}
			if e.Status.Compliance != guestconfig.NotApplied || e.Status.Message != msg || e.Evaluated != fp {
				p.refuse(e, a, fp, msg)
				out.Evaluated++
			}
			continue
		case !o.All && e.Evaluated == fp && now.Sub(e.LastEvaluation) < o.Interval:
			continue // not due
		}
		p.evaluate(ctx, e, a, fp)
		out.Evaluated++
		if err := saveState(d.o.Layout, st); err != nil {
			return out, err
		}
	}
	p.prunePackages()
	if p.limiter != nil {
		out.Degraded = p.limiter.Reason()
	}
	if enabled {
		for _, e := range st.Assignments {
			if next := e.LastEvaluation.Add(o.Interval); out.Next.IsZero() || next.Before(out.Next) {
				out.Next = next
			}
		}
	}
	if out.Evaluated > 0 || p.changed {
		st.StatusPending = true
	}
	if err := saveState(d.o.Layout, st); err != nil {
		return out, err
	}
	if st.StatusPending {
		p.report(ctx, out.Degraded, !enabled)
	}
	out.Pending = st.StatusPending
	return out, ctx.Err()
}

// enabledNow reads localconfig.json again: guest configuration turned off
// (or monitor mode turned on) while a pass runs stops the pass from
// changing anything more.
func (p *pass) enabledNow() bool {
	s, _, err := config.NewStore(p.d.o.Layout).Load()
	if err != nil {
		p.cfgErr = err
		return false
	}
	p.settings = s
	return s.EffectiveBool(config.GCEnabled)
}

// refuse records an assignment as NotApplied (disabled, or refused before
// evaluation) without touching the machine.
func (p *pass) refuse(e *Entry, a *apiv1.GuestConfigurationAssignment, fp, msg string) {
	now := p.d.o.Now().UTC()
	e.Policy, e.Version, e.Mode, e.Evaluated, e.LastEvaluation = a.Policy, a.Version, a.Mode, fp, now
	e.Status = apiv1.GuestConfigurationStatus{Name: a.Name, Compliance: guestconfig.NotApplied, Message: msg,
		Policy: a.Policy, Version: a.Version, Mode: a.Mode, EvaluatedAt: now.Truncate(time.Second)}
	p.d.o.Log.Warn("assignment not applied", "assignment", a.Name, "reason", msg)
}

// evaluate loads, verifies and evaluates one assignment and records the
// outcome.
func (p *pass) evaluate(ctx context.Context, e *Entry, a *apiv1.GuestConfigurationAssignment, fp string) {
	log := p.d.o.Log.With("assignment", a.Name)
	spec, mode, err := validAssignment(a)
	if err != nil {
		p.refuse(e, a, fp, errcode.Format(err))
		return
	}
	pkg, err := p.load(ctx, a, spec)
	if err != nil {
		p.refuse(e, a, fp, errcode.Format(err))
		return
	}
	compiled, err := pkg.Compile(a.Parameters)
	if err != nil {
		p.refuse(e, a, fp, errcode.Format(err))
		return
	}
	apply := false
	switch mode {
	case guestconfig.ApplyAndAutoCorrect:
		apply = true
	case guestconfig.ApplyAndMonitor:
		apply = e.Applied != fp
	}
	rep, err := p.run(ctx, a, mode, apply, compiled)
	if err != nil {
		p.refuse(e, a, fp, errcode.Format(err))
		return
	}
	if err := writeReport(p.d.o.Layout, a.Name, rep); err != nil {
		log.Warn("write the report", "err", err)
	}
	now := p.d.o.Now().UTC()
	if rep.Applied && rep.Compliance != guestconfig.Error && ctx.Err() == nil {
		e.Applied, e.AppliedAt = fp, now
	}
	e.Policy, e.Version, e.Mode, e.Evaluated, e.LastEvaluation = a.Policy, a.Version, a.Mode, fp, now
	e.Status = statusOf(a, rep)
	log.Info("assignment evaluated", "mode", mode, "applied", rep.Applied, "compliance", rep.Compliance, "durationMs", rep.Duration)
}

// run evaluates: a read-only preflight first when the pass may set, so a
// resource that cannot even be tested (a path through a link out of the
// root) refuses the whole assignment before anything is changed.
func (p *pass) run(ctx context.Context, a *apiv1.GuestConfigurationAssignment, mode guestconfig.Mode, apply bool, c *guestconfig.Compiled) (*guestconfig.Report, error) {
	l := p.d.o.Layout
	base := guestconfig.EnvOptions{Run: p.limiter.Run, CommandTimeout: p.d.o.CommandTimeout, Log: p.d.o.Log, Now: p.d.o.Now}
	ro, err := guestconfig.NewEnv(l.Root(), base)
	if err != nil {
		return nil, err
	}
	defer ro.Close()
	enforce := mode == guestconfig.ApplyAndAutoCorrect || (mode == guestconfig.ApplyAndMonitor && apply)
	if !enforce {
		// Audit, and monitoring after the first apply: an Env without a
		// backup directory cannot write at all.
		return guestconfig.Evaluate(ctx, ro, c, guestconfig.EvalOptions{Mode: mode}), nil
	}
	pre := guestconfig.Evaluate(ctx, ro, c, guestconfig.EvalOptions{Mode: guestconfig.Audit})
	for _, r := range pre.Resources {
		if r.Compliance == guestconfig.Error || r.Compliance == guestconfig.Skipped {
			pre.Mode, pre.Applied = mode, false
			pre.Compliance = guestconfig.Error
			pre.Message = errcode.Format(errcode.New(CodeRefused, "refused before any change: resource %s: %s", r.ID, r.Reason))
			return pre, nil
		}
	}
	if pre.Compliance == guestconfig.Compliant && mode == guestconfig.ApplyAndAutoCorrect {
		pre.Mode, pre.Applied = mode, true
		return pre, nil // nothing to set: the preflight is the pass
	}
	if !p.enabledNow() {
		// Turned off during the preflight (its exec scripts may run long).
		return nil, errcode.New(guestconfig.CodeDisabled, "%s", DisabledMessage)
	}
	o := base
	o.BackupDir = filepath.Join(l.GCBackupsDir(), a.Name)
	if err := ensureDir(o.BackupDir); err != nil {
		return nil, err
	}
	rw, err := guestconfig.NewEnv(l.Root(), o)
	if err != nil {
		return nil, err
	}
	defer rw.Close()
	rep := guestconfig.Evaluate(ctx, rw, c, guestconfig.EvalOptions{Mode: mode, Apply: true})
	pruneBackups(o.BackupDir, KeepBackups, filepath.Base(rep.Backups), p.d.o.Log)
	return rep, nil
}

// KeepBackups is how many passes' backups are kept per assignment (the
// oldest are deleted).
const KeepBackups = 10

// pruneBackups keeps the keep newest backup directories of dir (their
// names start with the UTC time of the pass, so they sort by age); the
// current pass's is never deleted.
func pruneBackups(dir string, keep int, current string, log *slog.Logger) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var stamps []string
	for _, de := range ents {
		if de.IsDir() && de.Name() != current {
			stamps = append(stamps, de.Name())
		}
	}
	sort.Strings(stamps)
	if current != "" && current != "." {
		keep--
	}
	for len(stamps) > max(keep, 0) {
		if err := os.RemoveAll(filepath.Join(dir, stamps[0])); err != nil {
			log.Warn("delete an old backup", "path", filepath.Join(dir, stamps[0]), "err", err)
		}
		stamps = stamps[1:]
	}
}

// statusOf is the status report of one evaluation.
func statusOf(a *apiv1.GuestConfigurationAssignment, r *guestconfig.Report) apiv1.GuestConfigurationStatus {
	s := apiv1.GuestConfigurationStatus{Name: a.Name, Compliance: r.Compliance, Message: r.Message, Policy: a.Policy,
		Version: a.Version, Mode: a.Mode, Applied: r.Applied, EvaluatedAt: r.StartedAt.Truncate(time.Second), DurationMs: r.Duration,
		Resources: []apiv1.GuestConfigurationResourceStatus{}}
	for _, x := range r.Resources {
		s.Resources = append(s.Resources, apiv1.GuestConfigurationResourceStatus{ID: x.ID, Type: x.Type, Compliance: x.Compliance,
			Reason: x.Reason, Changed: x.Changed, Evidence: x.Evidence, DurationMs: x.Duration})
	}
	return s
}

// load returns the verified package of an assignment: downloaded once by
// digest into gc_agent/packages, verified against the trust store at
// every load.
func (p *pass) load(ctx context.Context, a *apiv1.GuestConfigurationAssignment, spec signing.Package) (*guestconfig.Package, error) {
	if !p.trustSet {
		p.trustSet = true
		if p.d.o.Trust == nil {
			p.trustErr = errcode.New(guestconfig.CodePackage, "no trust store: configuration packages are only loaded after their signature verified")
		} else {
			p.trust, p.trustErr = p.d.o.Trust()
		}
	}
	if p.trustErr != nil {
		return nil, errcode.Wrap(guestconfig.CodePackage, p.trustErr, "load the trust store")
	}
	path, env, err := p.download(ctx, a)
	if err != nil {
		return nil, err
	}
	pkg, err := guestconfig.LoadPackage(ctx, guestconfig.LoadOptions{Path: path, Envelope: env, Trust: p.trust,
		Expect: signing.Expectation{Publisher: spec.Publisher, Type: spec.Type, Version: spec.Version}})
	if err != nil {
		// Refused: the kept copy is deleted, so the next pass downloads it
		// again (a key added to the trust store, a damaged file).
		_ = os.Remove(path)
		_ = os.Remove(path[:len(path)-len(".zip")] + ".sig.json")
		return nil, err
	}
	return pkg, nil
}

// download fetches the pinned package and its envelope into
// gc_agent/packages (size and sha256 checked while writing) unless a copy
// with that digest is there; a kept copy is used while offline.
func (p *pass) download(ctx context.Context, a *apiv1.GuestConfigurationAssignment) (string, []byte, error) {
	dir := p.d.o.Layout.GCPackagesDir()
	if err := ensureDir(dir); err != nil {
		return "", nil, err
	}
	final := filepath.Join(dir, a.PackageSHA256+".zip")
	sigPath := filepath.Join(dir, a.PackageSHA256+".sig.json")
	if sum, err := fileSHA256(final); err == nil && sum == a.PackageSHA256 {
		if env, err := os.ReadFile(sigPath); err == nil && len(env) <= maxSignature {
			return final, env, nil
		}
	}
	if p.cp == nil {
		return "", nil, errcode.New(CodeDownload, "the package %s %s is not downloaded yet and the control plane is not reachable (offline)", a.Policy, a.Version)
	}
	env, err := p.cp.PackageSignature(ctx, a.PackageSHA256, maxSignature)
	if err != nil {
		return "", nil, errcode.Wrap(CodeDownload, err, "download the signature of %s %s", a.Policy, a.Version)
	}
	if sum, err := fileSHA256(final); err != nil || sum != a.PackageSHA256 {
		limit := int64(guestconfig.MaxPackage)
		if a.PackageSize > 0 {
			limit = a.PackageSize
		}
		tmp, err := os.CreateTemp(dir, a.PackageSHA256+".part-*")
		if err != nil {
			return "", nil, errcode.Wrap(CodeDownload, err, "create the download file")
		}
		defer os.Remove(tmp.Name())
		h := sha256.New()
		n, err := p.cp.DownloadPackage(ctx, a.PackageSHA256, io.MultiWriter(tmp, h), limit)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", nil, errcode.Wrap(CodeDownload, err, "download %s %s", a.Policy, a.Version)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != a.PackageSHA256 || (a.PackageSize > 0 && n != a.PackageSize) {
			return "", nil, errcode.New(CodeDownload, "the downloaded package is %d bytes with sha256 %s, the assignment pins %d bytes with sha256 %s: refused", n, got, a.PackageSize, a.PackageSHA256)
		}
		if err := os.Rename(tmp.Name(), final); err != nil {
			return "", nil, errcode.Wrap(CodeDownload, err, "store the download")
		}
	}
	tmp := sigPath + ".part"
	if err := os.WriteFile(tmp, env, 0o600); err != nil {
		return "", nil, errcode.Wrap(CodeDownload, err, "store the signature")
	}
	if err := os.Rename(tmp, sigPath); err != nil {
		return "", nil, errcode.Wrap(CodeDownload, err, "store the signature")
	}
	return final, env, nil
}

// prunePackages deletes kept packages no assignment pins any more.
func (p *pass) prunePackages() {
	dir := p.d.o.Layout.GCPackagesDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	pinned := map[string]bool{}
	for _, a := range p.st.Desired {
		pinned[a.PackageSHA256] = true
	}
	for _, de := range ents {
		n := de.Name()
		digest, _, _ := strings.Cut(n, ".")
		if !pinned[digest] || strings.Contains(n, ".part") {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				p.d.o.Log.Warn("delete a package no longer assigned", "path", filepath.Join(dir, n), "err", err)
			}
		}
	}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, guestconfig.MaxPackage+1)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// report sends the guest configuration section and gcad's service state;
// a failure leaves it pending (persisted) for the next pass.
func (p *pass) report(ctx context.Context, degraded string, disabled bool) {
	if p.cp == nil {
		return
	}
	if err := p.cp.PutStatus(ctx, p.st.MachineStatus(degraded, disabled, p.d.o.Now())); err != nil {
		p.d.o.Log.Warn("status report not sent; it is kept and sent again", "err", err)
		return
	}
	p.st.StatusPending = false
	if err := saveState(p.d.o.Layout, p.st); err != nil {
		p.d.o.Log.Error("save guest configuration's state", "err", err)
	}
}

// MachineStatus is the status report of the state: only the guest
// configuration section (Extensions nil: the server keeps extd's) and
// gcad's service state.
func (s *State) MachineStatus(degraded string, disabled bool, now time.Time) apiv1.MachineStatus {
	out := apiv1.MachineStatus{DesiredStateETag: s.DesiredETag, GuestConfiguration: []apiv1.GuestConfigurationStatus{}, ReportedAt: now.UTC().Truncate(time.Second)}
	for _, e := range s.Assignments {
		st := e.Status
		if st.Name == "" {
			st = apiv1.GuestConfigurationStatus{Name: e.Name, Compliance: guestconfig.Pending}
		}
		out.GuestConfiguration = append(out.GuestConfiguration, st)
	}
	svc := apiv1.ServiceStatus{Name: ServiceName, State: "Running"}
	switch {
	case disabled:
		svc.State, svc.Message = "Disabled", DisabledMessage
	case degraded != "":
		svc.State, svc.Message = "Degraded", degraded
	}
	out.GuestConfiguration = bound(out.GuestConfiguration)
	out.Services = []apiv1.ServiceStatus{svc}
	return out
}
