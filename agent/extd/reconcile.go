package extd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/agent/extensions/handler"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/signing"
)

// maxSignature bounds a downloaded envelope.
const maxSignature = 1 << 20

var digestRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })

// Outcome says what a pass did.
type Outcome struct {
	Changed bool      // a reported state changed (status was or will be sent)
	Pending bool      // a status report is still to be sent
	Wake    time.Time // earliest retry or re-check wanted (zero: none)
	// Degraded says why a local control could not be applied (e.g. no
	// writable cgroup for the CPU limit), "" when all were.
	Degraded string
}

// Reconcile applies desired (nil: the last desired state, kept in the
// state file) and reports status to cp when anything changed or a report
// is pending. cp may be nil (offline: nothing can be downloaded, status
// stays pending).
func (m *Manager) Reconcile(ctx context.Context, cp ControlPlane, desired *apiv1.DesiredState, etag string) (Outcome, error) {
	p, done, err := m.begin(ctx, cp)
	if err != nil {
		return Outcome{}, err
	}
	defer done()
	if desired != nil {
		if etag != p.st.DesiredETag {
			p.changed = true // the report acknowledges the new desired state
		}
		old, oldTag := p.st.Desired, p.st.DesiredETag
		p.st.Desired = desired
		p.st.DesiredETag = etag
		if data, err := marshalState(p.st); err == nil && len(data) > maxStateSize {
			// Kept, it could never be read back: nothing would run again.
			p.st.Desired, p.st.DesiredETag = old, oldTag
			return Outcome{}, errcode.New(CodeState, "the desired state %s would make the extension manager's state %d bytes, more than %d: not applied", etag, len(data), maxStateSize)
		}
	}
	if d := p.st.Desired; d != nil {
		want := map[string]bool{}
		seen := map[string]bool{}
		var specs []*apiv1.ExtensionSpec
		for i := range d.Extensions {
			spec := &d.Extensions[i]
			if fold := strings.ToLower(spec.Name); spec.Name == "" || seen[fold] {
				// No entry can be kept (or reported) for it: an empty name
				// would make the state unreadable, a second one flap.
				p.m.o.Log.Warn("the desired state names an extension with no name or twice; ignored", "extension", spec.Name, "publisher", spec.Publisher, "type", spec.Type)
				continue
			} else {
				seen[fold] = true
			}
			want[spec.Name] = true
			specs = append(specs, spec)
		}
		// Removals first: an assignment renamed in one change must find
		// the tree of its kind gone, not be refused by the entry this pass
		// removes (with nothing left to retry it).
		for _, e := range slices.Clone(p.st.Extensions) {
			if e.Source == SourceControlPlane && !want[e.Name] && ctx.Err() == nil {
				phase := PhaseDisabling
				if e.Removing && (e.Phase == PhaseUninstalling || e.Phase == PhaseDeleting) {
					phase = e.Phase // a failed removal resumes where it stopped
				}
				p.removeSteps(ctx, e, phase)
			}
		}
		for _, spec := range specs {
			if ctx.Err() != nil {
				break
			}
			p.apply(ctx, spec)
		}
	}
	p.pruneDownloads()
	out := Outcome{Changed: p.changed || p.reported, Degraded: p.degraded}
	now := p.now()
	for _, e := range p.st.Extensions {
		if out.Degraded == "" && e.Status.Degraded != "" {
			out.Degraded = e.Status.Degraded
		}
		var at time.Time
		switch {
		case e.Status.State == apiv1.ExtensionTransitioning:
			at = now.Add(5 * time.Second)
		case (e.Phase == PhaseFailed || e.Removing) && e.NotBefore.After(now):
			at = e.NotBefore
		}
		if !at.IsZero() && (out.Wake.IsZero() || at.Before(out.Wake)) {
			out.Wake = at
		}
	}
	if err := p.save(); err != nil {
		return out, err
	}
	if p.changed || p.st.StatusPending {
		p.report(ctx)
	}
	out.Pending = p.st.StatusPending
	return out, ctx.Err()
}

