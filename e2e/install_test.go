//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/arcagent/arcagent/signing"
)

const buildinfoPkg = "github.com/arcagent/arcagent/internal/buildinfo"

// buildHost builds the host's arcagent (the one that audits the root).
func buildHost(t *testing.T, repo, work string) string {
	out := filepath.Join(work, "host", "arcagent")
	runCmd(t, repo, "go", "build", "-trimpath", "-o", out, "./cmd/arcagent")
	return out
}

// buildDeb builds the binaries stamped with version and packages them
// with packaging/mkdeb (what `make deb` runs); it returns the arcagent .deb.
func buildDeb(t *testing.T, repo, work, version, arch string) string {
	t.Helper()
	bin := filepath.Join(work, "v"+version, "bin")
	dist := filepath.Join(work, "v"+version, "dist")
	ld := "-s -w -X " + buildinfoPkg + ".Version=" + version + " -X " + buildinfoPkg + ".Commit=e2e"
	runCmd(t, repo, "go", "build", "-trimpath", "-ldflags", ld, "-o", bin+"/", "./cmd/arcagent", "./cmd/arcserver")
	runCmd(t, repo, "go", "run", "./packaging/mkdeb", "-bin", bin, "-version", version, "-arch", arch, "-out", dist)
	deb := filepath.Join(dist, "arcagent_"+version+"_"+arch+".deb")
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("mkdeb did not write %s: %v", deb, err)
	}
	return deb
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// installedVersion is dpkg's version of arcagent in root ("" when none).
func installedVersion(t *testing.T, root string) string {
	out, err := chroot(root, "dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", "arcagent")
	if err != nil {
		return ""
	}
	status, v, _ := strings.Cut(strings.TrimSpace(out), " ")
	if status != "installed" {
		return ""
	}
	return v
}

// release is a package the test catalog lists.
type release struct {
	version, deb string
}

// writeCatalog signs a catalog of the agent packages (their URLs inside
// the root) and writes it into the root; it returns the path in the root.
func writeCatalog(t *testing.T, root string, signer *signingKey, version int64, arch string, rels []release, sums map[string]string) string {
	t.Helper()
	return writeCatalogAt(t, root, signer, version, arch, "file:///tmp/pkgs/", rels, sums)
}

