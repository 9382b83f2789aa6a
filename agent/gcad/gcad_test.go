package gcad

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/arcagent/arcagent/agent/guestconfig"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/signing"
)

const weakSSHD = "PermitRootLogin yes\nPasswordAuthentication yes\n"
const goodSSHD = "PermitRootLogin no\nPasswordAuthentication no\n"

func TestAuditChangesNothing(t *testing.T) {
	w := newWorld(t)
	w.cp.assign(w.publish("ssh", pub, "1.0.0", baseline, "Audit", w.signer))
	before := hashTree(t, filepath.Join(w.root, "etc"))
	out := w.pass(true)
	if out.Evaluated != 1 || out.Pending {
		t.Fatalf("outcome %+v", out)
	}
	sameTree(t, before, hashTree(t, filepath.Join(w.root, "etc")))
	ms, s := w.cp.last(t, "ssh")
	if s.Compliance != guestconfig.NonCompliant || s.Applied || s.Mode != "Audit" || s.Policy != pub+"."+name {
		t.Fatalf("status %+v", s)
	}
	if r := resourceOf(t, s, "shadow-mode"); r.Compliance != guestconfig.NonCompliant || r.Reason != "/etc/shadow: mode is 0644, want at most 0640" || r.Evidence["mode"] != "0644" || r.Type != "file" {
		t.Errorf("shadow-mode: %+v", r)
	}
	if r := resourceOf(t, s, "sshd-config"); r.Compliance != guestconfig.NonCompliant || !contains(r.Reason, "content differs") {
		t.Errorf("sshd-config: %+v", r)
	}
	if ms.Extensions != nil {
		t.Errorf("the report carries an extensions section (would clear extd's): %+v", ms.Extensions)
	}
	// The world has no cgroup hierarchy: the CPU limit cannot be applied.
	if len(ms.Services) != 1 || ms.Services[0].Name != "gcad" || ms.Services[0].State != "Degraded" || !contains(ms.Services[0].Message, "CPU limit not applied") {
		t.Errorf("services %+v", ms.Services)
	}
	// No backup directory for an Audit assignment: it could not write.
	if _, err := os.Stat(filepath.Join(w.l.GCBackupsDir(), "ssh")); !os.IsNotExist(err) {
		t.Errorf("Audit made a backup directory: %v", err)
	}
	for _, p := range []string{StatePath(w.l), ReportPath(w.l, "ssh")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600", p, fi.Mode().Perm())
		}
	}
	rep, err := ReadReport(w.l, "ssh")
	if err != nil || rep.Compliance != guestconfig.NonCompliant || len(rep.Resources) != 2 {
		t.Fatalf("report %+v %v", rep, err)
	}
}

func TestAutoCorrect(t *testing.T) {
	w := newWorld(t)
	w.cp.assign(w.publish("ssh", pub, "1.0.0", baseline, "ApplyAndAutoCorrect", w.signer))
	w.pass(true)
	_, s := w.cp.last(t, "ssh")
	if s.Compliance != guestconfig.Compliant || !s.Applied {
		t.Fatalf("status %+v", s)
	}
	if r := resourceOf(t, s, "sshd-config"); !r.Changed {
		t.Errorf("sshd-config not reported changed: %+v", r)
	}
	if got := w.read("etc/ssh/sshd_config"); got != goodSSHD {
		t.Fatalf("sshd_config = %q", got)
	}
	if m := w.mode("etc/shadow"); m != 0o640 {
		t.Fatalf("shadow mode %v", m)
	}
	// The previous file is kept under the assignment's backups.
	found := false
	_ = filepath.Walk(filepath.Join(w.l.GCBackupsDir(), "ssh"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && filepath.Base(p) == "sshd_config" {
			b, _ := os.ReadFile(p)
			found = string(b) == weakSSHD
		}
		return nil
	})
	if !found {
		t.Error("no backup of the previous sshd_config")
	}
	// Drift is corrected at the next pass.
	if err := os.WriteFile(filepath.Join(w.root, "etc/ssh/sshd_config"), []byte(weakSSHD), 0o644); err != nil {
		t.Fatal(err)
	}
	w.pass(true)
	if got := w.read("etc/ssh/sshd_config"); got != goodSSHD {
		t.Fatalf("drift not corrected: %q", got)
	}
	_, s = w.cp.last(t, "ssh")
	if r := resourceOf(t, s, "sshd-config"); !r.Changed || r.Compliance != guestconfig.Compliant || !contains(r.Reason, "corrected") {
		t.Errorf("sshd-config after drift: %+v", r)
	}
}

