package extd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/signing"
)

// interrupt rewrites the state as a crash in phase would leave it.
func (e *env) interrupt(name string, edit func(*Entry)) {
	e.t.Helper()
	st, err := LoadState(e.l)
	if err != nil {
		e.t.Fatal(err)
	}
	en := st.Lookup(name)
	if en == nil {
		e.t.Fatalf("no entry %s", name)
	}
	edit(en)
	if err := saveState(e.l, st); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) exists(version string) bool {
	_, err := os.Stat(filepath.Join(e.l.ExtensionsDir(), treeName(version)))
	return err == nil
}

// TestRecoverInterruptedInstall: a crash while the install command ran
// leaves a tree that must not look installed: Recover runs uninstall,
// deletes tree and record, and the next pass installs cleanly.
func TestRecoverInterruptedInstall(t *testing.T) {
	e := newEnv(t)
	v1 := e.publish("test", pub, typ, "1.0.0", e.signer)
	e.cp.assign(v1)
	e.pass()
	e.journalLines()
	e.interrupt("test", func(en *Entry) { en.Phase = PhaseInstallCmd })
	if err := e.m.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantJournal(t, e, "uninstall 0 1.0.0")
	if e.exists("1.0.0") {
		t.Fatal("the interrupted install's tree is still there")
	}
	if _, _, err := extensions.ReadInstallRecord(e.l.ExtensionsDir(), treeName("1.0.0")); err == nil {
		t.Fatal("the interrupted install's record is still there")
	}
	st, _ := LoadState(e.l)
	if st.Lookup("test") != nil || !st.StatusPending {
		t.Fatalf("state after recovery: %+v", st)
	}
	e.pass()
	wantJournal(t, e, "install 0 1.0.0", "enable 0 1.0.0")
	if s := e.cp.lastStatus(t, "test"); s.State != apiv1.ExtensionSucceeded {
		t.Fatalf("after recovery: %+v", s)
	}
}

// TestRecoverInterruptedUpdate: before the old version was uninstalled an
// update rolls back to it; after, it rolls forward.
func TestRecoverInterruptedUpdate(t *testing.T) {
	for _, tc := range []struct {
		phase   string
		journal []string // Recover, then the next pass
		old     bool     // old tree left after the pass
	}{
		{PhaseUpdatingNew, []string{"disable 0 1.0.0", "update 0 1.1.0", "uninstall 0 1.0.0", "install 0 1.1.0", "enable 0 1.1.0"}, false},
		{PhaseUninstallOld, []string{"uninstall 0 1.0.0", "install 0 1.1.0", "enable 0 1.1.0"}, false},
	} {
		t.Run(tc.phase, func(t *testing.T) {
			e := newEnv(t)
			v1 := e.publish("test", pub, typ, "1.0.0", e.signer)
			e.cp.assign(v1)
			e.pass()
			// The new version's tree extracted, as the update had done.
			v2 := e.publish("test", pub, typ, "1.1.0", e.signer)
			p := &pass{m: e.m, st: &State{}, cp: e.cp}
			path, env, err := p.download(context.Background(), &v2)
			if err != nil {
				t.Fatal(err)
			}
			en := &Entry{Name: "test", Publisher: pub, Type: typ}
			if err := p.extract(context.Background(), en, &v2, path, env); err != nil {
				t.Fatal(err)
			}
			if err := p.writeSettings(en, "1.1.0", &v2); err != nil {
				t.Fatal(err)
			}
			e.journalLines()
			e.interrupt("test", func(en *Entry) { en.Phase, en.Target = tc.phase, "1.1.0" })
			e.cp.assign(v2)
			if err := e.m.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			e.pass()
			wantJournal(t, e, tc.journal...)
			if e.exists("1.0.0") != tc.old || !e.exists("1.1.0") {
				t.Fatalf("trees after recovery: 1.0.0 %v, 1.1.0 %v", e.exists("1.0.0"), e.exists("1.1.0"))
			}
			if s := e.cp.lastStatus(t, "test"); s.State != apiv1.ExtensionSucceeded || s.Version != "1.1.0" {
				t.Fatalf("after recovery: %+v", s)
			}
		})
	}
}

