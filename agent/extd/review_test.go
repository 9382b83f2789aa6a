package extd

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/signing"
)

// TestRefusedNameReassigned: a name refused (or failed) for one
// publisher/type and then assigned to another must install and run the new
// one, never touch the tree of the kind it was refused for, and its removal
// must not delete that tree.
func TestRefusedNameReassigned(t *testing.T) {
	e := newEnv(t)
	v1 := e.publish("first", pub, typ, "1.0.0", e.signer)
	e.cp.assign(v1)
	e.pass()
	second := v1
	second.Name = "second"
	e.cp.assign(v1, second)
	e.pass() // refused: one extension of a kind
	e.journalLines()
	other := e.publish("second", pub, "Other", "1.0.0", e.signer)
	e.cp.assign(v1, other)
	e.pass()
	if s := e.cp.lastStatus(t, "second"); s.State != apiv1.ExtensionSucceeded || s.Type != "Other" {
		t.Fatalf("second reassigned to %s.Other: %+v", pub, s)
	}
	st, _ := LoadState(e.l)
	if en := st.Lookup("second"); en == nil || en.Type != "Other" {
		t.Fatalf("the entry of second: %+v", en)
	}
	e.cp.assign(v1)
	e.pass()
	if !e.exists("1.0.0") {
		t.Fatal("removing second deleted the tree of first")
	}
	if _, err := os.Stat(filepath.Join(e.l.ExtensionsDir(), pub+".Other-1.0.0")); !os.IsNotExist(err) {
		t.Fatalf("the tree of second is left after its removal: %v", err)
	}
	if s := e.cp.lastStatus(t, "first"); s.State != apiv1.ExtensionSucceeded {
		t.Fatalf("first: %+v", s)
	}
}

// TestRecoverInterruptedInstallNew: a crash while the new version's
// install command ran (UpdateWithInstall) runs install once more, then
// enable — not install twice.
func TestRecoverInterruptedInstallNew(t *testing.T) {
	e := newEnv(t)
	v1 := e.publish("test", pub, typ, "1.0.0", e.signer)
	e.cp.assign(v1)
	e.pass()
	e.journalLines()
	e.interrupt("test", func(en *Entry) { en.Phase, en.NeedInstall = PhaseInstallNew, true })
	if err := e.m.Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantJournal(t, e, "install 0 1.0.0", "enable 0 1.0.0")
}

// TestHostileNames: a desired state naming an extension "" or twice is
// not applied for that name: the state stays readable and a pass with
// nothing new runs no handler command.
func TestHostileNames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		specs func(e *env) []apiv1.ExtensionSpec
		trees int
	}{
		{"empty", func(e *env) []apiv1.ExtensionSpec {
			return []apiv1.ExtensionSpec{e.publish("", pub, typ, "1.0.0", e.signer)}
		}, 0},
		{"twice", func(e *env) []apiv1.ExtensionSpec {
			return twice(e, "test", "test")
		}, 1},
		{"twice by case", func(e *env) []apiv1.ExtensionSpec {
			return twice(e, "test", "TEST")
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.cp.assign(tc.specs(e)...)
			e.pass()
			if _, err := LoadState(e.l); err != nil {
				t.Fatalf("state after the pass: %v", err)
			}
			if got, _ := os.ReadDir(e.l.ExtensionsDir()); countTrees(got) != tc.trees {
				st, _ := LoadState(e.l)
				for _, en := range st.Extensions {
					t.Logf("%+v", en)
				}
				t.Fatalf("trees installed: %v", got)
			}
			e.journalLines()
			e.pass()
			wantJournal(t, e)
		})
	}
}

// twice assigns one package under two names with different settings.
func twice(e *env, a, b string) []apiv1.ExtensionSpec {
	one := e.publish(a, pub, typ, "1.0.0", e.signer)
	two := one
	two.Name, two.Settings = b, map[string]any{"journal": e.journal, "other": true}
	return []apiv1.ExtensionSpec{one, two}
}

func countTrees(des []os.DirEntry) int {
	n := 0
	for _, d := range des {
		if d.IsDir() && strings.HasPrefix(d.Name(), pub+".") {
			n++
		}
	}
	return n
}

