// Package upgrade is `arcagent upgrade`: it picks the agent package of this
// machine's architecture from the signed release catalog, refuses a
// downgrade or the installed version, downloads the package (bounded) into
// a root-only cache and checks its size and SHA-256 against the signed
// entry before dpkg sees it, installs it with dpkg (keeping the installed
// version's package to roll back to), restarts the services that were
// running in dependency order (arcproxyd, himdsd, extd, gcad), checks that
// they run (and that HIMDS answers on 127.0.0.1:40342) and, when one does
// not, reinstalls the previous package and says so.
package upgrade

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/releases"
	"github.com/arcagent/arcagent/signing"
)

// Product is the catalog entry name of the agent package.
const Product = "arcagent"

// ArchAnnotation is the catalog entry annotation naming the Debian
// architecture of a package (amd64, arm64). One entry per architecture.
const ArchAnnotation = "arch"

// CacheDir is where packages are downloaded and the previous version's
// package is kept (root:root 0700; a layout row, so the package creates it
// and a purge removes it with the state directory).
const CacheDir = layout.UpgradeDir

// DefaultConfig is the release configuration read when no --catalog is
// given: its `releases.catalog` section names the catalog (location, name,
// threshold), as for `arcagent audit --release-config`.
const DefaultConfig = "/var/opt/azcmagent/releases.yaml"

// MaxPackage bounds a package download, whatever its catalog entry says.
const MaxPackage = 512 << 20

// RestartOrder is the order in which services are restarted: the arc
// proxy first (the others' egress), then HIMDS (identity), then the
// extension manager and guest configuration that use both.
var RestartOrder = []string{"arcproxyd", "himdsd", "extd", "gcad"}

// Options say what to upgrade to and how.
type Options struct {
	Layout layout.Layout
	// Catalog is the signed catalog, a FILE or an https:// URL; CatalogName
	// the name its keys are trusted for ("" is "releases"); Threshold the
	// distinct trusted keys that must have signed (0 is 1).
	Catalog     string
	CatalogName string
	Threshold   int
	Trust       *signing.TrustStore
	// TrustDir keeps the last trusted catalog version ("" is the layout's).
	TrustDir string
	// Version is the version wanted; "" is the newest the catalog offers.
	Version string
	// Arch is the Debian architecture ("" is this binary's).
	Arch string
	// Installed is the installed version; "" asks dpkg.
	Installed string
	// DryRun verifies the catalog and says what would happen, changing nothing.
	DryRun bool
	// NoRollback upgrades even when no package of the installed version
	// can be kept to roll back to.
	NoRollback bool
	// System runs dpkg and the service manager (nil: the real ones, see
	// NewSystem).
	System System
	// HTTPClient downloads https:// packages (nil: a client with a timeout).
	HTTPClient *http.Client
	// StartTimeout is how long a restarted service may take to run (0: 30s).
	StartTimeout time.Duration
	Now          time.Time
	Log          *slog.Logger
}

// Step is one thing the upgrade did, for the report.
type Step struct {
	Name   string `json:"name"`
	Status string `json:"status"` // done, skipped, failed
	Detail string `json:"detail,omitempty"`
}

// Result is what an upgrade did.
type Result struct {
	Catalog    string   `json:"catalog"`
	CatalogVer int64    `json:"catalogVersion"`
	From       string   `json:"from"`
	To         string   `json:"to"`
	Arch       string   `json:"arch"`
	Package    string   `json:"package,omitempty"`  // the verified file installed
	Previous   string   `json:"previous,omitempty"` // the package kept to roll back to
	DryRun     bool     `json:"dryRun,omitempty"`
	Upgraded   bool     `json:"upgraded"`
	RolledBack bool     `json:"rolledBack,omitempty"`
	Restarted  []string `json:"restarted,omitempty"`
	Steps      []Step   `json:"steps"`
}

func (r *Result) step(name, status, format string, args ...any) {
	r.Steps = append(r.Steps, Step{Name: name, Status: status, Detail: fmt.Sprintf(format, args...)})
}

// DebianArch is the Debian architecture of a Go GOARCH.
func DebianArch(goarch string) string {
	switch goarch {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	}
	return goarch
}

