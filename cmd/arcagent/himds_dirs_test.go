//go:build !windows

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/arcagent/arcagent/agent/layout"
)

// `chmod 0777 tokens/` and a restart, or a SIGHUP, no longer pass in
// silence: the daemon repairs the mode and says so; a symlink where the
// tokens directory belongs stops it with ARC0410 and the fix.
func TestHIMDSDaemonChecksDirectories(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	bin := buildArcagent(t)
	if os.Geteuid() == 0 {
		ensureAccount(t, layout.UserHIMDS, layout.GroupHIMDS)
	}
	root := filepath.Join(worldTraversableTemp(t), "machine")
	l := layout.New(root)
	for _, d := range []string{l.TokensDir(), l.RunDir(), l.LogDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.Chmod(l.StateDir(), 0o755)
	mode := func(p string) os.FileMode {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	d := startHIMDS(t, bin, root)
	for p, want := range map[string]os.FileMode{l.TokensDir(): 0o710, l.RunDir(): 0o750, l.LogDir(): 0o750} {
		if got := mode(p); got != want {
			t.Errorf("%s: mode %04o after start, want %04o", p, got, want)
		}
	}
	if out := d.proc.out.String(); !strings.Contains(out, "repaired the mode of a directory") || !strings.Contains(out, "was=0777") {
		t.Errorf("the repair was not logged:\n%s", out)
	}
	// Loosened again while running: SIGHUP repairs it (as the service
	// user, who owns it now).
	if err := os.Chmod(l.TokensDir(), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := d.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the SIGHUP repair of tokens/", func() bool { return mode(l.TokensDir()) == 0o710 })
	if err := d.proc.stop(t); err != nil {
		t.Fatalf("stop: %v\n%s", err, d.proc.out.String())
	}

	// Not a directory: refused, nothing followed.
	elsewhere := t.TempDir()
	_ = os.Chmod(elsewhere, 0o777)
	if err := os.Remove(l.TokensDir()); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, l.TokensDir()); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runBin(t, bin, "daemon", "himds", "--root", root, "--listen", freeLoopbackAddr(t))
	if code == 0 || !strings.Contains(stderr, "ARC0410") || !strings.Contains(stderr, "is not a directory") || !strings.Contains(stderr, "sudo rm "+l.TokensDir()) {
		t.Errorf("a symlinked tokens/: exit %d, %s", code, stderr)
	}
	if got := mode(elsewhere); got != 0o777 {
		t.Errorf("the symlink's target became %04o", got)
	}
}
