//go:build !windows

package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// extdWorld is a real arcserver, a connected scratch root, a fleet login,
// a trusted signing key and the example packages built and published.
type extdWorld struct {
	t    testing.TB
	bin  string
	tmp  string
	root string
	cp   *controlPlane
	l    layout.Layout
}

const (
	srPublisher = "Contoso.Monitoring"
	srType      = "StatusReporter"
)

func newExtdWorld(t *testing.T) *extdWorld {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	return newExtdWorldTB(t)
}

// newExtdWorldTB sets the world up for a test or a benchmark.
func newExtdWorldTB(t testing.TB) *extdWorld {
	t.Helper()
	w := &extdWorld{t: t, bin: buildArcagent(t), tmp: worldTraversableTemp(t)}
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
	w.ok("package", "keygen", "--out", filepath.Join(w.tmp, "contoso"))
	w.ok("trust", "add", "--root", w.root, "contoso", "--key", filepath.Join(w.tmp, "contoso.pub"), "--publisher", srPublisher)
	return w
}

// ok runs the CLI and fails the test unless it exits 0.
func (w *extdWorld) ok(args ...string) string {
	w.t.Helper()
	out, stderr, code := runBin(w.t, w.bin, args...)
	if code != 0 {
		w.t.Fatalf("arcagent %s: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

// publish builds and signs a handler directory as version v with the
// trusted key and publishes it.
func (w *extdWorld) publish(src, typ, v string) string {
	w.t.Helper()
	pkg := w.build(src, srPublisher, typ, v, "contoso")
	w.ok("fleet", "packages", "publish", pkg)
	return pkg
}

// build builds a handler directory as publisher/typ/v and signs it with
// the key called key.
func (w *extdWorld) build(src, publisher, typ, v, key string) string {
	w.t.Helper()
	dist := filepath.Join(w.tmp, "dist")
	w.ok("package", "build", src, "--publisher", publisher, "--type", typ, "--version", v, "--out", dist)
	pkg := filepath.Join(dist, publisher+"."+typ+"-"+v+".zip")
	w.ok("package", "sign", pkg, "--key", filepath.Join(w.tmp, key+".key"))
	return pkg
}

func mustJSONOut(t testing.TB, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}

// copyWithNote copies a handler directory and adds a file naming the
// version, so that two versions are two different packages.
func (w *extdWorld) copyWithNote(src, v string) string {
	w.t.Helper()
	dst := filepath.Join(w.tmp, "src-"+v)
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		w.t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dst, "VERSION"), []byte(v+"\n"), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return dst
}

func (w *extdWorld) startExtd() *proc {
	w.t.Helper()
	p := startProc(w.t, w.bin, "daemon", "extd", "--root", w.root, "--interval", "200ms", "--reload-every", "100ms",
		"--cgroup-root", filepath.Join(w.tmp, "no-cgroup"))
	return p
}

// views is `fleet extensions list --machine web01 -j`.
func (w *extdWorld) views() []apiv1.ExtensionView {
	w.t.Helper()
	var v []apiv1.ExtensionView
	if err := json.Unmarshal([]byte(w.ok("fleet", "extensions", "list", "--machine", "web01", "-j")), &v); err != nil {
		w.t.Fatal(err)
	}
	return v
}

// waitFor polls the control plane's view until cond holds.
func (w *extdWorld) waitFor(what string, extd *proc, cond func([]apiv1.ExtensionView) bool) []apiv1.ExtensionView {
	w.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v := w.views()
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			out := ""
			if extd != nil {
				out = extd.out.String()
			}
			w.t.Fatalf("timed out waiting for %s; last view %+v\nextd:\n%s", what, v, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func reported(name, version, state string, seq int) func([]apiv1.ExtensionView) bool {
	return func(vs []apiv1.ExtensionView) bool {
		for _, v := range vs {
			if v.Name == name && v.Reported != nil && v.Reported.Version == version && v.Reported.State == state && v.Reported.Sequence == seq && v.State == state {
				return true
			}
		}
		return false
	}
}

// grepTree reports the files under dir whose bytes contain secret.
func grepTree(t testing.TB, dir string, secret []byte) []string {
	t.Helper()
	var hits []string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, secret) {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}

// TestExtdEndToEnd: publish the example status-reporter, assign it, extd
// installs and enables it and Succeeded reaches the control plane; new
// settings run enable with the next sequence number; a new version takes
// the update path; removal uninstalls and deletes the tree. Protected
// settings are never in clear on disk, and a handler decrypting them with
// openssl cms -decrypt gets them.
func TestExtdEndToEnd(t *testing.T) {
	w := newExtdWorld(t)
	src := "../../examples/extensions/status-reporter"
	w.publish(src, srType, "1.0.0")
	w.publish(w.copyWithNote(src, "1.1.0"), srType, "1.1.0")
	secret := "s3cr3t-" + strings.Repeat("x", 12)
	prot := filepath.Join(w.tmp, "protected.json")
	if err := os.WriteFile(prot, []byte(`{"token":"`+secret+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	extd := w.startExtd()

	start := time.Now()
	w.ok("fleet", "extensions", "set", "--machine", "web01", "--name", "status", "--publisher", srPublisher, "--type", srType,
		"--version", "1.0.0", "--settings", `{"greeting":"hi"}`, "--protected-settings", "@"+prot)
	w.waitFor("Succeeded 1.0.0", extd, reported("status", "1.0.0", apiv1.ExtensionSucceeded, 0))
	t.Logf("assignment to Succeeded: %v", time.Since(start))
	tree := filepath.Join(w.l.ExtensionsDir(), srPublisher+"."+srType+"-1.0.0")
	for _, f := range []string{"HandlerEnvironment.json", "config/0.settings", "status/0.status"} {
		if _, err := os.Stat(filepath.Join(tree, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if hits := grepTree(t, w.root, []byte(secret)); len(hits) > 0 {
		t.Errorf("protected settings in clear on the machine: %v", hits)
	}
	if hits := grepTree(t, w.cp.data, []byte(secret)); len(hits) > 0 {
		t.Errorf("protected settings in clear in the control plane's data: %v", hits)
	}
	if strings.Contains(extd.out.String(), secret) || strings.Contains(w.cp.proc.out.String(), secret) {
		t.Error("protected settings in a log")
	}
	checkOpensslDecrypts(t, w.l.ExtensionsDir(), filepath.Join(tree, "config", "0.settings"), secret)

	// New settings: enable with sequence number 1.
	w.ok("fleet", "extensions", "set", "--machine", "web01", "--name", "status", "--publisher", srPublisher, "--type", srType,
		"--version", "1.0.0", "--settings", `{"greeting":"hello"}`, "--protected-settings", "@"+prot)
	w.waitFor("sequence 1", extd, reported("status", "1.0.0", apiv1.ExtensionSucceeded, 1))
	if _, err := os.Stat(filepath.Join(tree, "config", "1.settings")); err != nil {
		t.Error(err)
	}

	// A new version: the update path; the old tree goes.
	w.ok("fleet", "extensions", "set", "--machine", "web01", "--name", "status", "--publisher", srPublisher, "--type", srType,
		"--version", "1.1.0", "--settings", `{"greeting":"hello"}`, "--protected-settings", "@"+prot)
	w.waitFor("Succeeded 1.1.0", extd, reported("status", "1.1.0", apiv1.ExtensionSucceeded, 1))
	if _, err := os.Stat(tree); !os.IsNotExist(err) {
		t.Errorf("the 1.0.0 tree is still there after the update: %v", err)
	}
	logs, _ := os.ReadDir(filepath.Join(w.l.ExtensionLogsDir(), srPublisher+"."+srType+"-1.1.0"))
	var names []string
	for _, l := range logs {
		names = append(names, l.Name())
	}
	for _, op := range []string{"update", "install", "enable"} {
		if !strings.Contains(strings.Join(names, " "), op) {
			t.Errorf("no %s log for 1.1.0 in %v", op, names)
		}
	}
	out := w.ok("extension", "list", "--root", w.root)
	if !strings.Contains(out, "1.1.0") || !strings.Contains(out, "Succeeded") {
		t.Errorf("extension list:\n%s", out)
	}

	// Removal: uninstall ran, the tree and record are gone.
	w.ok("fleet", "extensions", "remove", "--machine", "web01", "--name", "status")
	w.waitFor("removal", extd, func(vs []apiv1.ExtensionView) bool { return len(vs) == 0 })
	if _, err := os.Stat(filepath.Join(w.l.ExtensionsDir(), srPublisher+"."+srType+"-1.1.0")); !os.IsNotExist(err) {
		t.Errorf("the tree is still there after removal: %v", err)
	}
	// 1.1.0 was never uninstalled before: its uninstall log is the removal's.
	if _, err := os.Stat(filepath.Join(w.l.ExtensionLogsDir(), srPublisher+"."+srType+"-1.1.0", "uninstall.log")); err != nil {
		t.Errorf("uninstall did not run: %v", err)
	}
}

// checkOpensslDecrypts decrypts protectedSettings of a settings file the
// way Azure's Linux handlers do and expects secret back.
func checkOpensslDecrypts(t *testing.T, certDir, settings, secret string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Log("openssl not found: the decryption by a handler is not checked here")
		return
	}
	var doc struct {
		RuntimeSettings []struct {
			HandlerSettings struct {
				Thumbprint string `json:"protectedSettingsCertThumbprint"`
				Protected  string `json:"protectedSettings"`
			} `json:"handlerSettings"`
		} `json:"runtimeSettings"`
	}
	b, err := os.ReadFile(settings)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.RuntimeSettings) != 1 {
		t.Fatalf("settings %s: %v", b, err)
	}
	hs := doc.RuntimeSettings[0].HandlerSettings
	der, err := base64.StdEncoding.DecodeString(hs.Protected)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("openssl", "cms", "-decrypt", "-inform", "DER", "-inkey", filepath.Join(certDir, hs.Thumbprint+".prv"), "-recip", filepath.Join(certDir, hs.Thumbprint+".crt"))
	cmd.Stdin = bytes.NewReader(der)
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(got), secret) {
		t.Fatalf("openssl cms -decrypt: %v %s", err, got)
	}
}

// TestExtdKilledDuringInstall: kill -9 of extd while the handler's install
// command runs leaves no tree that looks installed; the restarted extd rolls
// the install back and converges to Succeeded.
func TestExtdKilledDuringInstall(t *testing.T) {
	w := newExtdWorld(t)
	w.publish("testdata/slow-handler", "Slow", "1.0.0")
	hang, marker, journal := filepath.Join(w.tmp, "hang"), filepath.Join(w.tmp, "marker"), filepath.Join(w.tmp, "journal")
	if err := os.WriteFile(hang, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	extd := w.startExtd()
	settings, _ := json.Marshal(map[string]string{"hang": hang, "marker": marker, "journal": journal})
	w.ok("fleet", "extensions", "set", "--machine", "web01", "--name", "slow", "--publisher", srPublisher, "--type", "Slow",
		"--version", "1.0.0", "--settings", string(settings))
	var pid int
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(marker); err == nil && len(bytes.TrimSpace(b)) > 0 {
			if _, err := fmt.Sscan(string(b), &pid); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the install command did not start:\n%s", extd.out.String())
		}
	}
	// kill -9 of extd, and of the handler (systemd would kill its cgroup).
	if err := extd.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-extd.done
	extd.done <- nil
	if pgid, err := syscall.Getpgid(pid); err == nil {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	tree := filepath.Join(w.l.ExtensionsDir(), srPublisher+".Slow-1.0.0")
	if _, err := os.Stat(tree); err != nil {
		t.Fatalf("the tree should exist while install ran: %v", err)
	}
	var st struct {
		Extensions []struct{ Name, Phase string }
	}
	b, err := os.ReadFile(filepath.Join(w.l.ExtMgrDir(), "state.json"))
	if err != nil || json.Unmarshal(b, &st) != nil || len(st.Extensions) != 1 || st.Extensions[0].Phase != "RunningInstall" {
		t.Fatalf("state after kill -9: %s %v", b, err)
	}
	if out := w.ok("extension", "list", "--root", w.root); strings.Contains(out, "Succeeded") {
		t.Fatalf("an interrupted install looks installed:\n%s", out)
	}

	_ = os.Remove(hang)
	extd = w.startExtd()
	w.waitFor("Succeeded after restart", extd, reported("slow", "1.0.0", apiv1.ExtensionSucceeded, 0))
	jb, _ := os.ReadFile(journal)
	if got := strings.Fields(strings.ReplaceAll(string(jb), " 0", "")); strings.Join(got, ",") != "install,uninstall,install,enable" {
		t.Fatalf("handler commands: %q, want install (killed), uninstall (roll back), install, enable", jb)
	}
	if !strings.Contains(extd.out.String(), "recovered an interrupted step") {
		t.Errorf("extd did not say it recovered:\n%s", extd.out.String())
	}
}

// TestExtdControlPlaneUnreachable: with arcserver stopped the installed
// extension stays and keeps its state; what happens meanwhile is reported
// once arcserver is back.
func TestExtdControlPlaneUnreachable(t *testing.T) {
	w := newExtdWorld(t)
	w.publish("../../examples/extensions/status-reporter", srType, "1.0.0")
	extd := startProc(w.t, w.bin, "daemon", "extd", "--root", w.root, "--interval", "200ms", "--reload-every", "100ms",
		"--retry-min", "200ms", "--cgroup-root", filepath.Join(w.tmp, "no-cgroup"))
	w.ok("fleet", "extensions", "set", "--machine", "web01", "--name", "status", "--publisher", srPublisher, "--type", srType, "--version", "1.0.0")
	first := w.waitFor("Succeeded", extd, reported("status", "1.0.0", apiv1.ExtensionSucceeded, 0))
	tree := filepath.Join(w.l.ExtensionsDir(), srPublisher+"."+srType+"-1.0.0")

	if err := w.cp.proc.stop(t); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(extd.out.String(), "poll the desired state"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("extd did not notice the control plane is gone:\n%s", extd.out.String())
		}
	}
	if _, err := os.Stat(tree); err != nil {
		t.Fatalf("the installed extension went away with the control plane: %v", err)
	}
	if out := w.ok("extension", "list", "--root", w.root); !strings.Contains(out, "Succeeded") {
		t.Fatalf("extension list while offline:\n%s", out)
	}
	// Offline, a local removal: reported once the control plane is back,
	// and the assignment installs the extension again.
	w.ok("extension", "remove", "--root", w.root, "--name", "status")
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(extd.out.String(), "status report not sent"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("extd did not queue the status report:\n%s", extd.out.String())
		}
	}
	w.cp.start(t)
	v := w.waitFor("Succeeded again", extd, func(vs []apiv1.ExtensionView) bool {
		return reported("status", "1.0.0", apiv1.ExtensionSucceeded, 0)(vs) && vs[0].Reported.UpdatedAt.After(first[0].Reported.UpdatedAt)
	})
	if v[0].Reported.UpdatedAt.Before(first[0].Reported.UpdatedAt) {
		t.Fatal("stale report")
	}
}