func TestApplyAndMonitor(t *testing.T) {
	w := newWorld(t)
	a := w.publish("ssh", pub, "1.0.0", baseline, "ApplyAndMonitor", w.signer)
	w.cp.assign(a)
	w.pass(true)
	if _, s := w.cp.last(t, "ssh"); s.Compliance != guestconfig.Compliant || !s.Applied {
		t.Fatalf("first pass %+v", s)
	}
	if got := w.read("etc/ssh/sshd_config"); got != goodSSHD {
		t.Fatalf("not applied: %q", got)
	}
	// Drift is reported, not corrected, in every later pass.
	if err := os.WriteFile(filepath.Join(w.root, "etc/ssh/sshd_config"), []byte(weakSSHD), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		w.pass(true)
		_, s := w.cp.last(t, "ssh")
		if s.Compliance != guestconfig.NonCompliant || s.Applied {
			t.Fatalf("drift pass %+v", s)
		}
		if r := resourceOf(t, s, "sshd-config"); r.Changed || r.Compliance != guestconfig.NonCompliant {
			t.Fatalf("drift pass resource %+v", r)
		}
		if got := w.read("etc/ssh/sshd_config"); got != weakSSHD {
			t.Fatalf("drift corrected in monitor mode: %q", got)
		}
	}
	// Changed parameters are a new assignment: applied once again.
	a.Parameters = map[string]string{"rootLogin": "prohibit-password"}
	w.cp.assign(a)
	w.pass(false)
	if got := w.read("etc/ssh/sshd_config"); got != "PermitRootLogin prohibit-password\nPasswordAuthentication no\n" {
		t.Fatalf("new parameters not applied: %q", got)
	}
	// A restart keeps what was applied: still monitoring.
	w.d = New(w.d.o)
	if err := os.WriteFile(filepath.Join(w.root, "etc/ssh/sshd_config"), []byte(weakSSHD), 0o644); err != nil {
		t.Fatal(err)
	}
	w.pass(true)
	if got := w.read("etc/ssh/sshd_config"); got != weakSSHD {
		t.Fatalf("applied again after a restart: %q", got)
	}
}

func TestDisabledTouchesNothing(t *testing.T) {
	for _, cfg := range []map[string]any{
		{"guestconfiguration.enabled": false},
		{"config.mode": "monitor"},
	} {
		w := newWorld(t)
		w.config(cfg)
		w.cp.assign(w.publish("ssh", pub, "1.0.0", baseline, "ApplyAndAutoCorrect", w.signer))
		before := hashTree(t, filepath.Join(w.root, "etc"))
		w.pass(true)
		sameTree(t, before, hashTree(t, filepath.Join(w.root, "etc")))
		ms, s := w.cp.last(t, "ssh")
		if s.Compliance != guestconfig.NotApplied || s.Message != DisabledMessage || len(s.Resources) != 0 {
			t.Fatalf("%v: status %+v", cfg, s)
		}
		if ms.Services[0].State != "Disabled" {
			t.Errorf("%v: service %+v", cfg, ms.Services)
		}
		if w.cp.downloads != 0 {
			t.Errorf("%v: %d downloads while disabled", cfg, w.cp.downloads)
		}
		// Re-enabled: evaluated and applied at the next pass.
		w.config(map[string]any{})
		w.pass(true)
		if _, s := w.cp.last(t, "ssh"); s.Compliance != guestconfig.Compliant {
			t.Fatalf("%v: re-enabled %+v", cfg, s)
		}
	}
}

func TestRefusedPackages(t *testing.T) {
	other, err := signing.GenerateKey(signing.AlgECDSAP256, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		publisher string
		signer    func(*world) *signing.KeyPair
		doc       string
		want      string
	}{
		{"unsigned", pub, func(*world) *signing.KeyPair { return nil }, baseline, "ARC0161"},
		{"untrusted key", pub, func(*world) *signing.KeyPair { return other }, baseline, "ARC0161"},
		{"publisher not allowed for the key", "Fabrikam.Other", func(w *world) *signing.KeyPair { return w.signer }, baseline, "ARC0161"},
		{"malformed document", pub, func(w *world) *signing.KeyPair { return w.signer }, "apiVersion: nope\nname: SSH\nversion: 1.0.0\n", "apiVersion"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.cp.assign(w.publish("ssh", tc.publisher, "1.0.0", tc.doc, "ApplyAndAutoCorrect", tc.signer(w)))
			before := hashTree(t, filepath.Join(w.root, "etc"))
			w.pass(true)
			sameTree(t, before, hashTree(t, filepath.Join(w.root, "etc")))
			_, s := w.cp.last(t, "ssh")
			if s.Compliance != guestconfig.NotApplied || !contains(s.Message, tc.want) {
				t.Fatalf("status %+v, want NotApplied with %s", s, tc.want)
			}
		})
	}
}

