//go:build !windows

package atomicfile

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := WriteFile(p, []byte("one"), WriteOptions{Mode: 0o640}); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, p).Perm(); m != 0o640 {
		t.Errorf("new file mode = %o, want 640", m)
	}
	// Without Enforce an existing file keeps its mode.
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), WriteOptions{Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, p).Perm(); m != 0o600 {
		t.Errorf("rewritten file mode = %o, want 600 kept", m)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Errorf("content = %q", b)
	}
	// With Enforce it gets the requested mode back.
	if err := WriteFile(p, []byte("three"), WriteOptions{Mode: 0o640, Enforce: true}); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, p).Perm(); m != 0o640 {
		t.Errorf("enforced file mode = %o, want 640", m)
	}
	// A failing writer leaves the old file and no temporary file.
	err := Write(p, WriteOptions{}, func(w io.Writer) error {
		_, _ = w.Write([]byte("partial"))
		return errors.New("disk on fire")
	})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "three" {
		t.Errorf("old content lost: %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	err := WriteFile(filepath.Join(t.TempDir(), "no", "such", "f"), []byte("x"), WriteOptions{})
	if err == nil {
		t.Fatal("want an error for a missing directory")
	}
}

// A symbolic link at the target is replaced by a regular file with the
// requested mode; the link's target keeps its content and mode and lends
// the new file neither.
func TestWriteFileReplacesLink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "state.json")
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	for _, enforce := range []bool{false, true} {
		if err := WriteFile(p, []byte("new"), WriteOptions{Mode: 0o640, Enforce: enforce}); err != nil {
			t.Fatal(err)
		}
		m := mode(t, p)
		if !m.IsRegular() || m.Perm() != 0o640 {
			t.Errorf("enforce=%v: %s is %v, want a regular file with mode 0640", enforce, p, m)
		}
		if b, _ := os.ReadFile(target); string(b) != "precious" {
			t.Errorf("link target written: %q", b)
		}
		if m := mode(t, target).Perm(); m != 0o644 {
			t.Errorf("link target mode = %o", m)
		}
		os.Remove(p)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWriteFileOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing ownership needs root")
	}
	owner := func(p string) (uint32, uint32) {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return st.Uid, st.Gid
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "owned")
	if err := os.WriteFile(p, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("y"), WriteOptions{Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	if u, g := owner(p); u != 65534 || g != 65534 {
		t.Errorf("owner = %d:%d, want 65534:65534 kept", u, g)
	}
	root := Owner{User: "root", Group: "root"}
	if err := WriteFile(p, []byte("z"), WriteOptions{Mode: 0o600, Owner: root, Enforce: true}); err != nil {
		t.Fatal(err)
	}
	if u, g := owner(p); u != 0 || g != 0 {
		t.Errorf("enforced owner = %d:%d, want 0:0", u, g)
	}
	// A link to a file owned by someone else lends the new file nothing.
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(target, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(dir, "new")
	if err := os.Symlink(target, q); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(q, []byte("z"), WriteOptions{Mode: 0o640, Owner: root}); err != nil {
		t.Fatal(err)
	}
	if u, g := owner(q); u != 0 || g != 0 {
		t.Errorf("owner = %d:%d, want 0:0", u, g)
	}
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "localconfig.json")
	keep := []string{"localconfig.json", "other.json", ".other.json.tmp-1", "localconfig.json.tmp-2"}
	stale := []string{".localconfig.json.tmp-123", ".localconfig.json.tmp-"}
	for _, n := range append(keep, stale...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, ".localconfig.json.tmp-link")); err != nil {
		t.Fatal(err)
	}
	if err := RemoveStale(p); err != nil {
		t.Fatal(err)
	}
	var got []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != ".other.json.tmp-1,localconfig.json,localconfig.json.tmp-2,other.json" {
		t.Errorf("left %v", got)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("link target removed: %v", err)
	}
}

func TestLockExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	l, err := LockFile(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if m := mode(t, p+".lock"); !m.IsRegular() || m.Perm() != 0o600 {
		t.Errorf("lock file is %v, want a regular file 0600", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := LockFile(ctx, p); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock: err = %v, want the deadline", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := LockFile(context.Background(), p)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	if err := l2.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l2.Unlock(); err != nil {
		t.Errorf("second unlock: %v", err)
	}
}

// A symbolic link planted at the lock file is refused: its target is not
// created (nor opened).
func TestLockRefusesLink(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "localconfig.json")
	target := filepath.Join(dir, "created-by-root")
	if err := os.Symlink(target, p+".lock"); err != nil {
		t.Fatal(err)
	}
	l, err := LockFile(context.Background(), p)
	if err == nil {
		l.Unlock()
		t.Fatal("a symlinked lock file was accepted")
	}
	if !errors.Is(err, ErrUnsafeLock) || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("err = %v, want it to name the link", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("link target exists after the lock attempt: %v", err)
	}
}

func TestLockRefusesFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	if err := syscall.Mkfifo(p+".lock", 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	if l, err := LockFile(context.Background(), p); err == nil {
		l.Unlock()
		t.Fatal("a FIFO lock file was accepted")
	}
}

// TestWriteOutputIntoSpecialFiles: an output path that leads to a FIFO (as
// /dev/null, /dev/stdout or a terminal do to devices) is written in place;
// replacing it would, as root, turn /dev/null into a regular file.
func TestWriteOutputIntoSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	link := filepath.Join(dir, "stdout")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	// The test holds the FIFO open read-write (Linux never blocks on
	// that), so the write lands in the pipe's buffer with no reader
	// goroutine to race with.
	r, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, p := range []string{fifo, link} {
		if err := WriteFile(p, []byte("report\n"), WriteOptions{Mode: 0o644, Output: true}); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		buf := make([]byte, 64)
		if err := r.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := r.Read(buf)
		if err != nil || string(buf[:n]) != "report\n" {
			t.Fatalf("%s: the FIFO holds %q (%v)", p, buf[:n], err)
		}
		if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Fatalf("the FIFO was replaced: %v %v", fi.Mode(), err)
		}
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
}

// TestWriteOutputThroughLink: a link to a regular output file keeps
// being a link; the file it names gets the new content atomically.
func TestWriteOutputThroughLink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.json")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "latest.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(link, []byte("new"), WriteOptions{Mode: 0o644, Output: true}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(target); string(b) != "new" {
		t.Errorf("target holds %q", b)
	}
}

// TestWriteRefusesSpecialStateFile: a state file's path holding a FIFO
// (or a device) is refused, never replaced or written into.
func TestWriteRefusesSpecialStateFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "localconfig.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	err := WriteFile(fifo, []byte("{}"), WriteOptions{Mode: 0o640})
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("err = %v, want a refusal", err)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", fi.Mode(), err)
	}
}
