//go:build !windows

package main

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/gcad"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/signing"
)

// gcWorld is a real arcserver, a connected machine root with a weak
// sshd_config and a world-readable /etc/shadow, a fleet login and a
// signing key the machine trusts for gcPublisher.
type gcWorld struct {
	t         testing.TB
	bin, tmp  string
	root      string
	cp        *controlPlane
	l         layout.Layout
	machineID string
}

const (
	gcPublisher = "Contoso.Baseline"
	gcWeakSSHD  = "# managed by hand\nPermitRootLogin yes\nPasswordAuthentication yes\nX11Forwarding yes\n"
)

// gcBaseline: /etc/shadow at most 0640 (file), PermitRootLogin and
// PasswordAuthentication of sshd_config (keyvalue), /etc/issue.net
// pinned (file).
const gcBaseline = `apiVersion: arcagent.dev/guestconfig/v1
name: SSH
version: VERSION
parameters:
  - name: rootLogin
    default: "no"
resources:
  - id: shadow-mode
    title: /etc/shadow is not world-readable
    severity: high
    file:
      path: /etc/shadow
      maxMode: "0640"
  - id: sshd-root-login
    title: sshd refuses root logins
    keyvalue:
      path: /etc/ssh/sshd_config
      key: PermitRootLogin
      value: ${rootLogin}
      stopAt: Match
  - id: sshd-passwords
    keyvalue:
      path: /etc/ssh/sshd_config
      key: PasswordAuthentication
      value: "no"
      stopAt: Match
  - id: issue-net
    file:
      path: /etc/issue.net
      content: "Authorised use only.\n"
      mode: "0644"
`

func newGCWorld(t *testing.T) *gcWorld {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	w := &gcWorld{t: t, bin: buildArcagent(t), tmp: worldTraversableTemp(t)}
	w.cp = startControlPlane(t, w.tmp)
	rg, secret := w.cp.onboarding(t, 1)
	w.root = filepath.Join(w.tmp, "machine")
	w.l = layout.New(w.root)
	ca := filepath.Join(w.tmp, "ca.crt")
	if err := os.WriteFile(ca, w.cp.ca, 0o644); err != nil {
		t.Fatal(err)
	}
	w.ok("connect", "--root", w.root, "--server", w.cp.url(), "--onboarding-token", secret, "--resource-group", rg, "--ca-file", ca, "--name", "web01")
	t.Setenv("ARCAGENT_FLEET_CONFIG", filepath.Join(w.tmp, "fleet.json"))
	w.ok("fleet", "login", "--server", w.cp.url(), "--ca-file", ca, "--token", w.cp.owner)
	for _, k := range []string{"contoso", "mallory"} {
		w.ok("package", "keygen", "--out", filepath.Join(w.tmp, k))
	}
	w.ok("trust", "add", "--root", w.root, "contoso", "--key", filepath.Join(w.tmp, "contoso.pub"), "--publisher", gcPublisher)
	cfg, err := himds.LoadAgentConfig(w.l)
	if err != nil || cfg == nil {
		t.Fatalf("registration: %v", err)
	}
	w.machineID = cfg.MachineID
	for p, c := range map[string]string{
		"etc/passwd":          "root:x:0:0:root:/root:/bin/bash\nsshd:x:105:65534::/run/sshd:/usr/sbin/nologin\n",
		"etc/group":           "root:x:0:\nshadow:x:42:\n",
		"etc/shadow":          "root:$6$salt$hash:19000:0:99999:7:::\n",
		"etc/ssh/sshd_config": gcWeakSSHD,
		"etc/issue.net":       "Debian GNU/Linux\n",
	} {
		w.write(p, c, 0o644)
	}
	return w
}

