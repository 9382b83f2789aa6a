package atomicfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
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

func TestWindowsWriteReplaces(t *testing.T) {
	dir := tempDir(t)
	p := filepath.Join(dir, "localconfig.json")
	for _, content := range []string{"one", "two"} {
		if err := WriteFile(p, []byte(content), WriteOptions{Mode: 0o640, Enforce: true}); err != nil {
			t.Fatalf("write %q: %v", content, err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != content {
			t.Fatalf("content = %q (%v), want %q", b, err, content)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Errorf("directory holds %d entries (%v), want only the file", len(ents), err)
	}
}

func TestWindowsLockExcludes(t *testing.T) {
	p := filepath.Join(tempDir(t), "localconfig.json")
	l, err := LockFile(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if l2, err := LockFile(ctx, p); err == nil {
		l2.Unlock()
		t.Fatal("a second lock was granted while the first is held")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock: %v, want the deadline", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l3, err := LockFile(context.Background(), p)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	l3.Unlock()
}

func TestWindowsLockRefusesDirectory(t *testing.T) {
	p := filepath.Join(tempDir(t), "state")
	if err := os.Mkdir(p+".lock", 0o700); err != nil {
		t.Fatal(err)
	}
	if l, err := LockFile(context.Background(), p); err == nil {
		l.Unlock()
		t.Fatal("a directory was used as a lock file")
	}
}