// writeCatalogAt is writeCatalog with the packages' URLs under prefix.
func writeCatalogAt(t *testing.T, root string, signer *signingKey, version int64, arch, prefix string, rels []release, sums map[string]string) string {
	t.Helper()
	c := &signing.Catalog{Name: "releases", Version: version, Expires: time.Now().Add(24 * time.Hour)}
	for _, r := range rels {
		data, err := os.ReadFile(r.deb)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		sha := hex.EncodeToString(sum[:])
		if s, ok := sums[r.version]; ok {
			sha = s
		}
		c.Entries = append(c.Entries, signing.CatalogEntry{Name: "arcagent", Version: r.version,
			URL: prefix + filepath.Base(r.deb), SHA256: sha, Size: int64(len(data)),
			Annotations: map[string]string{"arch": arch}})
	}
	env, err := signing.SignCatalog(c, signer.signer)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("/tmp/catalog-%d.sig.json", version)
	if err := os.WriteFile(filepath.Join(root, name), env, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

type signingKey struct {
	pub    []byte
	signer signature.Signer
}

// auditPrivilege runs the host's audit of root and returns the failures,
// logging errors and not-applicable results.
func auditPrivilege(t *testing.T, host, root, work string) []string {
	t.Helper()
	report := filepath.Join(work, "audit-privilege.json")
	out, err := tryCmd("/", nil, host, "audit", "--root", root, "--profile", "privilege", "--fail-on", "never", "-o", "table", "-o", "json="+report)
	t.Logf("arcagent audit --root ROOT --profile privilege:\n%s", out)
	if err != nil {
		t.Fatalf("audit did not run: %v", err)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Results []struct {
			RuleID, Status, Message, Reason, Resource string
		} `json:"results"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	var fails []string
	for _, res := range r.Results {
		switch res.Status {
		case "fail":
			fails = append(fails, res.RuleID+" "+res.Resource+": "+res.Message)
		case "error", "not_applicable":
			t.Logf("%s %s: %s %s", res.Status, res.RuleID, res.Message, res.Reason)
		}
	}
	return fails
}

func TestInstalledSystem(t *testing.T) {
	requireTools(t, "debootstrap", "chroot", "dpkg", "dpkg-deb", "tar")
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo, "packaging", "mkdeb")); err != nil {
		t.Skip("packaging/mkdeb (make deb) is not in this tree")
	}
	start := time.Now()
	arch := debArch(t)
	work := t.TempDir()
	host := buildHost(t, repo, work)
	debs := map[string]string{}
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		debs[v] = buildDeb(t, repo, work, v, arch)
	}
	if fi, err := os.Stat(debs["1.0.0"]); err == nil {
		t.Logf("package size: %s %d bytes", filepath.Base(debs["1.0.0"]), fi.Size())
	}
	t.Logf("built the host binary and three packages in %s", time.Since(start).Round(time.Second))

	rootStart := time.Now()
	root, cached := newRoot(t, arch)
	t.Logf("Debian %s root ready in %s (cached: %v)", Suite, time.Since(rootStart).Round(time.Millisecond), cached)
	before, beforeAccounts := snapshot(t, root)
	for v, deb := range debs {
		copyFile(t, deb, filepath.Join(root, "tmp", "pkgs", filepath.Base(deb)))
		_ = v
	}
	pkgIn := func(v string) string { return "/tmp/pkgs/" + filepath.Base(debs[v]) }

	// 1. Install v1 with dpkg, no systemd: the audit of the tree passes.
	if out, err := chroot(root, "dpkg", "-i", pkgIn("1.0.0")); err != nil {
		t.Fatalf("dpkg -i in the root: %v\n%s", err, out)
	} else {
		t.Logf("dpkg -i %s:\n%s", filepath.Base(debs["1.0.0"]), out)
	}
	if v := installedVersion(t, root); v != "1.0.0" {
		t.Fatalf("installed version %q after dpkg -i, want 1.0.0", v)
	}
	if fails := auditPrivilege(t, host, root, work); len(fails) > 0 {
		t.Errorf("the installed system fails its own privilege rules:\n%s", strings.Join(fails, "\n"))
	}

	// 2. Purge leaves only what docs/packaging.md lists.
	if out, err := chroot(root, "dpkg", "--purge", "arcagent"); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, out)
	}
	checkPurged(t, root, before, beforeAccounts)

	// 3. Upgrades inside the root.
	if out, err := chroot(root, "dpkg", "-i", pkgIn("1.0.0")); err != nil {
		t.Fatalf("dpkg -i again: %v\n%s", err, out)
	}
	upgrades(t, root, arch, debs)

	// 4. And purge once more, after the upgrades.
	if out, err := chroot(root, "dpkg", "--purge", "arcagent"); err != nil {
		t.Fatalf("dpkg --purge after the upgrades: %v\n%s", err, out)
	}
	checkPurged(t, root, before, beforeAccounts)
	t.Logf("installed-system test done in %s (root cached: %v)", time.Since(start).Round(time.Second), cached)
}

// purgeLeftovers are the accounts `dpkg --purge arcagent` may leave
// behind: none, its postrm removes the users and groups it created.
var purgeLeftovers []string

// purgeChanges are the file-list differences a purge may leave: the backups
// useradd and groupadd keep of the account files they changed.
var purgeChanges = []string{
	"/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-", "/etc/subuid-", "/etc/subgid-",
}

func allowedChange(d string) bool {
	for _, c := range purgeChanges {
		if strings.HasPrefix(c, "- ") {
			if d == c {
				return true
			}
			continue
		}
		if strings.HasPrefix(d[2:], c+" ") {
			return true
		}
	}
	return false
}

func checkPurged(t *testing.T, root string, before map[string]entry, beforeAccounts []string) {
	t.Helper()
	after, afterAccounts := snapshot(t, root)
	// The packages copied in for the test are under /tmp, which is not compared.
	var left []string
	for _, d := range diff(before, after) {
		if allowedChange(d) {
			t.Logf("after purge (expected): %s", d)
			continue
		}
		left = append(left, d)
	}
	if len(left) > 0 {
		t.Errorf("dpkg --purge left the root changed beyond what docs/packaging.md lists:\n%s", strings.Join(left, "\n"))
	}
	var extra []string
	for _, a := range afterAccounts {
		if !slices.Contains(beforeAccounts, a) && !slices.Contains(purgeLeftovers, a) {
			extra = append(extra, a)
		}
	}
	if len(extra) > 0 {
		t.Errorf("dpkg --purge left accounts docs/packaging.md does not list: %v", extra)
	}
}