// report sends the status of every control-plane extension; a failure
// leaves it pending (persisted) for the next pass.
func (p *pass) report(ctx context.Context) {
	p.st.StatusPending = true
	if p.cp != nil {
		if err := p.cp.PutStatus(ctx, p.st.MachineStatus(p.degraded, p.now())); err != nil {
			p.m.o.Log.Warn("status report not sent; it is kept and sent again", "err", err)
		} else {
			p.st.StatusPending = false
		}
	}
	if err := p.save(); err != nil {
		p.m.o.Log.Error("save the extension manager's state", "err", err)
	}
}

// MachineStatus is the status report of the state: every control-plane
// extension and the extension manager's own service state.
func (s *State) MachineStatus(degraded string, now time.Time) apiv1.MachineStatus {
	out := apiv1.MachineStatus{DesiredStateETag: s.DesiredETag, Extensions: []apiv1.ExtensionStatus{}, ReportedAt: now.UTC().Truncate(time.Second)}
	for _, e := range s.Extensions {
		if e.Source != SourceControlPlane {
			continue
		}
		st := e.Status
		if st.Name == "" {
			st.Name, st.Publisher, st.Type, st.State = e.Name, e.Publisher, e.Type, apiv1.ExtensionTransitioning
		}
		if st.Degraded != "" && degraded == "" {
			degraded = st.Degraded
		}
		out.Extensions = append(out.Extensions, st)
	}
	if s.Desired != nil {
		for _, spec := range s.Desired.Extensions {
			if e := s.Lookup(spec.Name); e != nil && e.Source != SourceControlPlane {
				// Never touched from the control plane, but said so.
				out.Extensions = append(out.Extensions, apiv1.ExtensionStatus{Name: spec.Name, Publisher: spec.Publisher, Type: spec.Type,
					State: apiv1.ExtensionFailed, Operation: "Install", UpdatedAt: e.Status.UpdatedAt,
					Message: fmt.Sprintf("the name %q is taken on this machine by %s.%s %s, installed locally; assign another name, or remove it on the machine: arcagent extension remove --name %s", spec.Name, e.Publisher, e.Type, e.Version, e.Name)})
			}
		}
	}
	svc := apiv1.ServiceStatus{Name: "extd", State: "Running"}
	if degraded != "" {
		svc.State, svc.Message = "Degraded", degraded
	}
	out.Services = []apiv1.ServiceStatus{svc}
	return out
}

// validSpec checks what the desired state names before it reaches a path.
func validSpec(spec *apiv1.ExtensionSpec) error {
	pkg := signing.Package{Publisher: spec.Publisher, Type: spec.Type, Version: spec.Version}
	if err := pkg.Validate(); err != nil {
		return fmt.Errorf("the assignment names an invalid package: %w", err)
	}
	if !digestRE().MatchString(spec.PackageSHA256) {
		return fmt.Errorf("the assignment does not pin the package by a sha256 digest (got %q)", spec.PackageSHA256)
	}
	if spec.PackageSize < 0 {
		return fmt.Errorf("the assignment gives a negative package size")
	}
	return nil
}

