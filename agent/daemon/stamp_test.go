package daemon

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestFileStamp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "localconfig.json")
	if got := FileStamp(p); got != "absent" {
		t.Fatalf("missing file: %q", got)
	}
	mtime := time.Unix(1_700_000_000, 0)
	write := func(name string) {
		t.Helper()
		if err := os.WriteFile(name, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(name, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write(p)
	first := FileStamp(p)
	if first == "absent" || first == "unreadable" || FileStamp(p) != first {
		t.Fatalf("stamp of an unchanged file: %q then %q", first, FileStamp(p))
	}
	if runtime.GOOS == "windows" {
		return
	}
	// An atomic replacement with the same size and time is a change.
	tmp := filepath.Join(dir, ".tmp")
	write(tmp)
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	if FileStamp(p) == first {
		t.Error("a replaced file (same size and mtime, new inode) has the same stamp")
	}
}
