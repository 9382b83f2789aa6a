package guestconfig

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFileKeepsSpecialModeBits: replacing the content of a set-id or
// sticky file without a mode in the resource keeps the whole original mode,
// not only its permission bits.
func TestWriteFileKeepsSpecialModeBits(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "usr/local/bin/tool")
	if err := os.WriteFile(p, []byte("old\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := fs.FileMode(0o750) | fs.ModeSetgid
	if err := os.Chmod(p, want); err != nil {
		t.Fatal(err)
	}
	env := writeEnv(t, root)
	if err := env.WriteFile("/usr/local/bin/tool", []byte("new\n"), WriteSpec{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := permBits(fi.Mode()); got != want {
		t.Fatalf("mode after the write is %s, want the original %s", octal(got), octal(want))
	}
}