// apply drives one desired extension one pass forward.
func (p *pass) apply(ctx context.Context, spec *apiv1.ExtensionSpec) {
	p.attempt = spec.Version
	defer func() { p.attempt = "" }()
	e := p.st.Lookup(spec.Name)
	if e == nil {
		e = &Entry{Name: spec.Name, Source: SourceControlPlane, Publisher: spec.Publisher, Type: spec.Type}
	}
	if e.Source != SourceControlPlane {
		return // installed locally under this name: never touched from the control plane
	}
	if err := validSpec(spec); err != nil {
		p.refuse(e, spec, err.Error())
		p.st.put(e)
		return
	}
	for _, o := range p.st.Extensions {
		if o.Name != spec.Name && o.installed() && strings.EqualFold(o.Publisher, spec.Publisher) && strings.EqualFold(o.Type, spec.Type) {
			// Two names for one kind would share one tree.
			p.refuse(e, spec, fmt.Sprintf("%s.%s is already installed on this machine as %q (source %s); one extension of a kind per machine", o.Publisher, o.Type, o.Name, o.Source))
			p.st.put(e)
			return
		}
	}
	if e.installed() && (e.Removing || e.Publisher != spec.Publisher || e.Type != spec.Type) {
		// The same name now means another extension, or a removal is
		// unfinished (uninstall may have run): remove it first.
		phase := PhaseDisabling
		if e.Removing && (e.Phase == PhaseUninstalling || e.Phase == PhaseDeleting) {
			phase = e.Phase
		}
		if !p.removeSteps(ctx, e, phase) {
			return
		}
		e = &Entry{Name: spec.Name, Source: SourceControlPlane, Publisher: spec.Publisher, Type: spec.Type}
	}
	if !e.installed() {
		// Nothing of a refused or failed kind is on disk: the entry is
		// what is asked for now, never the tree of the kind it once named.
		e.Publisher, e.Type = spec.Publisher, spec.Type
	}
	if e.installed() && e.Version == spec.Version && e.SettingsHash == settingsHash(spec) && e.Phase == PhaseEnabled && !e.NeedInstall {
		if e.Status.State == apiv1.ExtensionTransitioning {
			p.readStatus(e, nil)
		}
		if e.FailedFor == key(spec) || e.Status.State != apiv1.ExtensionFailed {
			p.st.put(e)
			return // in the desired state
		}
	}
	k := key(spec)
	if e.FailedFor == k && p.now().Before(e.NotBefore) {
		return // failed recently: wait for the backoff
	}
	// Local policy decides before any byte is downloaded. Removal never asks.
	if v := p.decide(spec); !v.Allowed {
		if e.Status.Message != v.Message() {
			p.m.o.Log.Warn("extension refused by local policy", "extension", spec.Name, "publisher", spec.Publisher, "type", spec.Type, "setting", v.Setting, "reason", v.Reason)
		}
		p.refuse(e, spec, v.Message())
		p.st.put(e)
		return
	}
	e.FailedFor = k
	switch {
	case !e.installed():
		p.install(ctx, e, spec)
	case e.Version != spec.Version:
		p.update(ctx, e, spec)
	default:
		p.reconfigure(ctx, e, spec)
	}
	if e.Phase == PhaseEnabled && e.Status.State != apiv1.ExtensionFailed {
		e.Attempts, e.NotBefore = 0, time.Time{}
	}
	p.st.put(e)
	if err := p.save(); err != nil {
		p.m.o.Log.Error("save the extension manager's state", "err", err)
	}
}

// download fetches the pinned package and its envelope from the control
// plane into the downloads directory, checking size and digest as it
// writes. A finished download of the same digest is reused.
func (p *pass) download(ctx context.Context, spec *apiv1.ExtensionSpec) (string, []byte, error) {
	if p.cp == nil {
		return "", nil, errcode.New(CodeDownload, "the control plane is not reachable (offline)")
	}
	dir := p.m.o.Layout.ExtDownloadsDir()
	if err := ensureDir(dir); err != nil {
		return "", nil, errcode.Wrap(CodeDownload, err, "prepare the downloads directory")
	}
	final := filepath.Join(dir, spec.PackageSHA256+".zip")
	env, err := p.cp.PackageSignature(ctx, spec.PackageSHA256, maxSignature)
	if err != nil {
		return "", nil, errcode.Wrap(CodeDownload, err, "download the signature of %s %s", spec.Publisher+"."+spec.Type, spec.Version)
	}
	if sum, err := fileSHA256(final); err == nil && sum == spec.PackageSHA256 {
		return final, env, nil
	}
	max := p.m.o.MaxPackage
	if spec.PackageSize > 0 && spec.PackageSize < max {
		max = spec.PackageSize
	}
	tmp, err := os.CreateTemp(dir, spec.PackageSHA256+".part-*")
	if err != nil {
		return "", nil, errcode.Wrap(CodeDownload, err, "create the download file")
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := p.cp.DownloadPackage(ctx, spec.PackageSHA256, io.MultiWriter(tmp, h), max)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", nil, errcode.Wrap(CodeDownload, err, "download %s %s", spec.Publisher+"."+spec.Type, spec.Version)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != spec.PackageSHA256 || (spec.PackageSize > 0 && n != spec.PackageSize) {
		return "", nil, errcode.New(CodeDownload, "the downloaded package is %d bytes with sha256 %s, the assignment pins %d bytes with sha256 %s: refused", n, got, spec.PackageSize, spec.PackageSHA256)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", nil, errcode.Wrap(CodeDownload, err, "store the download")
	}
	return final, env, nil
}