func TestPathLeavingRootRefused(t *testing.T) {
	w := newWorld(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "target"), []byte("outside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(w.root, "etc/escape")); err != nil {
		t.Fatal(err)
	}
	doc := `apiVersion: arcagent.dev/guestconfig/v1
name: SSH
version: 1.0.0
resources:
  - id: sshd-config
    file:
      path: /etc/ssh/sshd_config
      content: "PermitRootLogin no\n"
  - id: escape
    file:
      path: /etc/escape/target
      content: "owned\n"
`
	w.cp.assign(w.publish("ssh", pub, "1.0.0", doc, "ApplyAndAutoCorrect", w.signer))
	before, beforeOut := hashTree(t, filepath.Join(w.root, "etc")), hashTree(t, outside)
	w.pass(true)
	sameTree(t, before, hashTree(t, filepath.Join(w.root, "etc")))
	sameTree(t, beforeOut, hashTree(t, outside))
	_, s := w.cp.last(t, "ssh")
	if s.Compliance != guestconfig.Error || !contains(s.Message, "ARC0173") || !contains(s.Message, "escape") || s.Applied {
		t.Fatalf("status %+v", s)
	}
	if r := resourceOf(t, s, "escape"); r.Compliance != guestconfig.Error || !contains(r.Reason, "outside the target root") {
		t.Fatalf("escape resource %+v", r)
	}
}

func TestDueAndRemoved(t *testing.T) {
	w := newWorld(t)
	w.cp.assign(w.publish("ssh", pub, "1.0.0", baseline, "Audit", w.signer))
	if out := w.pass(false); out.Evaluated != 1 || out.Next.IsZero() {
		t.Fatalf("first %+v", out)
	}
	n := len(w.cp.statuses)
	if out := w.pass(false); out.Evaluated != 0 {
		t.Fatalf("an unchanged assignment was evaluated before its interval: %+v", out)
	}
	if len(w.cp.statuses) != n {
		t.Error("a status was sent after a pass that did nothing")
	}
	// Removed: state and report dropped, nothing un-applied.
	w.cp.assign()
	w.pass(false)
	ms := w.cp.statuses[len(w.cp.statuses)-1]
	if ms.GuestConfiguration == nil || len(ms.GuestConfiguration) != 0 {
		t.Fatalf("after removal the report is %+v, want an empty list", ms.GuestConfiguration)
	}
	st, err := LoadState(w.l)
	if err != nil || len(st.Assignments) != 0 {
		t.Fatalf("state %+v %v", st, err)
	}
	if _, err := os.Stat(ReportPath(w.l, "ssh")); !os.IsNotExist(err) {
		t.Errorf("report kept: %v", err)
	}
	if ents, _ := os.ReadDir(w.l.GCPackagesDir()); len(ents) != 0 {
		t.Errorf("packages kept: %v", ents)
	}
}

func TestOffline(t *testing.T) {
	w := newWorld(t)
	w.cp.assign(w.publish("ssh", pub, "1.0.0", baseline, "ApplyAndAutoCorrect", w.signer))
	w.pass(true)
	if err := os.WriteFile(filepath.Join(w.root, "etc/ssh/sshd_config"), []byte(weakSSHD), 0o644); err != nil {
		t.Fatal(err)
	}
	w.cp.setDown(true)
	n := len(w.cp.statuses)
	out := w.pass(true) // the kept package is evaluated again
	if !out.Pending {
		t.Fatalf("no report pending while offline: %+v", out)
	}
	if got := w.read("etc/ssh/sshd_config"); got != goodSSHD {
		t.Fatalf("not corrected offline: %q", got)
	}
	w.cp.setDown(false)
	out, err := w.d.Pass(context.Background(), w.cp, nil, "", PassOptions{})
	if err != nil || out.Pending || len(w.cp.statuses) != n+1 {
		t.Fatalf("back online: %+v %v (%d reports)", out, err, len(w.cp.statuses)-n)
	}
	if _, s := w.cp.last(t, "ssh"); !resourceOf(t, s, "sshd-config").Changed {
		t.Errorf("the report sent later is not the offline pass's: %+v", s)
	}
}