// TestStatusQueuedWhileUnreachable: with the control plane down the
// extension keeps its state and the report waits; it is sent once the
// control plane answers.
func TestStatusQueuedWhileUnreachable(t *testing.T) {
	e := newEnv(t)
	v1 := e.publish("test", pub, typ, "1.0.0", e.signer)
	e.cp.assign(v1)
	e.pass()
	e.journalLines()
	n := len(e.cp.statuses)
	e.cp.down = true
	// A local change while offline: the extension is removed on the machine.
	if _, err := e.m.Remove(context.Background(), []string{"test"}, false); err != nil {
		t.Fatal(err)
	}
	out, err := e.m.Reconcile(context.Background(), e.cp, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if !out.Pending || len(e.cp.statuses) != n {
		t.Fatalf("offline pass: %+v, %d reports", out, len(e.cp.statuses))
	}
	st, _ := LoadState(e.l)
	if !st.StatusPending {
		t.Fatal("the pending report is not persisted")
	}
	e.cp.down = false
	if out, err = e.m.Reconcile(context.Background(), e.cp, nil, ""); err != nil || out.Pending {
		t.Fatalf("back online: %+v %v", out, err)
	}
	if len(e.cp.statuses) == n {
		t.Fatal("the queued report was not sent")
	}
}

// TestFailureBackoff: a failing enable is reported with the handler's
// output and retried only after the backoff; the fix is applied then.
func TestFailureBackoff(t *testing.T) {
	e := newEnv(t)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	e.m.o.Now = func() time.Time { return now }
	v1 := e.publish("test", pub, typ, "1.0.0", e.signer)
	v1.Settings["fail"] = "enable"
	e.cp.assign(v1)
	out := e.pass()
	wantJournal(t, e, "install 0 1.0.0", "enable 0 1.0.0")
	s := e.cp.lastStatus(t, "test")
	if s.State != apiv1.ExtensionFailed || !contains(s.Message, "told to fail enable") || !contains(s.Message, "ARC0130") {
		t.Fatalf("failed enable: %+v", s)
	}
	if out.Wake.IsZero() || !out.Wake.After(now) {
		t.Fatalf("no retry scheduled: %+v", out)
	}
	e.pass()
	wantJournal(t, e) // within the backoff: nothing runs
	now = out.Wake
	e.pass()
	wantJournal(t, e, "enable 0 1.0.0")
	if !e.exists("1.0.0") {
		t.Fatal("a failed enable removed the tree")
	}
}

// TestInstallLocalChecksPolicy: package install goes through the same
// path: refused by local policy before anything is written.
func TestInstallLocalChecksPolicy(t *testing.T) {
	e := newEnv(t)
	e.config(map[string]any{"extensions.allowlist": []string{"Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"}})
	_, err := e.m.InstallLocal(context.Background(), LocalInstall{Package: "/nonexistent.zip", Expect: expectation()})
	if err == nil || !contains(err.Error(), "not listed in extensions.allowlist") {
		t.Fatalf("InstallLocal = %v", err)
	}
	if got := e.extensionsDirEntries(); len(got) != 0 {
		t.Fatalf("written: %v", got)
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"schema":"` + StateV1 + `","extensions":[{"name":"a","source":"controlplane","publisher":"P","type":"T","version":"1","phase":"Enabled","sequence":0,"status":{"name":"a","state":"Succeeded"}}]}`))
	f.Add([]byte(`{"schema":"` + StateV1 + `","extensions":[null]}`))
	f.Add([]byte(`{"schema":"x"}`))
	f.Add([]byte(`{"schema":"` + StateV1 + `","extensions":[],"extensions":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseState(data)
		if err != nil {
			return
		}
		for _, e := range st.Extensions {
			if e == nil || e.Name == "" {
				t.Fatalf("accepted an entry without a name: %q", data)
			}
		}
	})
}

