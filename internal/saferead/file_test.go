//go:build !windows

package saferead

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// File reads a file the user named: links are followed, but a FIFO does
// not block, a device is refused and a large file is refused whole.
func TestFile(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "key.pem"), []byte("PEM\n"))
	mustWrite(t, filepath.Join(dir, "big"), make([]byte, 100))
	if err := os.Symlink(filepath.Join(dir, "key.pem"), filepath.Join(dir, "link.pem")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		is         error
	}{
		{"key.pem", "PEM\n", nil},
		{"link.pem", "PEM\n", nil},
		{"zero", "", ErrNotRegular},
		{"fifo", "", ErrNotRegular},
		{"big", "", ErrTooLarge},
		{"missing", "", fs.ErrNotExist},
		{".", "", ErrNotRegular},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var data []byte
			var err error
			noHang(t, func() { data, err = File(filepath.Join(dir, tc.name), 64) })
			if tc.is == nil {
				if err != nil || string(data) != tc.want {
					t.Fatalf("File = %q, %v", data, err)
				}
				return
			}
			if !errors.Is(err, tc.is) || data != nil {
				t.Fatalf("File = %q, %v; want %v", data, err, tc.is)
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, tc.name)) {
				t.Errorf("error %q does not name the path", err)
			}
		})
	}
	noHang(t, func() {
		if f, err := OpenFile(filepath.Join(dir, "fifo")); !errors.Is(err, ErrNotRegular) {
			t.Errorf("OpenFile(fifo) = %v, %v", f, err)
		}
	})
	f, err := OpenFile(filepath.Join(dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b, err := io.ReadAll(f); err != nil || len(b) != 100 {
		t.Errorf("OpenFile read %d bytes, %v", len(b), err)
	}
}

// Root.Open streams a regular file of the tree and refuses what ReadFile
// refuses; Readlink stays inside the root.
func TestRootOpenAndReadlink(t *testing.T) {
	host := t.TempDir()
	mustWrite(t, filepath.Join(host, "secret"), []byte("host"))
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "ext/bin/run.sh"), []byte("#!/bin/sh\n"))
	for name, target := range map[string]string{"ext/abs": filepath.Join(host, "secret"), "ext/hostdir": host, "ext/rel": "bin/run.sh", "ext/zero": "/dev/zero"} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "ext/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := r.Open("ext/bin/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "#!/bin/sh\n" {
		t.Errorf("read %q", b)
	}
	for name, want := range map[string]error{"ext/abs": ErrSymlink, "ext/rel": ErrSymlink, "ext/zero": ErrSymlink, "ext/fifo": ErrNotRegular, "ext/hostdir/secret": ErrEscapes, "ext/bin": ErrNotRegular} {
		noHang(t, func() {
			f, err := r.Open(name)
			if !errors.Is(err, want) {
				t.Errorf("Open(%s) = %v, %v; want %v", name, f, err, want)
			}
			if err != nil && !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not name %s", err, name)
			}
		})
	}
	if tgt, err := r.Readlink("ext/abs"); err != nil || tgt != filepath.Join(host, "secret") {
		t.Errorf("Readlink = %q, %v", tgt, err)
	}
	if _, err := r.Readlink("ext/hostdir/secret"); !errors.Is(err, ErrEscapes) {
		t.Errorf("Readlink through an absolute link = %v", err)
	}
}
