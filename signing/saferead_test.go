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
	"time"

	"github.com/arcagent/arcagent/internal/saferead"
)

// noHang fails the test if f has not returned after 10s: a hang detector
// for FIFOs (os.Open of a FIFO blocks until a writer comes), not a timing.
func noHang(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the read hung")
	}
}

func mkfifo(t *testing.T, p string) {
	t.Helper()
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Key files, envelopes and packages the user names may be links, but a
// FIFO or device among them is refused at once with the path named.
func TestUserNamedFilesRefuseFIFOsAndDevices(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "key.pem")
	mkfifo(t, fifo)
	zero := filepath.Join(dir, "zero.pem")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	kp, err := GenerateKey(AlgEd25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "real.pub")
	if err := os.WriteFile(pub, kp.PublicPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.pub")
	if err := os.Symlink(pub, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, zero} {
		for name, call := range map[string]func() error{
			"LoadPublicKeyFile": func() error { _, _, err := LoadPublicKeyFile(p); return err },
			"LoadSigner":        func() error { _, err := LoadSigner(p, nil); return err },
			"ReadEnvelopeFile":  func() error { _, err := ReadEnvelopeFile(p); return err },
			"HashFile":          func() error { _, _, err := HashFile(context.Background(), p); return err },
		} {
			t.Run(name+"/"+filepath.Base(p), func(t *testing.T) {
				var err error
				noHang(t, func() { err = call() })
				if !errors.Is(err, saferead.ErrNotRegular) || !strings.Contains(err.Error(), p) {
					t.Errorf("err = %v", err)
				}
			})
		}
	}
	// A link the user names is followed.
	if _, _, err := LoadPublicKeyFile(link); err != nil {
		t.Errorf("a linked public key was refused: %v", err)
	}
}

// Catalog state is read inside the state directory: a FIFO, a link to
// /dev/zero and an absolute link to a file elsewhere are all refused as
// corrupt state (never read, never blocked on, never taken as "no state").
func TestCatalogStateConfined(t *testing.T) {
	elsewhere := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(elsewhere, []byte(`{"name":"agent","version":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		make func(p string) error
		want string
	}{
		{"FIFO", func(p string) error { return syscall.Mkfifo(p, 0o644) }, "is a FIFO"},
		{"link to /dev/zero", func(p string) error { return os.Symlink("/dev/zero", p) }, "is a symbolic link"},
		{"absolute link out", func(p string) error { return os.Symlink(elsewhere, p) }, "is a symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := CatalogStatePath(dir, "agent")
			if err := tc.make(p); err != nil {
				t.Fatal(err)
			}
			var st *CatalogState
			var err error
			noHang(t, func() { st, err = LoadCatalogState(dir, "agent") })
			if st != nil || !errors.Is(err, CodeTrustCorrupt) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("LoadCatalogState = %+v, %v", st, err)
			}
		})
	}
	if st, err := LoadCatalogState(t.TempDir(), "agent"); st != nil || err != nil {
		t.Errorf("no state file: %+v, %v", st, err)
	}
}
