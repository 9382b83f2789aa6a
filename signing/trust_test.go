//go:build !windows

package signing

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/arcagent/arcagent/errcode"
)

func TestTrustStoreAddListRemove(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "trust")
	k1, k2 := newTestKey(t, AlgECDSAP256), newTestKey(t, AlgEd25519)
	if _, err := AddTrustedKey(ctx, dir, AddKeyOptions{Name: "contoso", PublicKeyPEM: k1.pubPEM, Publishers: []string{"Contoso.Monitoring", "contoso.monitoring", "Contoso"}}, trustOpts()...); err != nil {
		t.Fatal(err)
	}
	if _, err := AddTrustedKey(ctx, dir, AddKeyOptions{Name: "fabrikam", PublicKeyPEM: k2.pubPEM, Catalogs: []string{"agent"}}, trustOpts()...); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts AddKeyOptions
		want error
	}{
		{"name taken", AddKeyOptions{Name: "contoso", PublicKeyPEM: newTestKey(t, AlgEd25519).pubPEM, Publishers: []string{"X"}}, CodeTrustKeyUnknown},
		{"key trusted under another name", AddKeyOptions{Name: "again", PublicKeyPEM: k1.pubPEM, Publishers: []string{"X"}}, CodeTrustKeyUnknown},
		{"nothing allowed", AddKeyOptions{Name: "idle", PublicKeyPEM: newTestKey(t, AlgEd25519).pubPEM}, CodeTrustKeyUnknown},
		{"bad name", AddKeyOptions{Name: "../evil", PublicKeyPEM: k1.pubPEM, Publishers: []string{"X"}}, CodeTrustKeyUnknown},
		{"bad publisher", AddKeyOptions{Name: "p", PublicKeyPEM: newTestKey(t, AlgEd25519).pubPEM, Publishers: []string{"a b"}}, CodeBadPackageName},
		{"not a key", AddKeyOptions{Name: "junk", PublicKeyPEM: []byte("hello"), Publishers: []string{"X"}}, CodeBadKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := AddTrustedKey(ctx, dir, tc.opts, trustOpts()...); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	store, err := LoadTrustStore(dir, trustOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	if len(store.Keys) != 2 || store.Keys[0].Name != "contoso" || store.Keys[1].Name != "fabrikam" {
		t.Fatalf("keys %+v", store.Keys)
	}
	if c := store.Keys[0]; len(c.Publishers) != 2 || !c.AllowsPublisher("CONTOSO.MONITORING") || c.AllowsPublisher("Fabrikam") || !strings.HasPrefix(c.KeyID, "sha256:") {
		t.Fatalf("entry %+v", c)
	}
	fi, err := os.Stat(filepath.Join(dir, "contoso.key.json"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("entry file mode %v err %v", fi.Mode(), err)
	}
	if err := RemoveTrustedKey(ctx, dir, "contoso", trustOpts()...); err != nil {
		t.Fatal(err)
	}
	if err := RemoveTrustedKey(ctx, dir, "contoso", trustOpts()...); !errors.Is(err, CodeTrustKeyUnknown) {
		t.Fatalf("second remove: %v", err)
	}
	store, _ = LoadTrustStore(dir, trustOpts()...)
	if len(store.Keys) != 1 {
		t.Fatalf("keys after remove: %d", len(store.Keys))
	}
}

func TestTrustStoreRefusedWhenInsecure(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		rootOnly bool
		break_   func(t *testing.T, dir string)
		opts     func() []TrustOption
		want     error
	}{
		{"world-writable directory", false, func(t *testing.T, dir string) { chmod(t, dir, 0o777) }, trustOpts, CodeTrustInsecure},
		{"group-writable entry", false, func(t *testing.T, dir string) { chmod(t, filepath.Join(dir, "k.key.json"), 0o664) }, trustOpts, CodeTrustInsecure},
		{"world-writable stray file", false, func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "notes"), nil, 0o666); err != nil {
				t.Fatal(err)
			}
			chmod(t, filepath.Join(dir, "notes"), 0o666)
		}, trustOpts, CodeTrustInsecure},
		{"symlinked entry", false, func(t *testing.T, dir string) {
			if err := os.Symlink("k.key.json", filepath.Join(dir, "l.key.json")); err != nil {
				t.Fatal(err)
			}
		}, trustOpts, CodeTrustInsecure},
		{"FIFO entry", false, func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "f.key.json"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, trustOpts, CodeTrustInsecure},
		{"entry is a link to /dev/zero", false, func(t *testing.T, dir string) {
			if err := os.Symlink("/dev/zero", filepath.Join(dir, "z.key.json")); err != nil {
				t.Fatal(err)
			}
		}, trustOpts, CodeTrustInsecure},
		{"corrupt entry", false, func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "k.key.json"), []byte("{"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, trustOpts, CodeTrustCorrupt},
		{"entry named for another file", false, func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, "k.key.json"), filepath.Join(dir, "z.key.json")); err != nil {
				t.Fatal(err)
			}
		}, trustOpts, CodeTrustCorrupt},
		{"entry not owned by root", true, func(t *testing.T, dir string) {
			if err := os.Chown(filepath.Join(dir, "k.key.json"), 1000, 1000); err != nil {
				t.Fatal(err)
			}
		}, func() []TrustOption { return nil }, CodeTrustInsecure},
		{"directory not owned by root, allowed under --root", true, func(t *testing.T, dir string) {
			if err := os.Chown(dir, 1000, 1000); err != nil {
				t.Fatal(err)
			}
		}, func() []TrustOption { return []TrustOption{AllowNonRootOwner(func(string) {})} }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rootOnly && os.Geteuid() != 0 {
				t.Skip("needs root to change ownership")
			}
			dir := filepath.Join(t.TempDir(), "trust")
			if _, err := AddTrustedKey(ctx, dir, AddKeyOptions{Name: "k", PublicKeyPEM: newTestKey(t, AlgEd25519).pubPEM, Publishers: []string{"P"}}, trustOpts()...); err != nil {
				t.Fatal(err)
			}
			tc.break_(t, dir)
			var err error
			noHang(t, func() { _, err = LoadTrustStore(dir, tc.opts()...) })
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == CodeTrustInsecure && !strings.Contains(err.Error(), dir) {
				t.Fatalf("error does not name the path: %v", err)
			}
		})
	}
}

