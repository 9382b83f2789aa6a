//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/signing"
)

const agent = "/opt/azcmagent/bin/arcagent"

// upgrades runs `arcagent upgrade` inside root, as root of the root: the
// installed binary upgrades itself with dpkg, no systemd running.
func upgrades(t *testing.T, root, arch string, debs map[string]string) {
	t.Helper()
	kp, err := signing.GenerateKey(signing.AlgECDSAP256, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signing.ParseSigner(kp.PrivatePEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := &signingKey{pub: kp.PublicPEM, signer: signer}
	if err := os.WriteFile(filepath.Join(root, "tmp", "release.pub"), kp.PublicPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := chroot(root, args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	must(agent, "trust", "add", "release", "--key", "/tmp/release.pub", "--catalog", "releases")
	// The operator's settings, changed between v1 and v2.
	must(agent, "config", "set", "extensions.allowlist", "Microsoft.Azure.Monitor/AzureMonitorLinuxAgent")
	must(agent, "config", "set", "incomingconnections.enabled", "false")
	confPath := filepath.Join(root, "var/opt/azcmagent/localconfig.json")
	conf, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	rel := func(v string) release { return release{version: v, deb: debs[v]} }

	// v1 -> v2, configuration preserved.
	cat1 := writeCatalog(t, root, key, 1, arch, []release{rel("1.0.0"), rel("2.0.0")}, nil)
	out := must(agent, "upgrade", "--catalog", cat1)
	t.Logf("arcagent upgrade v1 -> v2:\n%s", out)
	if !strings.Contains(out, "restart") || !strings.Contains(out, "skipped") {
		t.Errorf("the restart step is not reported as skipped in a chroot:\n%s", out)
	}
	if v := installedVersion(t, root); v != "2.0.0" {
		t.Fatalf("installed %q after the upgrade, want 2.0.0", v)
	}
	if got := must(agent, "version"); !strings.Contains(got, "arcagent 2.0.0") {
		t.Errorf("arcagent version after the upgrade:\n%s", got)
	}
	if after, err := os.ReadFile(confPath); err != nil || !bytes.Equal(after, conf) {
		t.Errorf("localconfig.json changed by the upgrade (err %v):\nbefore %s\nafter  %s", err, conf, after)
	}
	if got := strings.TrimSpace(must(agent, "config", "get", "incomingconnections.enabled")); !strings.Contains(got, "false") {
		t.Errorf("config get incomingconnections.enabled after the upgrade: %q", got)
	}

	// The automatic upgrade does nothing while automaticupgrade.enabled is false.
	if out := must(agent, "upgrade", "--auto", "--catalog", cat1); !strings.Contains(out, "automatic upgrade is off") {
		t.Errorf("upgrade --auto with automaticupgrade.enabled false:\n%s", out)
	}

	// A tampered v3: the catalog has the real file's SHA-256, the bytes differ.
	v3 := filepath.Join(root, "tmp", "pkgs", filepath.Base(debs["3.0.0"]))
	data, err := os.ReadFile(v3)
	if err != nil {
		t.Fatal(err)
	}
	cat2 := writeCatalog(t, root, key, 2, arch, []release{rel("1.0.0"), rel("2.0.0"), rel("3.0.0")}, nil)
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(v3, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = chroot(root, agent, "upgrade", "--catalog", cat2)
	t.Logf("arcagent upgrade to a tampered v3:\n%s", out)
	if err == nil || !strings.Contains(out, "ARC0545") {
		t.Errorf("a tampered package was not refused with ARC0545 (err %v)", err)
	}
	if v := installedVersion(t, root); v != "2.0.0" {
		t.Errorf("installed %q after the tampered upgrade, want 2.0.0", v)
	}
	if m, _ := filepath.Glob(filepath.Join(root, "var/opt/azcmagent/upgrade/*3.0.0*")); len(m) > 0 {
		t.Errorf("the refused package was kept: %v", m)
	}

	// v2 -> v1 is a downgrade, refused; so is a catalog listing only v1.
	cat3 := writeCatalog(t, root, key, 3, arch, []release{rel("1.0.0"), rel("2.0.0")}, nil)
	out, err = chroot(root, agent, "upgrade", "--catalog", cat3, "--version", "1.0.0")
	t.Logf("arcagent upgrade --version 1.0.0 from 2.0.0:\n%s", out)
	if err == nil || !strings.Contains(out, "ARC0543") {
		t.Errorf("a downgrade was not refused with ARC0543 (err %v)", err)
	}
	cat4 := writeCatalog(t, root, key, 4, arch, []release{rel("1.0.0")}, nil)
	if out, err = chroot(root, agent, "upgrade", "--catalog", cat4); err == nil || !strings.Contains(out, "ARC0543") {
		t.Errorf("a catalog offering only 1.0.0 was not refused as a downgrade (err %v):\n%s", err, out)
	}
	// The catalog of version 1 again is a rollback of the catalog itself.
	if out, err = chroot(root, agent, "upgrade", "--catalog", cat1); err == nil || !strings.Contains(out, "ARC0113") {
		t.Errorf("an older catalog was not refused with ARC0113 (err %v):\n%s", err, out)
	}
	if v := installedVersion(t, root); v != "2.0.0" {
		t.Errorf("installed %q at the end, want 2.0.0", v)
	}

	// 2.0.0 -> 3.0.0 (the real file this time) with HIMDS running in the
	// root, restarted by the upgrade's restart step through a seam: the
	// downtime figure. Run by this process with dpkg --root, so the package
	// URLs are the host's paths.
	copyFile(t, debs["3.0.0"], v3)
	cat5 := writeCatalogAt(t, root, key, 5, arch, "file://"+filepath.Join(root, "tmp", "pkgs")+"/", []release{rel("2.0.0"), rel("3.0.0")}, nil)
	store, err := signing.LoadTrustStore(filepath.Join(root, "var/opt/azcmagent/trust"))
	if err != nil {
		t.Fatal(err)
	}
	last := cat5
	if !himdsDowntime(t, root, arch, store, cat5) {
		last = writeCatalog(t, root, key, 6, arch, []release{rel("2.0.0"), rel("3.0.0")}, nil)
		must(agent, "upgrade", "--catalog", last)
	}

	// Turned on, the automatic upgrade finds 3.0.0 current: success, nothing done.
	must(agent, "config", "set", "automaticupgrade.enabled", "true")
	if out := must(agent, "upgrade", "--auto", "--catalog", last); !strings.Contains(out, "nothing to do") {
		t.Errorf("upgrade --auto with the newest version installed:\n%s", out)
	}
}