func (w *gcWorld) ok(args ...string) string {
	w.t.Helper()
	out, stderr, code := runBin(w.t, w.bin, args...)
	if code != 0 {
		w.t.Fatalf("arcagent %s: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

func (w *gcWorld) write(p, content string, mode fs.FileMode) {
	w.t.Helper()
	full := filepath.Join(w.root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Chmod(full, mode); err != nil {
		w.t.Fatal(err)
	}
}

func (w *gcWorld) read(p string) string {
	w.t.Helper()
	b, err := os.ReadFile(filepath.Join(w.root, p))
	if err != nil {
		w.t.Fatal(err)
	}
	return string(b)
}

// pkg builds a configuration package holding doc as name-version and signs
// it as guest configuration with the key called key.
func (w *gcWorld) pkg(name, version, doc, key string) string {
	w.t.Helper()
	p := signing.Package{Publisher: gcPublisher, Type: name, Version: version}
	dir := filepath.Join(w.tmp, "dist")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.t.Fatal(err)
	}
	path := filepath.Join(dir, p.FileName())
	f, err := os.Create(path)
	if err != nil {
		w.t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	fw, err := zw.Create("guestconfig.yaml")
	if err != nil {
		w.t.Fatal(err)
	}
	_, _ = fw.Write([]byte(strings.ReplaceAll(doc, "VERSION", version)))
	if err := zw.Close(); err != nil {
		w.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		w.t.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(w.tmp, key+".key"))
	if err != nil {
		w.t.Fatal(err)
	}
	s, err := signing.ParseSigner(pem, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	env, _, err := signing.SignPackageKind(context.Background(), signing.KindGuestConfig, path, p, s)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(path+".sig.json", env, 0o644); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// assign is `arcagent fleet guestconfig assign --machine web01`.
func (w *gcWorld) assign(name, policy, version, mode string, params map[string]string) apiv1.GuestConfigurationAssignment {
	w.t.Helper()
	args := []string{"fleet", "guestconfig", "assign", "--machine", "web01", "--name", name, "--package", policy, "--version", version, "--mode", mode, "-j"}
	for k, v := range params {
		args = append(args, "--parameters", k+"="+v)
	}
	var a apiv1.GuestConfigurationAssignment
	mustJSONOut(w.t, w.ok(args...), &a)
	if a.PackageSHA256 == "" {
		w.t.Fatalf("assign %s: no pinned digest: %+v", name, a)
	}
	return a
}

// once runs one deterministic pass of the real daemon.
func (w *gcWorld) once() string {
	w.t.Helper()
	return w.ok("daemon", "gcad", "--root", w.root, "--once", "--cgroup-root", filepath.Join(w.tmp, "no-cgroup"))
}

// status is the machine's last status report as the control plane keeps it.
func (w *gcWorld) status() *apiv1.MachineStatus {
	w.t.Helper()
	m, err := w.cp.operator(w.t).GetMachine(context.Background(), w.machineID)
	if err != nil {
		w.t.Fatal(err)
	}
	if m.ReportedStatus == nil {
		w.t.Fatal("the machine reported no status")
	}
	return m.ReportedStatus
}

// reported is what the control plane keeps of assignment name.
func (w *gcWorld) reported(name string) *apiv1.GuestConfigurationStatus {
	w.t.Helper()
	st := w.status()
	for i := range st.GuestConfiguration {
		if g := &st.GuestConfiguration[i]; g.Name == name {
			return g
		}
	}
	w.t.Fatalf("the control plane has no status of %s: %+v", name, st.GuestConfiguration)
	return nil
}

func gcResource(t testing.TB, s *apiv1.GuestConfigurationStatus, id string) apiv1.GuestConfigurationResourceStatus {
	t.Helper()
	for _, r := range s.Resources {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("%s: no resource %s in %+v", s.Name, id, s)
	return apiv1.GuestConfigurationResourceStatus{}
}

// treeHash hashes every entry (mode, content, link target) under dir.
func treeHash(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		v := fi.Mode().String()
		if fi.Mode()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			v += " -> " + l
		} else if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			v += " " + hex.EncodeToString(h[:])
		}
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameHashes(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Errorf("%s: %d entries before, %d after", what, len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %s changed: %q → %q", what, k, v, after[k])
		}
	}
}

// TestGcadEndToEnd: a published baseline assigned in Audit reports the
// reasons and changes nothing; in ApplyAndAutoCorrect it is compliant
// after one pass and corrects drift at the next; in ApplyAndMonitor it is
// applied once, then drift is reported, not corrected; with
// guestconfiguration.enabled false nothing changes although assigned; a
// removed assignment is dropped. The local verbs read what gcad kept.
func TestGcadEndToEnd(t *testing.T) {
	w := newGCWorld(t)
	policy := gcPublisher + ".SSH"
	w.ok("fleet", "guestconfig", "publish", w.pkg("SSH", "1.0.0", gcBaseline, "contoso"))
	etc := filepath.Join(w.root, "etc")

	// Audit: the reasons, and the tree unchanged.
	w.assign("ssh", policy, "1.0.0", "Audit", nil)
	before := treeHash(t, etc)
	w.once()
	sameHashes(t, "Audit", before, treeHash(t, etc))
	v := w.reported("ssh")
	if v.Compliance != "NonCompliant" || v.Applied || v.Mode != "Audit" || v.Policy != policy {
		t.Fatalf("Audit: %+v", v)
	}
	if svc := w.status().Services; len(svc) == 0 || svc[0].Name != "gcad" || svc[0].State != "Degraded" || !strings.Contains(svc[0].Message, "CPU limit not applied") {
		t.Errorf("services (no cgroup in this test: Degraded): %+v", svc)
	}
	if r := gcResource(t, v, "shadow-mode"); r.Compliance != "NonCompliant" || !strings.Contains(r.Reason, "mode is 0644, want at most 0640") || r.Evidence["mode"] != "0644" {
		t.Errorf("shadow-mode: %+v", r)
	}
	if r := gcResource(t, v, "sshd-root-login"); r.Compliance != "NonCompliant" || !strings.Contains(r.Reason, "yes") {
		t.Errorf("sshd-root-login: %+v", r)
	}
	// The operator's view: `fleet guestconfig status --machine`.
	var views []apiv1.GuestConfigurationView
	mustJSONOut(t, w.ok("fleet", "guestconfig", "status", "--machine", "web01", "-j"), &views)
	if len(views) != 1 || views[0].State != "NonCompliant" || views[0].NonCompliantResources != 4 || views[0].Reported == nil || len(views[0].Reported.Resources) != 4 {
		t.Errorf("fleet guestconfig status: %+v", views)
	}
	if out := w.ok("fleet", "guestconfig", "status", "--machine", "web01"); !strings.Contains(out, "shadow-mode") || !strings.Contains(out, "want at most 0640") {
		t.Errorf("fleet guestconfig status table:\n%s", out)
	}
	var rows []gcad.Row
	mustJSONOut(t, w.ok("guestconfig", "list", "--root", w.root, "-j"), &rows)
	if len(rows) != 1 || rows[0].Name != "ssh" || rows[0].Compliance != "NonCompliant" || rows[0].NonCompliant != 4 || rows[0].Mode != "Audit" || rows[0].Evaluated.IsZero() {
		t.Errorf("guestconfig list: %+v", rows)
	}
	if out := w.ok("guestconfig", "show", "ssh", "--root", w.root); !strings.Contains(out, "shadow-mode (file): NonCompliant") || !strings.Contains(out, "step test: NonCompliant") {
		t.Errorf("guestconfig show:\n%s", out)
	}

	// ApplyAndAutoCorrect: compliant after one pass; drift corrected.
	w.assign("ssh", policy, "1.0.0", "ApplyAndAutoCorrect", nil)
	w.once()
	v = w.reported("ssh")
	if v.Compliance != "Compliant" || !v.Applied || !gcResource(t, v, "sshd-root-login").Changed {
		t.Fatalf("AutoCorrect: %+v", v)
	}
	sshd := w.read("etc/ssh/sshd_config")
	if !strings.Contains(sshd, "PermitRootLogin no") || !strings.Contains(sshd, "PasswordAuthentication no") || !strings.Contains(sshd, "# managed by hand") {
		t.Fatalf("sshd_config after AutoCorrect:\n%s", sshd)
	}
	if fi, _ := os.Stat(filepath.Join(etc, "shadow")); fi.Mode().Perm() != 0o640 {
		t.Fatalf("shadow is %v", fi.Mode().Perm())
	}
	w.write("etc/ssh/sshd_config", gcWeakSSHD, 0o644)
	w.once()
	if sshd := w.read("etc/ssh/sshd_config"); !strings.Contains(sshd, "PermitRootLogin no") {
		t.Fatalf("drift not corrected:\n%s", sshd)
	}
	if v := w.reported("ssh"); v.Compliance != "Compliant" || !gcResource(t, v, "sshd-root-login").Changed {
		t.Fatalf("after drift: %+v", v)
	}

	// ApplyAndMonitor with a parameter: applied once, then drift reported.
	w.assign("ssh", policy, "1.0.0", "ApplyAndMonitor", map[string]string{"rootLogin": "prohibit-password"})
	w.once()
	if v := w.reported("ssh"); v.Compliance != "Compliant" || !v.Applied {
		t.Fatalf("Monitor first pass: %+v", v)
	}
	if sshd := w.read("etc/ssh/sshd_config"); !strings.Contains(sshd, "PermitRootLogin prohibit-password") {
		t.Fatalf("Monitor did not apply:\n%s", sshd)
	}
	w.write("etc/ssh/sshd_config", gcWeakSSHD, 0o644)
	for range 2 {
		w.once()
		v := w.reported("ssh")
		if v.Compliance != "NonCompliant" || v.Applied || gcResource(t, v, "sshd-root-login").Changed {
			t.Fatalf("Monitor drift: %+v", v)
		}
		if sshd := w.read("etc/ssh/sshd_config"); sshd != gcWeakSSHD {
			t.Fatalf("Monitor corrected drift:\n%s", sshd)
		}
	}

	// Disabled: nothing changes although assigned to correct.
	w.ok("config", "set", "--root", w.root, "guestconfiguration.enabled", "false")
	w.assign("ssh", policy, "1.0.0", "ApplyAndAutoCorrect", nil)
	before = treeHash(t, etc)
	w.once()
	sameHashes(t, "disabled", before, treeHash(t, etc))
	v = w.reported("ssh")
	if v.Compliance != "NotApplied" || v.Message != gcad.DisabledMessage {
		t.Fatalf("disabled: %+v", v)
	}
	w.ok("config", "set", "--root", w.root, "guestconfiguration.enabled", "true")
	w.once()
	if v := w.reported("ssh"); v.Compliance != "Compliant" {
		t.Fatalf("enabled again: %+v", v)
	}

	// Removed: dropped on the machine; nothing is un-applied.
	w.ok("fleet", "guestconfig", "remove", "--machine", "web01", "--name", "ssh")
	w.once()
	mustJSONOut(t, w.ok("guestconfig", "list", "--root", w.root, "-j"), &rows)
	if len(rows) != 0 {
		t.Errorf("after removal: %+v", rows)
	}
	if sshd := w.read("etc/ssh/sshd_config"); !strings.Contains(sshd, "PermitRootLogin no") {
		t.Errorf("removal un-applied:\n%s", sshd)
	}
	if gs := w.status().GuestConfiguration; gs == nil || len(gs) != 0 {
		t.Errorf("control plane after removal: %+v", gs)
	}
}

// TestGcadRefusals: a package signed by a key the machine does not trust,
// a kept package whose signature was stripped (downloaded again at the
// next pass), and a package whose path
// leads through a link out of the root are refused with the reason in
// status, and nothing is written.
func TestGcadRefusals(t *testing.T) {
	w := newGCWorld(t)
	etc := filepath.Join(w.root, "etc")
	outside := filepath.Join(w.tmp, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "target"), []byte("outside the root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(etc, "escape")); err != nil {
		t.Fatal(err)
	}
	escape := `apiVersion: arcagent.dev/guestconfig/v1
name: Escape
version: VERSION
resources:
  - id: issue-net
    file:
      path: /etc/issue.net
      content: "changed\n"
  - id: escape
    file:
      path: /etc/escape/target
      content: "owned\n"
`
	w.ok("fleet", "guestconfig", "publish", w.pkg("Untrusted", "1.0.0", strings.ReplaceAll(gcBaseline, "name: SSH", "name: Untrusted"), "mallory"))
	w.ok("fleet", "guestconfig", "publish", w.pkg("Escape", "1.0.0", escape, "contoso"))
	w.ok("fleet", "guestconfig", "publish", w.pkg("SSH", "1.0.0", gcBaseline, "contoso"))
	w.assign("untrusted", gcPublisher+".Untrusted", "1.0.0", "ApplyAndAutoCorrect", nil)
	w.assign("escape", gcPublisher+".Escape", "1.0.0", "ApplyAndAutoCorrect", nil)
	before, beforeOut := treeHash(t, etc), treeHash(t, outside)
	w.once()
	sameHashes(t, "refused", before, treeHash(t, etc))
	sameHashes(t, "outside", beforeOut, treeHash(t, outside))
	if v := w.reported("untrusted"); v.Compliance != "NotApplied" || !strings.Contains(v.Message, "ARC0161") || !strings.Contains(v.Message, "not signed by any of the 1 trusted key") {
		t.Errorf("untrusted: %+v", v)
	}
	v := w.reported("escape")
	if v.Compliance != "Error" || !strings.Contains(v.Message, "ARC0173") || v.Applied {
		t.Errorf("escape: %+v", v)
	}
	if r := gcResource(t, v, "escape"); !strings.Contains(r.Reason, "outside the target root") {
		t.Errorf("escape resource: %+v", r)
	}

	// A kept package is verified again at each load: its signature
	// stripped on disk, it is refused although the digest still matches.
	a := w.assign("ssh", gcPublisher+".SSH", "1.0.0", "Audit", nil)
	w.once()
	if v := w.reported("ssh"); v.Compliance != "NonCompliant" {
		t.Fatalf("ssh: %+v", v)
	}
	sig := filepath.Join(w.l.GCPackagesDir(), a.PackageSHA256+".sig.json")
	if err := os.WriteFile(sig, []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	w.once()
	if v := w.reported("ssh"); v.Compliance != "NotApplied" || !strings.Contains(v.Message, "ARC0161") {
		t.Errorf("stripped signature: %+v", v)
	}
	// The refused copy was deleted: the next pass downloads it again.
	w.once()
	if v := w.reported("ssh"); v.Compliance != "NonCompliant" {
		t.Errorf("downloaded again: %+v", v)
	}
}