func TestTrustStoreMissingIsEmpty(t *testing.T) {
	s, err := LoadTrustStore(filepath.Join(t.TempDir(), "none"))
	if err != nil || len(s.Keys) != 0 {
		t.Fatalf("store %+v err %v", s, err)
	}
}

// TestTrustStoreOwnedBySelf: a command not run as root trusts a store its
// own user owns (the fleet currency of an operator's own catalog keys),
// without AllowNonRootOwner; a group- or world-writable one stays refused.
func TestTrustStoreOwnedBySelf(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("as root only a root-owned store is trusted (TestAllowNonRootOwnerWarns, TestTrustStoreOwnership)")
	}
	dir := t.TempDir()
	chmod(t, dir, 0o755)
	if _, err := LoadTrustStore(dir); err != nil {
		t.Fatalf("a store owned by the caller was refused: %v", err)
	}
	chmod(t, dir, 0o775)
	if _, err := LoadTrustStore(dir); !errcode.Is(err, CodeTrustInsecure) {
		t.Fatalf("a group-writable store: %v, want %s", err, CodeTrustInsecure)
	}
}

func TestAllowNonRootOwnerWarns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change ownership")
	}
	dir := t.TempDir()
	if err := os.Chown(dir, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	var warned []string
	if _, err := LoadTrustStore(dir, AllowNonRootOwner(func(m string) { warned = append(warned, m) })); err != nil {
		t.Fatal(err)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "ownership check skipped") {
		t.Fatalf("warnings %q", warned)
	}
}

func chmod(t *testing.T, p string, m os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
}