func TestRunOnce(t *testing.T) {
	w := newWorld(t)
	w.cp.assign(w.publish("ssh", pub, "1.0.0", baseline, "Audit", w.signer))
	var outs []Outcome
	err := w.d.Run(context.Background(), ServiceOptions{Once: true, Connect: func() (ControlPlane, error) { return w.cp, nil },
		Passed: func(o Outcome, _ error) { outs = append(outs, o) }})
	if err != nil || len(outs) != 1 || outs[0].Evaluated != 1 {
		t.Fatalf("once: %v %+v", err, outs)
	}
	if _, s := w.cp.last(t, "ssh"); s.Compliance != guestconfig.NonCompliant {
		t.Fatalf("status %+v", s)
	}
}

func TestInvalidAssignments(t *testing.T) {
	good := apiv1.GuestConfigurationAssignment{Name: "a", Policy: "Contoso.SSH", Version: "1.0.0", Mode: "Audit", PackageSHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	tests := []struct {
		name string
		mod  func(*apiv1.GuestConfigurationAssignment)
		ok   bool
	}{
		{"good", func(*apiv1.GuestConfigurationAssignment) {}, true},
		{"name with slash", func(a *apiv1.GuestConfigurationAssignment) { a.Name = "../x" }, false},
		{"policy without publisher", func(a *apiv1.GuestConfigurationAssignment) { a.Policy = "SSH" }, false},
		{"bad mode", func(a *apiv1.GuestConfigurationAssignment) { a.Mode = "Enforce" }, false},
		{"no digest", func(a *apiv1.GuestConfigurationAssignment) { a.PackageSHA256 = "" }, false},
		{"bad version", func(a *apiv1.GuestConfigurationAssignment) { a.Version = "latest" }, false},
	}
	for _, tc := range tests {
		a := good
		tc.mod(&a)
		_, _, err := validAssignment(&a)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.name, err)
		}
	}
	a, b := good, good
	b.Parameters = map[string]string{"x": "1"}
	if Fingerprint(&a) == Fingerprint(&b) {
		t.Error("parameters do not change the fingerprint")
	}
}

