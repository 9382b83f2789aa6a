//go:build !windows

package himds

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Whatever someone who can write the tokens directory puts under a spent
// realm's name (a link out of the directory, a FIFO, another file) or does
// to a spent file, HIMDS never touches it again: every realm names a fresh
// regular 0640 file with a new secret, and nothing outside the tokens
// directory is read or written.
func TestSpentRealmTampered(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "shadow")
	const outsideText = "root:secret-hash:19000::::::\n"
	for _, tc := range []struct {
		name string
		// tamper plants something at the spent realm; it returns a path
		// outside the tokens directory that must not receive a secret, or "".
		tamper func(t *testing.T, spent string) string
	}{
		{"symlink out of the directory", func(t *testing.T, spent string) string {
			must(t, os.Symlink(outside, spent))
			return ""
		}},
		{"another file in its place", func(t *testing.T, spent string) string {
			must(t, os.WriteFile(spent, []byte("planted"), 0o640))
			return spent
		}},
		{"hard link to a file outside", func(t *testing.T, spent string) string {
			must(t, os.Link(outside, spent))
			return ""
		}},
		{"a FIFO in its place", func(t *testing.T, spent string) string {
			must(t, unix.Mkfifo(spent, 0o640))
			return ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			must(t, os.WriteFile(outside, []byte(outsideText), 0o600))
			f := newFixture(t, nil)
			spent := f.challenge(t, tokenPath)
			secret, err := os.ReadFile(spent)
			must(t, err)
			if resp, body := f.get(t, tokenPath, map[string]string{"Authorization": "Basic " + string(secret)}); resp.StatusCode != 200 {
				t.Fatalf("token: %d %v", resp.StatusCode, body)
			}
			if _, err := os.Lstat(spent); !os.IsNotExist(err) {
				t.Fatalf("the spent realm %s still exists after its secret was redeemed: %v", spent, err)
			}
			watch := tc.tamper(t, spent)
			for i := 0; i < 3; i++ {
				realm := f.challenge(t, tokenPath)
				if realm == spent {
					t.Fatalf("the spent realm %s was handed out again", spent)
				}
				fi, err := os.Lstat(realm)
				if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o640 {
					t.Fatalf("realm %s: %v %v, want a regular 0640 file", realm, fi, err)
				}
				if st := fi.Sys().(*syscall.Stat_t); st.Nlink != 1 {
					t.Fatalf("realm %s has %d links, want 1", realm, st.Nlink)
				}
				secret, _ := os.ReadFile(realm)
				if len(secret) != 64 {
					t.Fatalf("realm holds %q, want a 64-character secret", secret)
				}
				if resp, body := f.get(t, tokenPath, map[string]string{"Authorization": "Basic " + string(secret)}); resp.StatusCode != 200 {
					t.Fatalf("second leg: %d %v", resp.StatusCode, body)
				}
				if watch != "" {
					if b, _ := os.ReadFile(watch); string(b) == string(secret) {
						t.Errorf("%s received a new secret", watch)
					}
				}
			}
			f.svc.ch.sweep()
			if b, _ := os.ReadFile(outside); string(b) != outsideText {
				t.Errorf("the file outside the tokens directory now holds %q", b)
			}
			if _, err := os.Lstat(spent); err != nil {
				t.Errorf("HIMDS removed the entry someone planted at a spent realm: %v", err)
			}
		})
	}
}