// Run upgrades the agent. The result is returned with the error too, so the
// caller can show what was done before a failure.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Arch == "" {
		o.Arch = DebianArch(runtime.GOARCH)
	}
	if o.CatalogName == "" {
		o.CatalogName = "releases"
	}
	if o.TrustDir == "" {
		o.TrustDir = o.Layout.TrustDir()
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	sys := o.System
	if sys == nil {
		sys = NewSystem(o.Layout)
	}
	res := &Result{Catalog: o.Catalog, Arch: o.Arch, DryRun: o.DryRun}

	src, err := releases.OpenCatalog(ctx, releases.CatalogOptions{
		Location: o.Catalog, Name: o.CatalogName, Threshold: o.Threshold, Trust: o.Trust,
		StateDir: o.TrustDir, Now: o.Now, HTTPClient: o.HTTPClient, NoPersist: o.DryRun,
	})
	if err != nil {
		return res, err
	}
	cat := src.Catalog()
	res.CatalogVer = cat.Version
	res.step("catalog", "done", "%q version %d verified", cat.Name, cat.Version)

	installed := o.Installed
	if installed == "" {
		if installed, err = sys.InstalledVersion(ctx); err != nil {
			return res, err
		}
	}
	res.From = installed
	cur, err := parseVersion(installed)
	if err != nil {
		return res, errcode.Wrap(CodeNoPackage, err, "the installed version %q cannot be compared", installed)
	}
	entry, err := pick(cat, o.Arch, o.Version)
	if err != nil {
		return res, err
	}
	res.To = entry.Version
	want, _ := parseVersion(entry.Version)
	switch c := want.Compare(cur); {
	case c == 0:
		return res, errcode.New(CodeUpToDate, "arcagent %s is installed: nothing to do", installed)
	case c < 0:
		return res, errcode.New(CodeDowngrade, "catalog version %s is lower than the installed %s: a downgrade is refused", entry.Version, installed)
	}
	if o.DryRun {
		res.step("plan", "skipped", "would install arcagent %s (%s, %d bytes, sha256 %s) over %s", entry.Version, entry.URL, entry.Size, entry.SHA256, installed)
		return res, nil
	}

	cache, err := ensureCache(o.Layout.Path(CacheDir))
	if err != nil {
		return res, err
	}
	dl := downloader{client: o.HTTPClient, dir: cache}
	pkg, err := dl.fetch(ctx, entry, o.Arch)
	if err != nil {
		return res, err
	}
	res.Package = pkg
	res.step("download", "done", "%s: %d bytes, sha256 matches the signed catalog", filepath.Base(pkg), entry.Size)

	prev, err := dl.previous(ctx, cat, o.Arch, installed)
	switch {
	case err == nil:
		res.Previous = prev
		res.step("rollback-package", "done", "%s kept to roll back to", filepath.Base(prev))
	case o.NoRollback:
		res.step("rollback-package", "skipped", "--no-rollback: %v", err)
	default:
		return res, err
	}

	units, err := sys.ActiveUnits(ctx, RestartOrder)
	if err != nil {
		return res, err
	}
	pids := mainPIDs(ctx, sys, units)
	if err := sys.Install(ctx, pkg); err != nil {
		res.step("install", "failed", "%v", err)
		if prev != "" {
			if rerr := sys.Install(ctx, prev); rerr != nil {
				return res, errcode.Wrap(CodeRollbackFail, rerr, "installing %s failed (%v) and reinstalling %s failed too", pkg, err, prev)
			}
			res.RolledBack = true
			res.step("rollback", "done", "reinstalled %s", installed)
		}
		return res, errcode.Wrap(CodeInstallFailed, err, "dpkg could not install arcagent %s", entry.Version)
	}
	res.step("install", "done", "arcagent %s installed", entry.Version)

	if !sys.Running() {
		res.Upgraded = true
		res.step("restart", "skipped", "no service manager is running here (a chroot or an image): start the services when the machine boots")
		prune(cache, pkg, prev)
		return res, nil
	}
	if len(units) == 0 {
		res.Upgraded = true
		res.step("restart", "skipped", "none of %v was running", RestartOrder)
		prune(cache, pkg, prev)
		return res, nil
	}
	failed, here, err := restart(ctx, sys, units, pids, o.StartTimeout)
	if err == nil {
		res.Upgraded = true
		res.Restarted = units
		var byPkg []string
		for _, u := range units {
			if !slices.Contains(here, u) {
				byPkg = append(byPkg, u)
			}
		}
		res.step("restart", "done", "%v run the new version (restarted here: %v; by the package's postinst: %v)", units, here, byPkg)
		prune(cache, pkg, prev)
		return res, nil
	}
	res.step("restart", "failed", "%s: %v", failed, err)
	o.Log.Warn("upgrade: a service did not start, rolling back", "unit", failed, "err", err)
	if prev == "" {
		return res, errcode.Wrap(CodeStartFailed, err, "%s did not start after the upgrade to %s, and there is no package of %s to roll back to (--no-rollback)", failed, entry.Version, installed)
	}
	pids = mainPIDs(ctx, sys, units)
	if rerr := sys.Install(ctx, prev); rerr != nil {
		return res, errcode.Wrap(CodeRollbackFail, rerr, "%s did not start after the upgrade to %s (%v), and reinstalling %s failed", failed, entry.Version, err, prev)
	}
	if f2, _, rerr := restart(ctx, sys, units, pids, o.StartTimeout); rerr != nil {
		return res, errcode.Wrap(CodeRollbackFail, rerr, "%s did not start after the upgrade to %s (%v); %s was reinstalled but %s does not start either", failed, entry.Version, err, installed, f2)
	}
	res.RolledBack = true
	res.step("rollback", "done", "reinstalled %s and restarted %v", installed, units)
	return res, errcode.Wrap(CodeStartFailed, err, "%s did not start after the upgrade to %s: rolled back to %s", failed, entry.Version, installed)
}