// TestUpdateRollbackKeepsSettings: a failed update re-enables the old
// version with the sequence number of the settings it has, not the one
// written only into the new version's tree.
func TestUpdateRollbackKeepsSettings(t *testing.T) {
	e := newEnv(t)
	v1 := e.publish("test", pub, typ, "1.0.0", e.signer)
	e.cp.assign(v1)
	e.pass()
	e.journalLines()
	v2 := e.publish("test", pub, typ, "1.1.0", e.signer)
	v2.Settings = map[string]any{"journal": e.journal, "fail": "update"}
	e.cp.assign(v2)
	e.pass()
	wantJournal(t, e, "disable 0 1.0.0", "update 1 1.1.0", "enable 0 1.0.0")
	// The report is about the version asked for; 1.0.0 stays installed.
	if s := e.cp.lastStatus(t, "test"); s.State != apiv1.ExtensionFailed || s.Version != "1.1.0" || s.Sequence != 0 || !strings.Contains(s.Message, "1.0.0 stays") {
		t.Fatalf("after the failed update: %+v", s)
	}
	if st, _ := LoadState(e.l); st.Lookup("test").Version != "1.0.0" {
		t.Fatalf("installed version after the failed update: %+v", st.Lookup("test"))
	}
	// Back to the old version with the new settings: they are written.
	v1.Settings = v2.Settings
	e.cp.assign(v1)
	e.m.o.RetryMin = time.Nanosecond
	e.pass()
	wantJournal(t, e, "enable 1 1.0.0")
}

// crashCP stops the pass in the middle of a download, as kill -9 would:
// the goroutine ends (its deferred unlock runs), the state stays as the
// step left it.
type crashCP struct{ *memCP }

func (c crashCP) DownloadPackage(context.Context, string, io.Writer, int64) (int64, error) {
	runtime.Goexit()
	return 0, nil
}

// TestUnmanagedTreeOfTargetLeftAlone: a tree of the version being
// installed that this agent did not extract (no install record) is never
// deleted by the rollback of a failed update or by the recovery of an
// install interrupted during its download.
func TestUnmanagedTreeOfTargetLeftAlone(t *testing.T) {
	plant := func(e *env, version string) string {
		dir := filepath.Join(e.l.ExtensionsDir(), treeName(version))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "keep"), []byte("not ours"), 0o600); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, "keep")
	}
	t.Run("update rollback", func(t *testing.T) {
		e := newEnv(t)
		e.cp.assign(e.publish("test", pub, typ, "1.0.0", e.signer))
		e.pass()
		keep := plant(e, "1.1.0")
		e.cp.assign(e.publish("test", pub, typ, "1.1.0", e.signer))
		e.pass()
		if s := e.cp.lastStatus(t, "test"); s.State != apiv1.ExtensionFailed || s.Version != "1.1.0" || !strings.Contains(s.Message, "1.0.0 stays") {
			t.Fatalf("after the refused update: %+v", s)
		}
		if _, err := os.Stat(keep); err != nil {
			t.Fatalf("the rollback deleted a tree it did not extract: %v", err)
		}
	})
	t.Run("crash during download", func(t *testing.T) {
		e := newEnv(t)
		_ = os.MkdirAll(e.l.ExtensionsDir(), 0o755)
		keep := plant(e, "1.0.0")
		e.cp.assign(e.publish("test", pub, typ, "1.0.0", e.signer))
		d, tag, _ := e.cp.DesiredState(t.Context(), "")
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = e.m.Reconcile(t.Context(), crashCP{e.cp}, d, tag)
		}()
		<-done
		st, _ := LoadState(e.l)
		if en := st.Lookup("test"); en == nil || en.Phase != PhaseDownloading {
			t.Fatalf("the crash left %+v", en)
		}
		if err := e.m.Recover(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(keep); err != nil {
			t.Fatalf("recovery deleted a tree it did not extract: %v", err)
		}
	})
}