func TestTokensDir(t *testing.T) {
	dir := t.TempDir()
	d, err := openTokensDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := d.create("a.key", 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	must(t, os.WriteFile(filepath.Join(dir, "b.key"), []byte("b"), 0o600))
	must(t, os.Symlink(filepath.Join(dir, "b.key"), filepath.Join(dir, "link.key")))
	must(t, os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "dangling.key")))

	if _, err := d.create("a.key", 0o640); !errors.Is(err, unix.EEXIST) {
		t.Errorf("create over an existing file: %v, want EEXIST", err)
	}
	if _, err := d.create("link.key", 0o640); !errors.Is(err, unix.EEXIST) {
		t.Errorf("create over a symlink: %v, want EEXIST", err)
	}
	if _, err := d.create("dangling.key", 0o640); !errors.Is(err, unix.EEXIST) {
		t.Errorf("create over a dangling symlink: %v, want EEXIST", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere")); !os.IsNotExist(err) {
		t.Errorf("create followed a dangling symlink: %v", err)
	}
	must(t, pwriteAll(fd, []byte("secret")))
	if b, _ := os.ReadFile(filepath.Join(dir, "a.key")); string(b) != "secret" {
		t.Errorf("a.key holds %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b.key")); string(b) != "b" {
		t.Errorf("b.key was changed: %q", b)
	}
	if !d.same() {
		t.Error("same: the directory was not replaced")
	}
	must(t, os.Rename(dir, dir+".old"))
	must(t, os.Mkdir(dir, 0o710))
	if d.same() {
		t.Error("same: the directory was replaced")
	}
	d.close()
	if err := d.remove("a.key"); !errors.Is(err, errDirClosed) {
		t.Errorf("remove after close: %v", err)
	}
	d.close() // twice is harmless
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A process that still has a spent secret file open (or mapped) must not
// read the secrets of later challenges through it: every secret goes into
// a file of its own. Otherwise one open, made while in group himds, would
// read later secrets under realms it was never given, after dropping the
// group or handing the descriptor on.
func TestSpentSecretFileHeldOpen(t *testing.T) {
	for _, tc := range []struct {
		name string
		// hold keeps the file at realm readable and returns a reader of
		// its current contents.
		hold func(t *testing.T, realm string) func() string
	}{
		{"open descriptor", func(t *testing.T, realm string) func() string {
			fh, err := os.Open(realm)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { fh.Close() })
			return func() string {
				b := make([]byte, 64)
				n, _ := fh.ReadAt(b, 0)
				return string(b[:n])
			}
		}},
		{"mapping of a closed descriptor", func(t *testing.T, realm string) func() string {
			fh, err := os.Open(realm)
			if err != nil {
				t.Fatal(err)
			}
			m, err := unix.Mmap(int(fh.Fd()), 0, 64, unix.PROT_READ, unix.MAP_SHARED)
			fh.Close()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Munmap(m) })
			return func() string { return string(m) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			realm := f.challenge(t, tokenPath)
			read := tc.hold(t, realm)
			secret := read()
			if resp, body := f.get(t, tokenPath, map[string]string{"Authorization": "Basic " + secret}); resp.StatusCode != http.StatusOK {
				t.Fatalf("second leg: %d %v", resp.StatusCode, body)
			}
			realm2 := f.challenge(t, tokenPath)
			secret2, err := os.ReadFile(realm2)
			if err != nil || len(secret2) != 64 {
				t.Fatalf("realm %s: %q %v", realm2, secret2, err)
			}
			if read() == string(secret2) {
				t.Errorf("the secret of %s is readable through the file of the spent realm %s", realm2, realm)
			}
			if resp, body := f.get(t, tokenPath, map[string]string{"Authorization": "Basic " + string(secret2)}); resp.StatusCode != http.StatusOK {
				t.Fatalf("second secret: %d %v", resp.StatusCode, body)
			}
		})
	}
}

// Requests still served after Run returned (the HTTP server drains after
// Run's context is done) leave no used secret file behind: no sweep will
// come to remove it.
func TestNoUsedFilesAfterRun(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.svc.Run(ctx); close(done) }()
	cancel()
	<-done
	for i := 0; i < 3; i++ {
		if resp, body := f.token(t, tokenPath); resp.StatusCode != http.StatusOK {
			t.Fatalf("token %d: %d %v", i, resp.StatusCode, body)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(f.l.TokensDir(), "*.key")); len(m) != 0 {
		t.Errorf("%d used secret files left after Run returned: %v", len(m), m)
	}
}
