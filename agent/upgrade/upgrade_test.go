package upgrade

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/signing"
)

// fakeSystem stands for dpkg and systemd: it records what was installed
// and restarted, and fails a unit's start when the installed package is
// one of failOn.
type fakeSystem struct {
	installed string
	running   bool
	active    []string
	failOn    []string // package base names whose services do not start
	badDpkg   []string // package base names dpkg refuses
	installs  []string
	restarts  []string
	// postinst restarts the running services itself, as the package's does.
	postinst bool
	pid      int
}

func (f *fakeSystem) InstalledVersion(context.Context) (string, error) { return f.installed, nil }
func (f *fakeSystem) Install(_ context.Context, pkg string) error {
	base := filepath.Base(pkg)
	f.installs = append(f.installs, base)
	if slices.Contains(f.badDpkg, base) {
		return errors.New("dpkg: error processing archive")
	}
	f.installed = strings.Split(base, "_")[1]
	if f.postinst && f.running {
		f.pid++
	}
	return nil
}
func (f *fakeSystem) MainPID(context.Context, string) int { return 100 + f.pid }
func (f *fakeSystem) Running() bool                       { return f.running }
func (f *fakeSystem) ActiveUnits(_ context.Context, units []string) ([]string, error) {
	var out []string
	for _, u := range units {
		if slices.Contains(f.active, u) {
			out = append(out, u)
		}
	}
	return out, nil
}
func (f *fakeSystem) Reload(context.Context) error { return nil }
func (f *fakeSystem) Restart(_ context.Context, unit string) error {
	f.restarts = append(f.restarts, unit)
	return nil
}
func (f *fakeSystem) WaitRunning(_ context.Context, unit string, _ time.Duration) error {
	for _, p := range f.failOn {
		if strings.Split(p, "_")[1] == f.installed && unit == "himdsd" {
			return errors.New("himdsd.service failed")
		}
	}
	return nil
}

type pkgFile struct {
	version string
	arch    string
	body    string
	tamper  string // served bytes differ from the signed ones
}