// parseVersion reads a catalog or dpkg version: a Debian "~" (sorts
// before the release, as 1.2.3~rc.1) is a semver pre-release.
func parseVersion(s string) (releases.Version, error) {
	return releases.ParseVersion(strings.Replace(s, "~", "-", 1))
}

func mainPIDs(ctx context.Context, sys System, units []string) map[string]int {
	pids := map[string]int{}
	for _, u := range units {
		pids[u] = sys.MainPID(ctx, u)
	}
	return pids
}

// restart makes units run the installed version, in order, and waits for
// each to run; it returns the first unit that did not. A unit whose main
// process is still the one from before the install (pids) is restarted
// here; one the package's postinst restarted already (a new main process,
// or none when its restart failed) is only waited for, so no service is
// restarted twice. It also returns the units restarted here.
func restart(ctx context.Context, sys System, units []string, pids map[string]int, timeout time.Duration) (string, []string, error) {
	if err := sys.Reload(ctx); err != nil {
		return "daemon-reload", nil, err
	}
	var here []string
	for _, u := range units {
		if pid := sys.MainPID(ctx, u); pid != 0 && pid == pids[u] {
			if err := sys.Restart(ctx, u); err != nil {
				return u, here, err
			}
			here = append(here, u)
		}
		if err := sys.WaitRunning(ctx, u, timeout); err != nil {
			return u, here, err
		}
	}
	return "", here, nil
}

// pick returns the catalog entry of the agent package for arch: version
// want, or the newest release (pre-releases only when asked for by name).
func pick(cat *signing.Catalog, arch, want string) (signing.CatalogEntry, error) {
	var wantV releases.Version
	if want != "" {
		v, err := parseVersion(want)
		if err != nil {
			return signing.CatalogEntry{}, errcode.Wrap(errcode.Usage, err, "--version %q", want)
		}
		wantV = v
	}
	var best *signing.CatalogEntry
	var bestV releases.Version
	var seen []string
	for i := range cat.Entries {
		e := &cat.Entries[i]
		if releases.ProductName(e.Name) != Product || e.Annotations[ArchAnnotation] != arch {
			continue
		}
		v, err := parseVersion(e.Version)
		if err != nil || e.URL == "" || e.SHA256 == "" || e.Size <= 0 {
			continue // not an installable package entry
		}
		seen = append(seen, e.Version)
		if want != "" {
			if v.Compare(wantV) == 0 {
				return *e, nil
			}
			continue
		}
		if v.Prerelease() || e.Annotations["prerelease"] == "true" {
			continue
		}
		if best == nil || v.Compare(bestV) > 0 {
			best, bestV = e, v
		}
	}
	if best != nil {
		return *best, nil
	}
	slices.Sort(seen)
	if want != "" {
		return signing.CatalogEntry{}, errcode.New(CodeNoPackage, "catalog %q version %d has no arcagent %s package for %s (it has: %v)", cat.Name, cat.Version, want, arch, seen)
	}
	return signing.CatalogEntry{}, errcode.New(CodeNoPackage, "catalog %q version %d has no arcagent package for %s (entries need url, sha256, size and the annotation arch=%s)", cat.Name, cat.Version, arch, arch)
}

// ensureCache creates the download cache root-only, and refuses one that
// is a link or that others may write.
func ensureCache(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", errcode.Wrap(CodeDownload, err, "create the package cache %s", dir)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", errcode.Wrap(CodeDownload, err, "package cache %s", dir)
	}
	if !fi.IsDir() {
		return "", errcode.New(CodeDownload, "package cache %s is not a directory", dir)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", errcode.Wrap(CodeDownload, err, "make the package cache %s root-only", dir)
	}
	if err := checkOwner(fi); err != nil {
		return "", errcode.Wrap(CodeDownload, err, "package cache %s", dir)
	}
	return dir, nil
}