func TestBound(t *testing.T) {
	long := make([]byte, 5000)
	for i := range long {
		long[i] = 'x'
	}
	ev := map[string]string{"bad": "a\x00b\xffc", "long": string(long)}
	for i := range 40 {
		ev["k"+string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
	}
	in := []apiv1.GuestConfigurationStatus{{Name: "a", Compliance: "Error", Message: string(long) + "\x01",
		Resources: []apiv1.GuestConfigurationResourceStatus{{ID: "r", Type: "file", Compliance: "Error", Reason: "line\nnext\ttab\x07", Evidence: ev}}}}
	out := bound(in)[0]
	if len(out.Message) > maxMessage || contains(out.Message, "\x01") {
		t.Errorf("message %d bytes", len(out.Message))
	}
	r := out.Resources[0]
	if r.Reason != "line\nnext\ttab?" {
		t.Errorf("reason %q", r.Reason)
	}
	if len(r.Evidence) != maxEvidence || r.Evidence["bad"] != "a?b?c" || len(r.Evidence["kaa"]) == 0 {
		t.Errorf("evidence %d entries, bad=%q", len(r.Evidence), r.Evidence["bad"])
	}
	if v := r.Evidence["long"]; v != "" && len(v) > maxEvidenceValue {
		t.Errorf("long evidence %d bytes", len(v))
	}
	many := make([]apiv1.GuestConfigurationResourceStatus, 3000)
	for i := range many {
		many[i] = apiv1.GuestConfigurationResourceStatus{ID: "r", Type: "file", Compliance: "Compliant"}
	}
	got := bound([]apiv1.GuestConfigurationStatus{{Name: "a", Compliance: "Compliant", Resources: many}, {Name: "b", Compliance: "Compliant", Resources: many}})
	if len(got[0].Resources) != 3000 || got[1].Resources != nil || !contains(got[1].Message, "left out") {
		t.Errorf("resource bound: %d, %v, %q", len(got[0].Resources), got[1].Resources == nil, got[1].Message)
	}
	// The input is not changed (the state keeps everything).
	if len(in[0].Resources[0].Evidence) != len(ev) {
		t.Error("bound changed its input")
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "plain", "a\x00b", "\xff\xfe", "line\nbreak", "ünïcödé…"} {
		f.Add(s, 16, true)
	}
	f.Fuzz(func(t *testing.T, s string, max int, lines bool) {
		if max < 8 || max > 1<<16 {
			return
		}
		out := clean(s, max, lines)
		if len(out) > max || !utf8.ValidString(out) {
			t.Fatalf("clean(%q, %d) = %q", s, max, out)
		}
		for _, r := range out {
			if !unicode.IsPrint(r) && (!lines || (r != '\n' && r != '\t' && r != '\r')) {
				t.Fatalf("clean(%q) kept %q", s, r)
			}
		}
	})
}

func TestKeptPackageVerifiedAtEachLoad(t *testing.T) {
	w := newWorld(t)
	a := w.publish("ssh", pub, "1.0.0", baseline, "Audit", w.signer)
	w.cp.assign(a)
	w.pass(true)
	sig := filepath.Join(w.l.GCPackagesDir(), a.PackageSHA256+".sig.json")
	if _, err := os.Stat(sig); err != nil {
		t.Fatalf("signature not kept: %v", err)
	}
	// Offline, the kept copy is evaluated; a stripped signature refuses it.
	w.cp.setDown(true)
	w.pass(true)
	st, _ := LoadState(w.l)
	if c := st.Lookup("ssh").Status.Compliance; c != guestconfig.NonCompliant {
		t.Fatalf("offline evaluation of the kept package: %s", c)
	}
	if err := os.WriteFile(sig, []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	w.pass(true)
	st, _ = LoadState(w.l)
	if s := st.Lookup("ssh").Status; s.Compliance != guestconfig.NotApplied || !contains(s.Message, "ARC0161") {
		t.Fatalf("stripped signature: %+v", s)
	}
	// Back online, the package is downloaded again and verifies.
	w.cp.setDown(false)
	w.pass(true)
	if _, s := w.cp.last(t, "ssh"); s.Compliance != guestconfig.NonCompliant {
		t.Fatalf("after a new download: %+v", s)
	}
}

// TestRunLoop: the daemon loop evaluates a new assignment at once, leaves
// an unchanged one alone until its interval, and evaluates everything
// again when localconfig.json changes or a poke brings a changed one.
func TestRunLoop(t *testing.T) {
	w := newWorld(t)
	a := w.publish("ssh", pub, "1.0.0", baseline, "Audit", w.signer)
	w.cp.assign(a)
	passes := make(chan Outcome, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- w.d.Run(ctx, ServiceOptions{Interval: time.Hour, Poll: time.Hour, ConfigEvery: 20 * time.Millisecond,
			Connect: func() (ControlPlane, error) { return w.cp, nil }, Passed: func(o Outcome, _ error) { passes <- o }})
	}()
	next := func(what string) Outcome {
		t.Helper()
		select {
		case o := <-passes:
			return o
		case <-time.After(20 * time.Second):
			t.Fatalf("no pass: %s", what)
		}
		return Outcome{}
	}
	if o := next("start"); o.Evaluated != 1 {
		t.Fatalf("first pass %+v", o)
	}
	select {
	case o := <-passes:
		t.Fatalf("a pass without a change: %+v", o)
	case <-time.After(200 * time.Millisecond):
	}
	w.config(map[string]any{"guestconfiguration.agent.cpulimit": 10})
	if o := next("localconfig.json changed"); o.Evaluated != 1 {
		t.Fatalf("after a config change %+v", o)
	}
	a.Mode = "ApplyAndAutoCorrect"
	w.cp.assign(a)
	w.d.Poke()
	if o := next("poke"); o.Evaluated != 1 {
		t.Fatalf("after a poke %+v", o)
	}
	if got := w.read("etc/ssh/sshd_config"); got != goodSSHD {
		t.Fatalf("the changed assignment was not applied: %q", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBackupsPruned(t *testing.T) {
	w := newWorld(t)
	w.cp.assign(w.publish("ssh", pub, "1.0.0", baseline, "ApplyAndAutoCorrect", w.signer))
	for range KeepBackups + 3 {
		if err := os.WriteFile(filepath.Join(w.root, "etc/ssh/sshd_config"), []byte(weakSSHD), 0o644); err != nil {
			t.Fatal(err)
		}
		w.pass(true)
	}
	ents, err := os.ReadDir(filepath.Join(w.l.GCBackupsDir(), "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != KeepBackups {
		t.Fatalf("%d backup directories kept, want %d", len(ents), KeepBackups)
	}
}
