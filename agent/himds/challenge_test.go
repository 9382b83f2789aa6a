package himds

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/internal/testutil"
	"golang.org/x/sys/unix"
)

// A used secret file is reused for the next challenge only if it is still
// the file HIMDS holds open: whatever someone put under its name (a link,
// another file) or took away, the next realm names a new regular file
// with a fresh secret, and nothing outside the tokens directory is read
// or written.
func TestUsedSecretFileTampered(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "shadow")
	const outsideText = "root:secret-hash:19000::::::\n"
	for _, tc := range []struct {
		name string
		// tamper changes the used file; it returns a path outside the
		// tokens directory that must not receive the next secret, or "".
		tamper func(t *testing.T, used string) string
	}{
		{"symlink out of the directory", func(t *testing.T, used string) string {
			must(t, os.Remove(used))
			must(t, os.Symlink(outside, used))
			return ""
		}},
		{"another file in its place", func(t *testing.T, used string) string {
			must(t, os.Remove(used))
			must(t, os.WriteFile(used, []byte("planted"), 0o640))
			return ""
		}},
		{"hard link to a file outside", func(t *testing.T, used string) string {
			must(t, os.Remove(used))
			must(t, os.Link(outside, used))
			return ""
		}},
		{"a FIFO in its place", func(t *testing.T, used string) string {
			must(t, os.Remove(used))
			must(t, unix.Mkfifo(used, 0o640))
			return ""
		}},
		{"made world-readable", func(t *testing.T, used string) string {
			must(t, os.Chmod(used, 0o644))
			return used
		}},
		{"linked elsewhere", func(t *testing.T, used string) string {
			copy := filepath.Join(t.TempDir(), "copy")
			must(t, os.Link(used, copy))
			return copy
		}},
		{"removed", func(t *testing.T, used string) string {
			must(t, os.Remove(used))
			return ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			must(t, os.WriteFile(outside, []byte(outsideText), 0o600))
			var logs testutil.Buffer
			f := newFixture(t, func(o *Options) { o.Log = slog.New(slog.NewTextHandler(&logs, nil)) })
			if resp, body := f.token(t, tokenPath); resp.StatusCode != 200 {
				t.Fatalf("token: %d %v", resp.StatusCode, body)
			}
			f.svc.ch.mu.Lock()
			if len(f.svc.ch.used) != 1 {
				t.Fatalf("%d used files, want 1", len(f.svc.ch.used))
			}
			used := filepath.Join(f.svc.ch.dir, f.svc.ch.used[0].name)
			f.svc.ch.mu.Unlock()
			watch := tc.tamper(t, used)

			realm := f.challenge(t, tokenPath)
			fi, err := os.Lstat(realm)
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o640 {
				t.Fatalf("realm %s: %v %v, want a regular 0640 file", realm, fi, err)
			}
			secret, _ := os.ReadFile(realm)
			if len(secret) != 64 {
				t.Fatalf("realm holds %q, want a 64-character secret", secret)
			}
			if resp, body := f.get(t, tokenPath, map[string]string{"Authorization": "Basic " + string(secret)}); resp.StatusCode != 200 {
				t.Fatalf("second leg: %d %v", resp.StatusCode, body)
			}
			if b, _ := os.ReadFile(outside); string(b) != outsideText {
				t.Errorf("the file outside the tokens directory now holds %q", b)
			}
			if watch != "" {
				if b, _ := os.ReadFile(watch); string(b) == string(secret) {
					t.Errorf("%s received the new secret", watch)
				}
			}
			if _, err := os.Lstat(used); !os.IsNotExist(err) {
				t.Errorf("the tampered entry %s is still there: %v", used, err)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "a used secret file") {
				t.Errorf("no warning about the tampered file; log:\n%s", logs.String())
			}
		})
	}
}

