package extd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/arcagent/arcagent/controlplane/apiv1"
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