// TestRemoveUnmanagedTree: `extension remove` also removes a tree this
// agent did not install (the audit's ARC-EX-004 advice).
func TestRemoveUnmanagedTree(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.l.ExtensionsDir(), treeName("0.9.0"))
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"HandlerManifest.json", "bin/handler.sh"} {
		b, _ := os.ReadFile(filepath.Join("testdata/handler", f))
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := List(e.m)
	if err != nil || len(rows) != 1 || rows[0].Source != SourceUnmanaged {
		t.Fatalf("List = %+v, %v", rows, err)
	}
	removed, err := e.m.Remove(context.Background(), []string{treeName("0.9.0")}, false)
	if err != nil || len(removed) != 1 {
		t.Fatalf("Remove = %v, %v", removed, err)
	}
	e.journal = filepath.Join(e.l.ExtensionsDir(), "journal") // no settings: the handler's default
	wantJournal(t, e, "disable 0 0.9.0", "uninstall 0 0.9.0")
	if e.exists("0.9.0") {
		t.Fatal("the unmanaged tree is still there")
	}
	if _, err := e.m.Remove(context.Background(), []string{"nothing"}, false); !errorsIs(err, CodeNotInstalled) {
		t.Fatalf("Remove of an unknown name = %v", err)
	}
}

// TestOneExtensionOfAKind: a second assignment of an installed
// publisher/type under another name is refused, the first one untouched.
func TestOneExtensionOfAKind(t *testing.T) {
	e := newEnv(t)
	v1 := e.publish("first", pub, typ, "1.0.0", e.signer)
	e.cp.assign(v1)
	e.pass()
	e.journalLines()
	second := v1
	second.Name = "second"
	e.cp.assign(v1, second)
	e.pass()
	wantJournal(t, e)
	if s := e.cp.lastStatus(t, "second"); s.State != apiv1.ExtensionFailed || !contains(s.Message, `as "first"`) {
		t.Fatalf("second: %+v", s)
	}
	if s := e.cp.lastStatus(t, "first"); s.State != apiv1.ExtensionSucceeded {
		t.Fatalf("first: %+v", s)
	}
	// Removing the refused one leaves the installed tree alone.
	e.cp.assign(v1)
	e.pass()
	wantJournal(t, e)
	if !e.exists("1.0.0") {
		t.Fatal("removing the refused assignment deleted the installed tree")
	}
}

// FuzzValidSpec: whatever a control plane sends, an accepted spec names a
// package whose tree is one plain path element under the extensions
// directory.
func FuzzValidSpec(f *testing.F) {
	for _, s := range []string{
		`{"name":"a","publisher":"Contoso.Test","type":"Handler","version":"1.0.0","packageSha256":"` + strings.Repeat("a", 64) + `"}`,
		`{"name":"a","publisher":"..","type":"x","version":"1","packageSha256":"` + strings.Repeat("0", 64) + `"}`,
		`{"name":"a","publisher":"a/b","type":"../x","version":"1/2","packageSha256":"zz"}`,
		`{"name":"a","publisher":"P","type":"T","version":"1","packageSha256":"` + strings.Repeat("A", 64) + `","packageSize":-1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var spec apiv1.ExtensionSpec
		if json.Unmarshal(data, &spec) != nil || validSpec(&spec) != nil {
			return
		}
		name := signing.Package{Publisher: spec.Publisher, Type: spec.Type, Version: spec.Version}.Name()
		if name != filepath.Base(name) || name == ".." || name == "." || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") {
			t.Fatalf("accepted a spec whose tree name %q is not one plain path element", name)
		}
		if !digestRE().MatchString(spec.PackageSHA256) || strings.ContainsAny(spec.PackageSHA256, "/.") {
			t.Fatalf("accepted digest %q", spec.PackageSHA256)
		}
	})
}
