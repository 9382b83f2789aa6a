//go:build !windows

package saferead

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func mustWrite(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// noHang fails the test if f does not return within 10s (a FIFO opened
// without O_NONBLOCK blocks forever: this detects the hang, it measures
// nothing).
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

func TestReadFile(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	mustWrite(t, filepath.Join(outside, "machine-id"), []byte("host-id\n"))
	mustWrite(t, filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"))
	mustWrite(t, filepath.Join(root, "usr/lib/os-release"), []byte("ID=x\n"))
	mustWrite(t, filepath.Join(root, "big"), bytes.Repeat([]byte("a"), 2048))
	mustWrite(t, filepath.Join(root, "exact"), bytes.Repeat([]byte("a"), 1024))
	mustWrite(t, filepath.Join(root, "real/etc/x"), []byte("x"))
	for _, l := range [][2]string{
		{"/dev/zero", "etc/zero"},
		{filepath.Join(outside, "machine-id"), "etc/machine-id"},
		{"../usr/lib/os-release", "etc/os-release"},
		{"real/etc", "linkdir"},
		{"/etc", "absdir"},
		{"../../../../../../etc", "dotdir"},
	} {
		if err := os.Symlink(l[0], filepath.Join(root, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "etc/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	for _, tc := range []struct {
		name    string
		limit   int64
		want    string
		wantErr error
		inText  string
	}{
		{"/etc/passwd", ConfigLimit, "root:x:0:0::/root:/bin/sh\n", nil, ""},
		{"etc/passwd", ConfigLimit, "root:x:0:0::/root:/bin/sh\n", nil, ""},
		{"/etc/zero", ConfigLimit, "", ErrSymlink, "etc/zero is a symbolic link"},
		{"/etc/machine-id", ConfigLimit, "", ErrSymlink, "etc/machine-id"},
		{"/etc/os-release", ConfigLimit, "", ErrSymlink, ""},
		{"/etc/fifo", ConfigLimit, "", ErrNotRegular, "etc/fifo is a FIFO"},
		{"/etc", ConfigLimit, "", ErrNotRegular, ""},
		{"/big", 1024, "", ErrTooLarge, "big is larger than the 1 KiB read limit"},
		{"/exact", 1024, strings.Repeat("a", 1024), nil, ""},
		{"/linkdir/x", ConfigLimit, "x", nil, ""},
		{"/absdir/passwd", ConfigLimit, "", ErrEscapes, "absdir/passwd leads outside"},
		{"/dotdir/passwd", ConfigLimit, "", ErrEscapes, ""},
		{"/../../etc/passwd", ConfigLimit, "root:x:0:0::/root:/bin/sh\n", nil, ""},
		{"/missing", ConfigLimit, "", fs.ErrNotExist, "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []byte
			var err error
			noHang(t, func() { got, err = r.ReadFile(tc.name, tc.limit) })
			if tc.wantErr == nil {
				if err != nil || string(got) != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.inText) {
				t.Errorf("error %q does not say %q", err, tc.inText)
			}
			if len(got) != 0 {
				t.Errorf("a refused read returned %d bytes", len(got))
			}
		})
	}
}

// A FIFO with no writer must be refused at once, not wait for a writer.
func TestFIFODoesNotHang(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "localconfig.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	noHang(t, func() { _, err = r.ReadFile("localconfig.json", ConfigLimit) })
	if !errors.Is(err, ErrNotRegular) {
		t.Errorf("err = %v", err)
	}
}

// The live root follows an absolute link in a directory on the way.
func TestLiveRootFollowsAbsoluteDirLinks(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "real/f"), []byte("ok"))
	if err := os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "abs")); err != nil {
		t.Fatal(err)
	}
	r, err := Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.ReadFile(filepath.Join(dir, "abs/f"), ConfigLimit)
	if err != nil || string(got) != "ok" {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestDirWalkAndReuse(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "home/a/x.txt"), []byte("one"))
	mustWrite(t, filepath.Join(root, "home/a/y.txt"), []byte("two"))
	if err := os.Symlink("/", filepath.Join(root, "home/a/up")); err != nil {
		t.Fatal(err)
	}
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	home, err := r.OpenDir("/home")
	if err != nil {
		t.Fatal(err)
	}
	defer home.Close()
	a, err := home.Sub("a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Sub("up"); err == nil {
		t.Error("Sub must not follow a symlink")
	}
	if _, err := a.Sub("../.."); err == nil {
		t.Error("Sub must refuse ..")
	}
	buf, err := a.ReadFile("x.txt", nil, 10)
	if err != nil || string(buf) != "one" {
		t.Fatalf("%q %v", buf, err)
	}
	buf, err = a.ReadFile("y.txt", buf[:0], 10)
	if err != nil || string(buf) != "two" {
		t.Fatalf("%q %v", buf, err)
	}
}

func TestReadBounded(t *testing.T) {
	b, err := ReadBounded("/proc/self/status", nil, ConfigLimit)
	if err != nil || !bytes.Contains(b, []byte("Uid:")) {
		t.Fatalf("%q %v", b, err)
	}
	if _, err := ReadBounded("/proc/self/status", nil, 16); !errors.Is(err, ErrTooLarge) {
		t.Errorf("err = %v", err)
	}
}

// A device node is refused by its type, as root can make one in a tree.
func TestDeviceRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making a device node needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mknod(filepath.Join(dir, "passwd"), syscall.S_IFCHR|0o644, 1<<8|5); err != nil { // 1,5 = /dev/zero
		t.Skipf("mknod: %v", err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.ReadFile("passwd", ConfigLimit)
	if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "character device") {
		t.Errorf("err = %v", err)
	}
}