// setup writes the package files and a catalog signed by a key the trust
// store in the root trusts.
func setup(t *testing.T, pkgs []pkgFile) (layout.Layout, *signing.TrustStore, string) {
	t.Helper()
	root := t.TempDir()
	l := layout.New(root)
	kp, err := signing.GenerateKey(signing.AlgECDSAP256, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := []signing.TrustOption{signing.AllowNonRootOwner(func(string) {})}
	if _, err := signing.AddTrustedKey(context.Background(), l.TrustDir(), signing.AddKeyOptions{Name: "rel", PublicKeyPEM: kp.PublicPEM, Catalogs: []string{"releases"}}, opts...); err != nil {
		t.Fatal(err)
	}
	store, err := signing.LoadTrustStore(l.TrustDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := t.TempDir()
	cat := &signing.Catalog{Name: "releases", Version: 1, Expires: time.Now().Add(time.Hour)}
	for _, p := range pkgs {
		file := filepath.Join(srv, "arcagent_"+p.version+"_"+p.arch+".deb")
		served := p.body
		if p.tamper != "" {
			served = p.tamper
		}
		if err := os.WriteFile(file, []byte(served), 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(p.body))
		cat.Entries = append(cat.Entries, signing.CatalogEntry{Name: Product, Version: p.version, URL: "file://" + file,
			SHA256: hex.EncodeToString(sum[:]), Size: int64(len(p.body)), Annotations: map[string]string{ArchAnnotation: p.arch}})
	}
	signer, err := signing.ParseSigner(kp.PrivatePEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signing.SignCatalog(cat, signer)
	if err != nil {
		t.Fatal(err)
	}
	catFile := filepath.Join(srv, "releases.sig.json")
	if err := os.WriteFile(catFile, env, 0o644); err != nil {
		t.Fatal(err)
	}
	return l, store, catFile
}

func TestRun(t *testing.T) {
	v1 := pkgFile{version: "1.0.0", arch: "amd64", body: "package one"}
	v2 := pkgFile{version: "2.0.0", arch: "amd64", body: "package two"}
	v2arm := pkgFile{version: "2.0.0", arch: "arm64", body: "package two arm"}
	v3bad := pkgFile{version: "3.0.0", arch: "amd64", body: "package three", tamper: "package thrEE"}
	v3long := pkgFile{version: "3.0.0", arch: "amd64", body: "package three", tamper: "package three and more"}
	tests := []struct {
		name      string
		pkgs      []pkgFile
		sys       fakeSystem
		version   string
		noRB      bool
		dryRun    bool
		code      errcode.Code
		installs  []string
		restarts  []string
		installed string
	}{
		{name: "v1 to v2 in a chroot", pkgs: []pkgFile{v1, v2, v2arm}, sys: fakeSystem{installed: "1.0.0"},
			installs: []string{"arcagent_2.0.0_amd64.deb"}, installed: "2.0.0"},
		{name: "v1 to v2 restarts the running services in order", pkgs: []pkgFile{v1, v2},
			sys:      fakeSystem{installed: "1.0.0", running: true, active: []string{"gcad", "himdsd", "arcproxyd"}},
			installs: []string{"arcagent_2.0.0_amd64.deb"}, restarts: []string{"arcproxyd", "himdsd", "gcad"}, installed: "2.0.0"},
		{name: "services the package restarted are not restarted again", pkgs: []pkgFile{v1, v2},
			sys:      fakeSystem{installed: "1.0.0", running: true, postinst: true, active: []string{"himdsd", "extd"}},
			installs: []string{"arcagent_2.0.0_amd64.deb"}, installed: "2.0.0"},
		{name: "a service that does not start rolls back", pkgs: []pkgFile{v1, v2},
			sys:  fakeSystem{installed: "1.0.0", running: true, active: []string{"himdsd"}, failOn: []string{"arcagent_2.0.0_amd64.deb"}},
			code: CodeStartFailed, installs: []string{"arcagent_2.0.0_amd64.deb", "arcagent_1.0.0_amd64.deb"},
			restarts: []string{"himdsd", "himdsd"}, installed: "1.0.0"},
		{name: "dpkg failure reinstalls the previous", pkgs: []pkgFile{v1, v2},
			sys:  fakeSystem{installed: "1.0.0", badDpkg: []string{"arcagent_2.0.0_amd64.deb"}},
			code: CodeInstallFailed, installs: []string{"arcagent_2.0.0_amd64.deb", "arcagent_1.0.0_amd64.deb"}, installed: "1.0.0"},
		{name: "tampered bytes", pkgs: []pkgFile{v1, v2, v3bad}, sys: fakeSystem{installed: "2.0.0"}, code: CodeTampered, installed: "2.0.0"},
		{name: "longer file", pkgs: []pkgFile{v1, v3long}, sys: fakeSystem{installed: "1.0.0"}, code: CodeTampered, installed: "1.0.0"},
		{name: "downgrade", pkgs: []pkgFile{v1}, sys: fakeSystem{installed: "2.0.0"}, code: CodeDowngrade, installed: "2.0.0"},
		{name: "downgrade by --version", pkgs: []pkgFile{v1, v2}, version: "1.0.0", sys: fakeSystem{installed: "2.0.0"}, code: CodeDowngrade, installed: "2.0.0"},
		{name: "up to date", pkgs: []pkgFile{v1, v2}, sys: fakeSystem{installed: "2.0.0"}, code: CodeUpToDate, installed: "2.0.0"},
		{name: "unknown version", pkgs: []pkgFile{v1, v2}, version: "9.9", sys: fakeSystem{installed: "1.0.0"}, code: CodeNoPackage, installed: "1.0.0"},
		{name: "no package for the arch", pkgs: []pkgFile{v2arm}, sys: fakeSystem{installed: "1.0.0"}, code: CodeNoPackage, installed: "1.0.0"},
		{name: "no rollback package", pkgs: []pkgFile{v2}, sys: fakeSystem{installed: "1.0.0"}, code: CodeNoRollback, installed: "1.0.0"},
		{name: "--no-rollback", pkgs: []pkgFile{v2}, noRB: true, sys: fakeSystem{installed: "1.0.0"},
			installs: []string{"arcagent_2.0.0_amd64.deb"}, installed: "2.0.0"},
		{name: "a Debian pre-release sorts before its release", pkgs: []pkgFile{{version: "1.0.0~rc.1", arch: "amd64", body: "rc"}, v1},
			sys: fakeSystem{installed: "1.0.0~rc.1"}, installs: []string{"arcagent_1.0.0_amd64.deb"}, installed: "1.0.0"},
		{name: "dry run", pkgs: []pkgFile{v1, v2}, dryRun: true, sys: fakeSystem{installed: "1.0.0"}, installed: "1.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, store, cat := setup(t, tt.pkgs)
			sys := tt.sys
			res, err := Run(context.Background(), Options{Layout: l, Catalog: cat, Trust: store, Arch: "amd64",
				Version: tt.version, NoRollback: tt.noRB, DryRun: tt.dryRun, System: &sys})
			if tt.code == "" && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tt.code != "" && !errcode.Is(err, tt.code) {
				t.Fatalf("Run: err = %v, want %s", err, tt.code)
			}
			if !slices.Equal(sys.installs, tt.installs) {
				t.Errorf("installs = %v, want %v", sys.installs, tt.installs)
			}
			if !slices.Equal(sys.restarts, tt.restarts) {
				t.Errorf("restarts = %v, want %v", sys.restarts, tt.restarts)
			}
			if sys.installed != tt.installed {
				t.Errorf("installed = %s, want %s", sys.installed, tt.installed)
			}
			if tt.code == CodeStartFailed && !res.RolledBack {
				t.Errorf("result does not say rolled back: %+v", res)
			}
			if tt.code == CodeTampered {
				ents, _ := os.ReadDir(l.Path(CacheDir))
				for _, e := range ents {
					if strings.Contains(e.Name(), "3.0.0") || strings.HasPrefix(e.Name(), ".download") {
						t.Errorf("a refused download was kept: %s", e.Name())
					}
				}
			}
			if fi, err := os.Stat(l.Path(CacheDir)); err == nil && fi.Mode().Perm() != 0o700 {
				t.Errorf("cache mode %v", fi.Mode().Perm())
			}
		})
	}
}

// TestRollbackFromCache: the previous upgrade's package, kept in the cache,
// is the way back when the catalog no longer lists the installed version.
func TestRollbackFromCache(t *testing.T) {
	v1 := pkgFile{version: "1.0.0", arch: "amd64", body: "one"}
	v2 := pkgFile{version: "2.0.0", arch: "amd64", body: "two"}
	l, store, cat := setup(t, []pkgFile{v2})
	if err := os.MkdirAll(l.Path(CacheDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.Path(CacheDir), "arcagent_1.0.0_amd64.deb"), []byte(v1.body), 0o600); err != nil {
		t.Fatal(err)
	}
	sys := &fakeSystem{installed: "1.0.0"}
	res, err := Run(context.Background(), Options{Layout: l, Catalog: cat, Trust: store, Arch: "amd64", System: sys})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(res.Previous) != "arcagent_1.0.0_amd64.deb" || !res.Upgraded {
		t.Errorf("result %+v", res)
	}
}