// TestInstallLocalNameOfAssignment: a local install whose entry name
// (Publisher.Type) is the name of a control-plane assignment of another
// kind is refused; it replaced that entry and deleted its tree without
// disable or uninstall.
func TestInstallLocalNameOfAssignment(t *testing.T) {
	e := newEnv(t)
	cpSpec := e.publish(pub+".Other", pub, typ, "1.0.0", e.signer)
	e.cp.assign(cpSpec)
	e.pass()
	e.journalLines()
	ctx := t.Context()
	p := signing.Package{Publisher: pub, Type: "Other", Version: "2.0.0"}
	built, err := extensions.BuildPackage(ctx, extensions.BuildOptions{Dir: "testdata/handler", Package: p, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := signing.ParseSigner(e.signer.PrivatePEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := extensions.SignPackage(ctx, built.Path, p, s)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.m.InstallLocal(ctx, LocalInstall{Package: built.Path, Envelope: env, Expect: signing.Expectation{Publisher: pub, Type: "Other", Version: "2.0.0"}})
	if err == nil {
		t.Error("a local install took the name of a control-plane assignment")
	}
	if !e.exists("1.0.0") {
		t.Fatal("the local install deleted the tree of the assigned extension")
	}
	st, _ := LoadState(e.l)
	if en := st.Lookup(pub + ".Other"); en == nil || en.Source != SourceControlPlane || en.Type != typ {
		t.Fatalf("the assignment's entry: %+v", en)
	}
}

// TestAssignmentCaseDiffersFromPackage: an assignment whose publisher/type
// differ in letter case from the signed package's is refused and leaves no
// tree; it left an extracted tree that no entry named, and every retry
// failed with "already installed".
func TestAssignmentCaseDiffersFromPackage(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*apiv1.ExtensionSpec)
	}{
		{"publisher", func(s *apiv1.ExtensionSpec) { s.Publisher = strings.ToLower(s.Publisher) }},
		{"type", func(s *apiv1.ExtensionSpec) { s.Type = strings.ToUpper(s.Type) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			spec := e.publish("test", pub, typ, "1.0.0", e.signer)
			tc.edit(&spec)
			e.cp.assign(spec)
			e.m.o.RetryMin = time.Nanosecond
			for range 2 {
				e.pass()
				if s := e.cp.lastStatus(t, "test"); s.State != apiv1.ExtensionFailed || !contains(s.Message, "letter case") {
					t.Fatalf("status: %+v", s)
				}
				if got, _ := os.ReadDir(e.l.ExtensionsDir()); countTrees(got) != 0 {
					t.Fatalf("trees left: %v", got)
				}
			}
		})
	}
}

// localPackage builds and signs the test handler as pub/type/version.
func (e *env) localPackage(typ, version string) (string, []byte) {
	e.t.Helper()
	ctx := context.Background()
	p := signing.Package{Publisher: pub, Type: typ, Version: version}
	built, err := extensions.BuildPackage(ctx, extensions.BuildOptions{Dir: "testdata/handler", Package: p, OutDir: e.t.TempDir()})
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := signing.ParseSigner(e.signer.PrivatePEM, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	env, _, err := extensions.SignPackage(ctx, built.Path, p, s)
	if err != nil {
		e.t.Fatal(err)
	}
	return built.Path, env
}

// TestInstallLocalReplaceCase: package install --replace of a new version
// with the publisher typed in another letter case replaces the local
// entry and its old tree, rather than adding a second entry of the kind.
func TestInstallLocalReplaceCase(t *testing.T) {
	e := newEnv(t)
	path, env := e.localPackage(typ, "1.0.0")
	if _, err := e.m.InstallLocal(t.Context(), LocalInstall{Package: path, Envelope: env, Expect: expectation()}); err != nil {
		t.Fatal(err)
	}
	path, env = e.localPackage(typ, "2.0.0")
	if _, err := e.m.InstallLocal(t.Context(), LocalInstall{Package: path, Envelope: env, Replace: true,
		Expect: signing.Expectation{Publisher: strings.ToLower(pub), Type: typ, Version: "2.0.0"}}); err != nil {
		t.Fatal(err)
	}
	st, _ := LoadState(e.l)
	if len(st.Extensions) != 1 || st.Extensions[0].Version != "2.0.0" {
		for _, en := range st.Extensions {
			t.Logf("%+v", en)
		}
		t.Fatal("want one local entry at 2.0.0")
	}
	if e.exists("1.0.0") {
		t.Fatal("the replaced version's tree is left")
	}
}

// TestRenamedAssignment: one desired-state change that drops the
// assignment of a kind and adds another name for it (a rename, or the same
// name in another letter case, which the control plane treats as the same
// assignment) ends with the new name installed — not refused as "already
// installed" by the entry the same pass removes, with nothing left to
// retry it.
func TestRenamedAssignment(t *testing.T) {
	for _, tc := range []struct{ from, to string }{{"first", "second"}, {"Test", "test"}} {
		t.Run(tc.from+"→"+tc.to, func(t *testing.T) {
			e := newEnv(t)
			spec := e.publish(tc.from, pub, typ, "1.0.0", e.signer)
			e.cp.assign(spec)
			e.pass()
			spec.Name = tc.to
			e.cp.assign(spec)
			out := e.pass()
			st := e.cp.lastStatus(t, tc.to)
			if st.State != apiv1.ExtensionSucceeded && out.Wake.IsZero() {
				t.Fatalf("%s after the rename, and no retry due: %+v", tc.to, st)
			}
		})
	}
}

// TestAssignmentNamedAsLocalInstall: an assignment whose name is that of
// a local install (Publisher.Type) is reported Failed with the reason; it
// was skipped without any status, so the control plane never heard of it.
func TestAssignmentNamedAsLocalInstall(t *testing.T) {
	e := newEnv(t)
	path, env := e.localPackage(typ, "1.0.0")
	if _, err := e.m.InstallLocal(t.Context(), LocalInstall{Package: path, Envelope: env, Expect: expectation()}); err != nil {
		t.Fatal(err)
	}
	e.cp.assign(e.publish(pub+"."+typ, pub, typ, "1.0.0", e.signer))
	e.pass()
	if s := e.cp.lastStatus(t, pub+"."+typ); s.State != apiv1.ExtensionFailed || !contains(s.Message, "arcagent extension remove") {
		t.Fatalf("status: %+v", s)
	}
	wantJournal(t, e)
}

// TestRecoverUpdateRollbackSettings: an update interrupted after it wrote
// the new settings (next sequence number) into the new tree rolls back to
// the old version, which then gets those settings written before it is
// enabled with that sequence number.
func TestRecoverUpdateRollbackSettings(t *testing.T) {
	e := newEnv(t)
	v1 := e.publish("test", pub, typ, "1.0.0", e.signer)
	e.cp.assign(v1)
	e.pass()
	e.journalLines()
	back := v1
	back.Settings = map[string]any{"journal": e.journal, "message": "new"}
	e.interrupt("test", func(en *Entry) {
		en.Phase, en.Target, en.Sequence, en.SettingsHash = PhaseUpdatingNew, "1.1.0", 1, settingsHash(&back)
	})
	if err := e.m.Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.cp.assign(back) // the update is withdrawn, the new settings stay
	e.pass()
	wantJournal(t, e, "enable 1 1.0.0")
}

// TestFailedRemovalRetried: a removal that could not delete the tree asks
// for a retry (the daemon sleeps until it) and resumes at the deletion,
// without running disable and uninstall again.
func TestFailedRemovalRetried(t *testing.T) {
	e := newEnv(t)
	e.cp.assign(e.publish("test", pub, typ, "1.0.0", e.signer))
	e.pass()
	e.journalLines()
	lock := filepath.Join(extensions.RecordDir(e.l.ExtensionsDir(), treeName("1.0.0"))) + ".lock"
	_ = os.Remove(lock)
	if err := os.Symlink("/nonexistent", lock); err != nil {
		t.Fatal(err)
	}
	e.m.o.RetryMin = time.Millisecond
	e.cp.assign()
	out := e.pass()
	wantJournal(t, e, "disable 0 1.0.0", "uninstall 0 1.0.0")
	if !e.exists("1.0.0") {
		t.Fatal("the planted lock did not stop the deletion")
	}
	if out.Wake.IsZero() {
		t.Error("a failed removal asks for no retry")
	}
	_ = os.Remove(lock)
	time.Sleep(5 * time.Millisecond)
	e.pass()
	wantJournal(t, e)
	if e.exists("1.0.0") {
		t.Fatal("the retried removal left the tree")
	}
}

// TestReassignedDuringFailedRemoval: an assignment that comes back while
// its removal is unfinished (uninstall ran, the tree not yet deleted)
// finishes the removal and installs afresh; it enabled the uninstalled
// tree without install.
func TestReassignedDuringFailedRemoval(t *testing.T) {
	e := newEnv(t)
	spec := e.publish("test", pub, typ, "1.0.0", e.signer)
	e.cp.assign(spec)
	e.pass()
	lock := filepath.Join(extensions.RecordDir(e.l.ExtensionsDir(), treeName("1.0.0"))) + ".lock"
	_ = os.Remove(lock)
	if err := os.Symlink("/nonexistent", lock); err != nil {
		t.Fatal(err)
	}
	e.m.o.RetryMin = time.Millisecond
	e.cp.assign()
	e.pass()
	e.journalLines()
	_ = os.Remove(lock)
	time.Sleep(5 * time.Millisecond)
	e.cp.assign(spec)
	e.pass()
	wantJournal(t, e, "install 0 1.0.0", "enable 0 1.0.0")
	st, _ := LoadState(e.l)
	if en := st.Lookup("test"); en == nil || en.Removing || en.Phase != PhaseEnabled {
		t.Fatalf("entry: %+v", en)
	}
}

// TestRecoverRemovesPartialDownloads: a download cut by kill -9 leaves
// its .part file; recovery deletes it (up to MaxPackage bytes each).
func TestRecoverRemovesPartialDownloads(t *testing.T) {
	e := newEnv(t)
	dir := e.l.ExtDownloadsDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dir, strings.Repeat("a", 64)+".part-123")
	if err := os.WriteFile(part, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An extraction cut off the same way leaves its staging tree.
	staging := filepath.Join(e.l.ExtensionsDir(), extensions.RecordsDirName, "staging-42", "tree")
	if err := os.MkdirAll(staging, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Recover(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(part); !os.IsNotExist(err) {
		t.Fatalf("partial download left: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(staging)); !os.IsNotExist(err) {
		t.Fatalf("extraction staging tree left: %v", err)
	}
}

// TestOversizedStateNotWritten: a desired state whose settings make the
// state file larger than LoadState reads is refused, never written: it
// made state.json unreadable (ARC0150) for the daemon and every local verb.
func TestOversizedStateNotWritten(t *testing.T) {
	e := newEnv(t)
	spec := e.publish("test", pub, typ, "1.0.0", e.signer)
	e.cp.assign(spec)
	e.pass()
	big := make([]any, 3<<20) // 6 MiB as sent, about 30 MiB indented
	for i := range big {
		big[i] = 0
	}
	spec.Settings = map[string]any{"journal": e.journal, "big": big}
	e.cp.assign(spec)
	d, tag, _ := e.cp.DesiredState(t.Context(), "")
	if _, err := e.m.Reconcile(t.Context(), e.cp, d, tag); err == nil {
		t.Error("an oversized state was accepted")
	}
	if _, err := LoadState(e.l); err != nil {
		t.Fatalf("state after an oversized desired state: %v", err)
	}
}

// TestDownloadsPruned: a package refused after its download stays while it
// is assigned (a retry reuses it) and goes once the assignment does.
func TestDownloadsPruned(t *testing.T) {
	e := newEnv(t)
	other, _ := signing.GenerateKey(signing.AlgECDSAP256, nil)
	spec := e.publish("test", pub, typ, "1.0.0", other) // an untrusted key: refused after download
	e.cp.assign(spec)
	e.pass()
	dl := filepath.Join(e.l.ExtDownloadsDir(), spec.PackageSHA256+".zip")
	if _, err := os.Stat(dl); err != nil {
		t.Fatalf("the refused package's download should stay while assigned: %v", err)
	}
	e.cp.assign()
	e.pass()
	if _, err := os.Stat(dl); !os.IsNotExist(err) {
		t.Fatalf("the download of a package no longer assigned is still there: %v", err)
	}
}

// TestTransitioningTimesOut: a handler that reports transitioning for ever
// is re-read until TransitionTimeout, then reported Failed.
func TestTransitioningTimesOut(t *testing.T) {
	e := newEnv(t)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	e.m.o.Now = func() time.Time { return now }
	spec := e.publish("test", pub, typ, "1.0.0", e.signer)
	spec.Settings["status"] = "transitioning"
	e.cp.assign(spec)
	if out := e.pass(); out.Wake.IsZero() {
		t.Fatal("no re-check scheduled for a transitioning handler")
	}
	if s := e.cp.lastStatus(t, "test"); s.State != apiv1.ExtensionTransitioning {
		t.Fatalf("after enable: %+v", s)
	}
	now = now.Add(TransitionTimeout / 2)
	e.pass()
	if s := e.cp.lastStatus(t, "test"); s.State != apiv1.ExtensionTransitioning {
		t.Fatalf("within the timeout: %+v", s)
	}
	now = now.Add(TransitionTimeout)
	out := e.pass()
	if s := e.cp.lastStatus(t, "test"); s.State != apiv1.ExtensionFailed || !strings.Contains(s.Message, "reported transitioning since 2026-12-03T12:00:00Z") {
		t.Fatalf("after the timeout: %+v", s)
	}
	if !out.Wake.IsZero() {
		t.Fatalf("still re-checking after the timeout: %+v", out)
	}
}
