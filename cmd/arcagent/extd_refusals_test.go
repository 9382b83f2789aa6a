//go:build !windows

package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/internal/testutil"

	_ "modernc.org/sqlite" // the "sqlite" driver, to damage the server's stored packages
)

// TestExtdRefusals: against the real arcserver, every refusal reaches the
// control plane as Failed with its reason, and nothing is written under the
// extensions directory.
func TestExtdRefusals(t *testing.T) {
	w := newExtdWorld(t)
	sr := "../../examples/extensions/status-reporter"
	w.publish(sr, srType, "1.0.0")
	// Signed by a key the machine does not trust.
	w.ok("package", "keygen", "--out", filepath.Join(w.tmp, "stranger"))
	strangerPkg := w.build(w.copyWithNote(sr, "untrusted"), srPublisher, "Untrusted", "1.0.0", "stranger")
	w.ok("fleet", "packages", "publish", strangerPkg)
	// Signed by the trusted key, but for a publisher it may not sign for.
	w.ok("fleet", "packages", "publish", w.build(w.copyWithNote(sr, "fabrikam"), "Fabrikam.Tools", "Helper", "1.0.0", "contoso"))
	// A package whose stored bytes, or signature, the server changed.
	tampered := w.build(w.copyWithNote(sr, "tampered"), srPublisher, "Tampered", "1.0.0", "contoso")
	w.ok("fleet", "packages", "publish", tampered)
	unsigned := w.build(w.copyWithNote(sr, "unsigned"), srPublisher, "Unsigned", "1.0.0", "contoso")
	w.ok("fleet", "packages", "publish", unsigned)
	// A signed archive with an entry that climbs out of the tree.
	manifest, err := os.ReadFile(filepath.Join(sr, "HandlerManifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	hostile := filepath.Join(w.tmp, "dist", srPublisher+".Hostile-1.0.0.zip")
	script, err := os.ReadFile(filepath.Join(sr, "bin", "status-reporter.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hostile, testutil.Zip(t, []testutil.ZipEntry{{Name: "HandlerManifest.json", Body: manifest}, {Name: "bin/status-reporter.sh", Mode: 0o755, Body: script},
		{Name: "../../../etc/cron.d/evil", Body: []byte("* * * * * root id\n")}}), 0o644); err != nil {
		t.Fatal(err)
	}
	w.ok("package", "sign", hostile, "--key", filepath.Join(w.tmp, "contoso.key"))
	w.ok("fleet", "packages", "publish", hostile)

	pkgSHA := func(pkg string) string {
		t.Helper()
		var ps []apiv1.PackageInfo
		mustJSONOut(t, w.ok("fleet", "packages", "list", "-j"), &ps)
		for _, p := range ps {
			if p.FileName == filepath.Base(pkg) {
				return p.SHA256
			}
		}
		t.Fatalf("%s is not published", pkg)
		return ""
	}
	// The server keeps published packages in its database: damage them
	// there, beside the running server (SQLite in WAL mode).
	db, err := sql.Open("sqlite", "file:"+filepath.Join(w.cp.data, "arcserver.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b, err := os.ReadFile(tampered)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if _, err := db.Exec(`UPDATE package_chunks SET data = ? WHERE sha256 = ? AND seq = 0`, b, pkgSHA(tampered)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE package_files SET envelope = ? WHERE sha256 = ?`, []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`), pkgSHA(unsigned)); err != nil {
		t.Fatal(err)
	}

	extd := w.startExtd()
	for _, tc := range []struct {
		name      string
		config    [][]string // arcagent config set arguments
		publisher string
		typ       string
		want      string
	}{
		{"blocklist", [][]string{{"extensions.allowlist", srPublisher + "/" + srType}, {"extensions.blocklist", srPublisher + "/" + srType}}, srPublisher, srType,
			"blocked by extensions.blocklist; to change it, run on the machine: arcagent config set extensions.blocklist --remove " + srPublisher + "/" + srType},
		{"allowlist", [][]string{{"extensions.allowlist", "Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"}}, srPublisher, srType,
			"not listed in extensions.allowlist; to change it, run on the machine: arcagent config set extensions.allowlist --add " + srPublisher + "/" + srType},
		{"extensions off", [][]string{{"extensions.enabled", "false"}}, srPublisher, srType, "arcagent config set extensions.enabled true"},
		{"monitor mode", [][]string{{"config.mode", "monitor"}}, srPublisher, srType, "arcagent config set config.mode full"},
		{"untrusted key", nil, srPublisher, "Untrusted", "ARC01"},
		{"another publisher", nil, "Fabrikam.Tools", "Helper", "Fabrikam.Tools"},
		// The server checks the stored bytes against their digest and
		// refuses to serve damaged ones (the agent's own digest check is
		// tested in agent/extd, "digest mismatch"): the download fails.
		{"damaged on the server", nil, srPublisher, "Tampered", "ARC0152: download " + srPublisher + ".Tampered 1.0.0: the server could not handle the request"},
		{"unsigned", nil, srPublisher, "Unsigned", "ARC01"},
		{"hostile archive", nil, srPublisher, "Hostile", "ARC0105"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.Remove(w.l.LocalConfig())
			for _, c := range tc.config {
				w.ok(append([]string{"config", "set", "--root", w.root}, c...)...)
			}
			w.ok("fleet", "extensions", "set", "--machine", "web01", "--name", "r", "--publisher", tc.publisher, "--type", tc.typ, "--version", "1.0.0")
			v := w.waitFor("Failed", extd, func(vs []apiv1.ExtensionView) bool {
				return len(vs) == 1 && vs[0].State == apiv1.ExtensionFailed && vs[0].Reported != nil && vs[0].Reported.Version == "1.0.0"
			})
			if msg := v[0].Reported.Message; !strings.Contains(msg, tc.want) {
				t.Errorf("reported %q, want it to name %q", msg, tc.want)
			}
			if ents, err := os.ReadDir(w.l.ExtensionsDir()); err == nil && len(ents) > 0 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("written under the extensions directory: %v", names)
			}
			w.ok("fleet", "extensions", "remove", "--machine", "web01", "--name", "r")
			w.waitFor("removed", extd, func(vs []apiv1.ExtensionView) bool { return len(vs) == 0 })
		})
	}
	_ = os.Remove(w.l.LocalConfig())
}
