package saferead

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These run on Windows (cmd/arcagent's Wine smoke test runs them there).

// tempDir is t.TempDir whose removal may fail: Wine 8 refuses the POSIX
// delete semantics Go's RemoveAll asks Windows for.
func tempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "arcagent-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func TestWindowsReads(t *testing.T) {
	dir := tempDir(t)
	if err := os.WriteFile(filepath.Join(dir, "a.json"), []byte(`{"x":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big"), []byte(strings.Repeat("x", 2048)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if b, err := r.ReadFile("a.json", ConfigLimit); err != nil || string(b) != `{"x":1}` {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
	if _, err := r.ReadFile("big", 1024); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadFile over the limit: %v, want ErrTooLarge", err)
	}
	if _, err := r.ReadFile("sub", ConfigLimit); !errors.Is(err, ErrNotRegular) {
		t.Errorf("ReadFile of a directory: %v, want ErrNotRegular", err)
	}
	if _, err := r.ReadFile("../outside", ConfigLimit); err == nil {
		t.Error("ReadFile left the root")
	}
	d, err := r.OpenDir("/")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ents, err := d.Entries()
	if err != nil || len(ents) != 3 {
		t.Errorf("Entries = %d (%v), want 3", len(ents), err)
	}
	sub, err := d.Sub("sub")
	if err != nil {
		t.Fatalf("Sub: %v", err)
	}
	sub.Close()
	if _, err := d.Sub("a.json"); err == nil {
		t.Error("Sub of a file succeeded")
	}
	if b, err := File(filepath.Join(dir, "a.json"), ConfigLimit); err != nil || string(b) != `{"x":1}` {
		t.Errorf("File = %q, %v", b, err)
	}
	if _, err := File(filepath.Join(dir, "sub"), ConfigLimit); !errors.Is(err, ErrNotRegular) {
		t.Errorf("File of a directory: %v, want ErrNotRegular", err)
	}
}