// pruneDownloads deletes finished downloads no desired extension pins any
// more (a package refused after download, an assignment removed or
// changed before it installed); one still assigned stays for the retry.
func (p *pass) pruneDownloads() {
	if p.st.Desired == nil {
		return
	}
	pinned := map[string]bool{}
	for _, s := range p.st.Desired.Extensions {
		pinned[s.PackageSHA256+".zip"] = true
	}
	dir := p.m.o.Layout.ExtDownloadsDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(n, ".zip") && digestRE().MatchString(strings.TrimSuffix(n, ".zip")) && !pinned[n] {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				p.m.o.Log.Warn("delete a download no longer assigned", "path", filepath.Join(dir, n), "err", err)
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
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// extract verifies the downloaded package against the trust store and
// extracts it with its install record (agent/extensions.Install).
func (p *pass) extract(ctx context.Context, e *Entry, spec *apiv1.ExtensionSpec, path string, env []byte) error {
	trust, err := p.loadTrust()
	if err != nil {
		return fmt.Errorf("load the trust store: %w", err)
	}
	res, err := extensions.Install(ctx, extensions.InstallOptions{
		Package: path, Envelope: env, Trust: trust,
		Expect:        signing.Expectation{Publisher: spec.Publisher, Type: spec.Type, Version: spec.Version},
		ExtensionsDir: p.m.o.Layout.ExtensionsDir(), StagingDir: p.m.o.Layout.ExtDownloadsDir(),
		Limits: p.m.o.Limits, Logger: p.m.o.Log, Now: p.now(),
	})
	if err != nil {
		return err
	}
	// The signature check ignores letter case; the tree is named as the
	// package is signed, and the entry must name that tree.
	if got, want := res.Record.Package.Name(), (signing.Package{Publisher: spec.Publisher, Type: spec.Type, Version: spec.Version}).Name(); got != want {
		if rerr := extensions.Remove(ctx, p.m.o.Layout.ExtensionsDir(), got); rerr != nil {
			p.m.o.Log.Error("delete a refused tree", "dir", res.Dir, "err", rerr)
		}
		return errcode.New(signing.CodeStatementMismatch, "the signed package is %s, the assignment names %s (the letter case differs): refused; assign it as it is signed", got, want)
	}
	_ = os.Remove(path)
	return nil
}

// deleteTree removes the tree and record of e at version v.
func (p *pass) deleteTree(ctx context.Context, e *Entry, v string) error {
	if v == "" {
		return nil
	}
	name := signing.Package{Publisher: e.Publisher, Type: e.Type, Version: v}.Name()
	return extensions.Remove(ctx, p.m.o.Layout.ExtensionsDir(), name)
}

// deleteTarget deletes the tree of e.Target when this entry extracted it:
// a tree of that name with no install record, or the record of another
// package, was there before (another agent's, or planted) and stays.
func (p *pass) deleteTarget(ctx context.Context, e *Entry) error {
	if e.Target == "" {
		return nil
	}
	if e.TargetSHA256 != "" {
		dir := p.m.o.Layout.ExtensionsDir()
		name := signing.Package{Publisher: e.Publisher, Type: e.Type, Version: e.Target}.Name()
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			if rec, _, err := extensions.ReadInstallRecord(dir, name); err != nil || rec.PackageSHA256 != e.TargetSHA256 {
				p.m.o.Log.Warn("a tree of the version being installed was not extracted by this agent: left alone", "extension", e.Name, "dir", filepath.Join(dir, name))
				return nil
			}
		}
	}
	return p.deleteTree(ctx, e, e.Target)
}

// install: download → verify → extract → install → settings → enable.
func (p *pass) install(ctx context.Context, e *Entry, spec *apiv1.ExtensionSpec) {
	e.Version, e.Target, e.Sequence, e.SettingsHash, e.NeedInstall = "", spec.Version, 0, "", false
	e.TargetSHA256 = spec.PackageSHA256
	p.setStatus(e, apiv1.ExtensionTransitioning, "Download", "")
	if p.step(e, PhaseDownloading) != nil {
		return
	}
	path, env, err := p.download(ctx, spec)
	if err != nil {
		e.Target = ""
		p.fail(e, "Download", err, nil)
		return
	}
	if p.step(e, PhaseExtracting) != nil {
		return
	}
	if err := p.extract(ctx, e, spec, path, env); err != nil {
		e.Target = ""
		p.fail(e, "Install", err, nil)
		return
	}
	e.Version, e.Target, e.PackageSHA256 = spec.Version, "", spec.PackageSHA256
	p.setStatus(e, apiv1.ExtensionTransitioning, "Install", "")
	if p.step(e, PhaseInstallCmd) != nil {
		return
	}
	// Settings first, as the Azure agent does: install may read them.
	if err := p.writeSettings(e, e.Version, spec); err != nil {
		if derr := p.deleteTree(ctx, e, e.Version); derr != nil {
			p.m.o.Log.Error("roll back a failed install", "extension", e.Name, "err", derr)
		}
		e.Version = ""
		p.fail(e, "Install", err, nil)
		return
	}
	if res, err := p.run(ctx, e, e.Version, handler.OpInstall); err != nil {
		// A failed install is rolled back: no tree that looks installed.
		if derr := p.deleteTree(ctx, e, e.Version); derr != nil {
			p.m.o.Log.Error("roll back a failed install", "extension", e.Name, "err", derr)
		}
		e.Version = ""
		p.fail(e, "Install", err, res)
		return
	}
	_ = p.enable(ctx, e)
}

// reconfigure: new settings (next sequence number) and enable, or a
// retried install/enable.
func (p *pass) reconfigure(ctx context.Context, e *Entry, spec *apiv1.ExtensionSpec) {
	if e.SettingsHash != settingsHash(spec) {
		if e.SettingsHash != "" {
			e.Sequence++
		}
		if err := p.writeSettings(e, e.Version, spec); err != nil {
			p.fail(e, "Enable", err, nil)
			return
		}
	}
	p.installThenEnable(ctx, e)
}

// installThenEnable runs an install still owed (after an update with
// UpdateWithInstall, or one that failed), then enable.
func (p *pass) installThenEnable(ctx context.Context, e *Entry) {
	if e.NeedInstall {
		if p.step(e, PhaseInstallNew) != nil {
			return
		}
		if res, err := p.run(ctx, e, e.Version, handler.OpInstall); err != nil {
			p.fail(e, "Install", err, res)
			return
		}
		e.NeedInstall = false
	}
	_ = p.enable(ctx, e)
}

// update moves e from its installed version to spec.Version the way the
// Azure agent does: disable old → extract new → update new → uninstall
// old → install new (UpdateWithInstall) → enable new. A failure before the
// old version is uninstalled rolls back to it.
func (p *pass) update(ctx context.Context, e *Entry, spec *apiv1.ExtensionSpec) {
	old := e.Version
	path, env, err := p.download(ctx, spec)
	if err != nil {
		p.fail(e, "Download", err, nil)
		return
	}
	e.Target, e.TargetSHA256 = spec.Version, spec.PackageSHA256
	p.setStatus(e, apiv1.ExtensionTransitioning, "Update", "")
	if p.step(e, PhaseDisablingOld) != nil {
		return
	}
	if _, err := p.run(ctx, e, old, handler.OpDisable); err != nil {
		p.m.o.Log.Warn("disable of the old version failed; updating anyway", "extension", e.Name, "version", old, "err", err)
	}
	if p.step(e, PhaseExtracting) != nil {
		return
	}
	oldSeq, oldHash := e.Sequence, e.SettingsHash
	rollback := func(op string, err error, res *handler.Result) {
		// The old tree has the settings of the old sequence number only.
		e.Sequence, e.SettingsHash = oldSeq, oldHash
		if derr := p.deleteTarget(ctx, e); derr != nil {
			p.m.o.Log.Error("roll back a failed update", "extension", e.Name, "err", derr)
		}
		e.Target = ""
		if _, eerr := p.run(ctx, e, old, handler.OpEnable); eerr != nil {
			p.m.o.Log.Warn("re-enable the old version", "extension", e.Name, "err", eerr)
		}
		p.fail(e, op, fmt.Errorf("update to %s failed, %s stays: %w", spec.Version, old, err), res)
	}
	if err := p.extract(ctx, e, spec, path, env); err != nil {
		rollback("Update", err, nil)
		return
	}
	if e.SettingsHash != settingsHash(spec) && e.SettingsHash != "" {
		e.Sequence++
	}
	if err := p.writeSettings(e, spec.Version, spec); err != nil {
		rollback("Update", err, nil)
		return
	}
	if p.step(e, PhaseUpdatingNew) != nil {
		return
	}
	if res, err := p.run(ctx, e, spec.Version, handler.OpUpdate); err != nil {
		rollback("Update", err, res)
		return
	}
	p.finishUpdate(ctx, e, spec.Version, PhaseUninstallOld)
}

// finishUpdate runs the steps of an update after the new version's update
// command succeeded, from phase on (also after a restart).
func (p *pass) finishUpdate(ctx context.Context, e *Entry, target, phase string) {
	if phase == PhaseUninstallOld {
		if p.step(e, PhaseUninstallOld) != nil {
			return
		}
		if _, err := p.run(ctx, e, e.Version, handler.OpUninstall); err != nil {
			p.m.o.Log.Warn("uninstall of the old version failed; deleting it anyway", "extension", e.Name, "version", e.Version, "err", err)
		}
		if err := p.deleteTree(ctx, e, e.Version); err != nil {
			p.m.o.Log.Error("delete the old version", "extension", e.Name, "err", err)
		}
		e.Version, e.Target = target, ""
		if x, err := p.ext(e, target); err == nil && x.Manifest.HandlerManifest.UpdateMode == extensions.UpdateWithInstall {
			e.NeedInstall = true
		}
		e.PackageSHA256 = ""
		if d := p.st.Desired; d != nil {
			for _, s := range d.Extensions {
				if s.Name == e.Name && s.Version == target {
					e.PackageSHA256 = s.PackageSHA256
				}
			}
		}
	}
	p.installThenEnable(ctx, e)
}

// removeSteps removes e: disable → uninstall → delete tree and record,
// from phase on. Removal is always allowed and always finishes; command
// failures are logged. It reports whether e is gone.
func (p *pass) removeSteps(ctx context.Context, e *Entry, phase string) bool {
	e.Removing = true
	if e.installed() || e.Phase == PhaseDisabling || e.Phase == PhaseUninstalling || e.Phase == PhaseDeleting {
		p.setStatus(e, apiv1.ExtensionRemoving, "Disable", "")
		steps := []struct {
			phase string
			op    handler.Op
		}{{PhaseDisabling, handler.OpDisable}, {PhaseUninstalling, handler.OpUninstall}}
		started := false
		for _, s := range steps {
			if s.phase == phase {
				started = true
			}
			if !started {
				continue
			}
			if p.step(e, s.phase) != nil {
				return false
			}
			if _, err := p.run(ctx, e, e.Version, s.op); err != nil {
				p.m.o.Log.Warn("removing the extension anyway", "extension", e.Name, "op", string(s.op), "err", err)
			}
		}
		if p.step(e, PhaseDeleting) != nil {
			return false
		}
		for _, v := range []string{e.Version, e.Target} {
			if err := p.deleteTree(ctx, e, v); err != nil {
				p.fail(e, "Uninstall", err, nil)
				e.Phase = PhaseDeleting
				return false
			}
		}
	}
	p.st.drop(e.Name)
	p.changed = true
	p.m.o.Log.Info("extension removed", "extension", e.Name, "publisher", e.Publisher, "type", e.Type, "version", e.Version)
	return p.save() == nil
}

// Recover finishes or rolls back what a previous run left unfinished:
// an interrupted download, extraction or install command is rolled back
// (the tree and record deleted, the install retried), an interrupted
// update before the old version was uninstalled returns to the old
// version, and enable, uninstall and removal are resumed.
func (m *Manager) Recover(ctx context.Context) error {
	p, done, err := m.begin(ctx, nil)
	if err != nil {
		return err
	}
	defer done()
	// Downloads and verify copies cut off by a crash (their deferred
	// removal never ran); a finished download stays for reuse.
	// So are extraction staging trees under the records directory (a
	// kill -9 while a package was extracted).
	for _, pat := range []string{filepath.Join(m.o.Layout.ExtDownloadsDir(), "*.part-*"), filepath.Join(m.o.Layout.ExtDownloadsDir(), "verify-*"),
		filepath.Join(m.o.Layout.ExtensionsDir(), extensions.RecordsDirName, "staging-*")} {
		left, _ := filepath.Glob(pat)
		for _, f := range left {
			if err := os.RemoveAll(f); err != nil {
				m.o.Log.Warn("delete a download left by a crash", "path", f, "err", err)
			}
		}
	}
	for _, e := range slices.Clone(p.st.Extensions) {
		phase := e.Phase
		switch phase {
		case PhaseDownloading, PhaseExtracting, PhaseDisablingOld, PhaseUpdatingNew:
			if e.Version == "" { // a fresh install
				if err := p.deleteTarget(ctx, e); err != nil {
					return err
				}
				p.st.drop(e.Name)
				p.changed = true
			} else { // an update: back to the old version
				if e.Target != e.Version {
					if err := p.deleteTarget(ctx, e); err != nil {
						return err
					}
				}
				e.Target, e.Phase = "", PhaseInstalled
				// The settings of the sequence number may have been written
				// into the new tree only: written again before the next enable.
				e.SettingsHash = ""
				p.setStatus(e, apiv1.ExtensionTransitioning, "Update", "an interrupted update was rolled back; retrying")
			}
		case PhaseInstallCmd:
			if _, err := p.run(ctx, e, e.Version, handler.OpUninstall); err != nil {
				m.o.Log.Warn("uninstall after an interrupted install", "extension", e.Name, "err", err)
			}
			if err := p.deleteTree(ctx, e, e.Version); err != nil {
				return err
			}
			p.st.drop(e.Name)
			p.changed = true
		case PhaseUninstallOld, PhaseInstallNew:
			if phase == PhaseInstallNew {
				e.NeedInstall = true // the interrupted install runs again, once
			}
			p.finishUpdate(ctx, e, e.Target, phase)
		case PhaseEnabling:
			e.Phase = PhaseInstalled
			p.setStatus(e, apiv1.ExtensionTransitioning, "Enable", "an interrupted enable runs again")
		case PhaseDisabling, PhaseUninstalling, PhaseDeleting:
			p.removeSteps(ctx, e, phase)
			continue
		default:
			continue
		}
		m.o.Log.Info("recovered an interrupted step", "extension", e.Name, "phase", phase)
		if p.st.Lookup(e.Name) != nil {
			p.st.put(e)
		}
	}
	if p.changed {
		p.st.StatusPending = true
	}
	return p.save()
}

// errNotInstalled is returned for a name the state does not know.
func errNotInstalled(name string) error {
	return errcode.New(CodeNotInstalled, "no extension called %q is installed (arcagent extension list shows what is)", name)
}