// A burst of challenges redeemed out of order keeps every realm unique
// and every secret single use, with files reused.
func TestChallengeReuseUnique(t *testing.T) {
	f := newFixture(t, nil)
	seen := map[string]bool{}
	for round := 0; round < 5; round++ {
		var realms []string
		for i := 0; i < 20; i++ {
			realm := f.challenge(t, tokenPath)
			if seen[realm] {
				t.Fatalf("realm %s handed out twice", realm)
			}
			seen[realm] = true
			realms = append(realms, realm)
		}
		for i := len(realms) - 1; i >= 0; i-- {
			secret, err := os.ReadFile(realms[i])
			if err != nil {
				t.Fatal(err)
			}
			auth := map[string]string{"Authorization": "Basic " + string(secret)}
			if resp, _ := f.get(t, tokenPath, auth); resp.StatusCode != http.StatusOK {
				t.Fatalf("round %d secret %d: %d", round, i, resp.StatusCode)
			}
			if resp, _ := f.get(t, tokenPath, auth); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("round %d secret %d used twice: %d", round, i, resp.StatusCode)
			}
		}
	}
	if m, _ := filepath.Glob(filepath.Join(f.svc.ch.dir, "*.key")); len(m) > 20 {
		t.Errorf("%d files for at most 20 outstanding challenges: files are not reused", len(m))
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

	if _, err := d.create("a.key", 0o640); !errors.Is(err, unix.EEXIST) {
		t.Errorf("create over an existing file: %v, want EEXIST", err)
	}
	if _, err := d.create("link.key", 0o640); !errors.Is(err, unix.EEXIST) {
		t.Errorf("create over a symlink: %v, want EEXIST", err)
	}
	if err := d.rename("a.key", "b.key"); !errors.Is(err, unix.EEXIST) {
		t.Errorf("rename over an existing file: %v, want EEXIST", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b.key")); string(b) != "b" {
		t.Errorf("b.key was replaced: %q", b)
	}
	if _, err := d.openWrite("link.key"); !errors.Is(err, unix.ELOOP) {
		t.Errorf("openWrite through a symlink: %v, want ELOOP", err)
	}
	must(t, unix.Mkfifo(filepath.Join(dir, "fifo.key"), 0o640))
	if _, err := d.openWrite("fifo.key"); !errors.Is(err, unix.ENXIO) {
		t.Errorf("openWrite of a FIFO without reader: %v, want ENXIO (and no hang)", err)
	}
	must(t, d.rename("a.key", "c.key"))
	wfd, err := d.openWrite("c.key")
	if err != nil {
		t.Fatalf("openWrite after rename: %v", err)
	}
	must(t, pwriteAll(wfd, []byte("secret")))
	unix.Close(wfd)
	if b, _ := os.ReadFile(filepath.Join(dir, "c.key")); string(b) != "secret" {
		t.Errorf("c.key holds %q", b)
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
	if err := d.remove("c.key"); !errors.Is(err, errDirClosed) {
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
// read the secrets of later challenges through it: the file is reused
// only when nobody else has it open. Otherwise one open, made while in
// group himds, would read every later secret written into that inode,
// under realms it was never given, after dropping the group or handing
// the descriptor on.
func TestReusedSecretFileHeldOpen(t *testing.T) {
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
		{"nobody", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			realm := f.challenge(t, tokenPath)
			var before unix.Stat_t
			must(t, unix.Stat(realm, &before))
			if tc.hold == nil {
				// Nobody holds the file: it is reused, same inode.
				secret, _ := os.ReadFile(realm)
				if resp, _ := f.get(t, tokenPath, map[string]string{"Authorization": "Basic " + string(secret)}); resp.StatusCode != http.StatusOK {
					t.Fatalf("second leg: %d", resp.StatusCode)
				}
				var after unix.Stat_t
				must(t, unix.Stat(f.challenge(t, tokenPath), &after))
				if after.Ino != before.Ino && leasesWork(t) {
					t.Errorf("a used file nobody holds was not reused")
				}
				return
			}
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

// leasesWork reports whether the test's file system grants write leases.
func leasesWork(t *testing.T) bool {
	fh, err := os.Create(filepath.Join(t.TempDir(), "lease"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	_, err = unix.FcntlInt(fh.Fd(), unix.F_SETLEASE, unix.F_WRLCK)
	return err == nil
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
