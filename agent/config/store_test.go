//go:build !windows

package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

func newTestStore(t *testing.T) *Store {
	t.Helper()
	return NewStore(layout.New(t.TempDir()))
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("mode of %s = %o, want %o", path, got, want)
	}
}

func TestStoreUpdateWritesModeEveryTime(t *testing.T) {
	st := newTestStore(t)
	ctx := context.Background()
	for i, c := range []Change{
		{OpSet, IncomingEnabled, "false"},
		{OpSet, GCEnabled, "false"},
		{OpSet, ExtAllowlist, "Microsoft.Azure.Monitor/AzureMonitorWindowsAgent,Microsoft.Azure.AzureDefenderForServers/MDE.Windows"},
		{OpClear, GCEnabled, ""},
	} {
		if _, err := st.Update(ctx, func(s *Settings) error { _, err := s.Apply(c); return err }); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		assertMode(t, st.Path, 0o640)
	}
	s, _, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if s.Bool(IncomingEnabled) || !s.Bool(GCEnabled) || len(s.List(ExtAllowlist)) != 2 {
		t.Errorf("unexpected result %#v", s.values)
	}
	entries, _ := os.ReadDir(filepath.Dir(st.Path))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestStoreRefusedChangeWritesNothing(t *testing.T) {
	st := newTestStore(t)
	ctx := context.Background()
	if _, err := st.Update(ctx, func(s *Settings) error { _, err := s.Apply(Change{OpSet, GCCPULimit, "9"}); return err }); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(st.Path)
	fiBefore, _ := os.Stat(st.Path)
	_, err := st.Update(ctx, func(s *Settings) error { _, err := s.Apply(Change{OpSet, GCCPULimit, "900"}); return err })
	if codeOf(err) != errcode.InvalidValue {
		t.Fatalf("err = %v, want InvalidValue", err)
	}
	after, _ := os.ReadFile(st.Path)
	fiAfter, _ := os.Stat(st.Path)
	if string(before) != string(after) || !os.SameFile(fiBefore, fiAfter) {
		t.Error("a refused change rewrote the file")
	}
}

func TestStoreCorruptFileIsNeverReset(t *testing.T) {
	st := newTestStore(t)
	if err := os.MkdirAll(filepath.Dir(st.Path), 0o755); err != nil {
		t.Fatal(err)
	}
	bad := []byte(`{"incomingconnections.enabled": false,`)
	if err := os.WriteFile(st.Path, bad, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := st.Update(context.Background(), func(s *Settings) error { _, err := s.Apply(Change{OpSet, GCEnabled, "false"}); return err })
	if codeOf(err) != errcode.ConfigCorrupt || !strings.Contains(err.Error(), st.Path) {
		t.Fatalf("err = %v, want ConfigCorrupt naming %s", err, st.Path)
	}
	var e *errcode.Error
	errors.As(err, &e)
	if !strings.Contains(e.Remedy(), "arcagent config clear --all") {
		t.Errorf("remedy %q does not give the repair command", e.Remedy())
	}
	if got, _ := os.ReadFile(st.Path); string(got) != string(bad) {
		t.Error("corrupt file was modified")
	}
	// The repair keeps the bad file aside and writes the defaults.
	aside, err := st.Reset(context.Background(), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(aside); string(got) != string(bad) {
		t.Errorf("the old file was not kept at %s", aside)
	}
	if _, _, err := st.Load(); err != nil {
		t.Errorf("after reset: %v", err)
	}
	assertMode(t, st.Path, 0o640)
}

func TestStoreConcurrentUpdatesLoseNothing(t *testing.T) {
	st := newTestStore(t)
	ports := []string{"22", "80", "443", "3389", "5985", "5986", "8080", "8443"}
	var wg sync.WaitGroup
	for _, p := range ports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			other := NewStore(layout.New(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(st.Path))))))
			if _, err := other.Update(context.Background(), func(s *Settings) error {
				_, err := s.Apply(Change{OpAdd, IncomingPorts, p})
				return err
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	s, _, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.List(IncomingPorts); len(got) != len(ports) {
		t.Errorf("ports = %v, want all %d", got, len(ports))
	}
}

func TestStoreUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file; the CLI test covers this as an unprivileged user")
	}
	st := newTestStore(t)
	_ = os.MkdirAll(filepath.Dir(st.Path), 0o755)
	if err := os.WriteFile(st.Path, []byte(`{}`), 0o000); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Load(); codeOf(err) != errcode.PermissionDenied {
		t.Errorf("err = %v, want PermissionDenied", err)
	}
}

func setGC(s *Settings) error { _, err := s.Apply(Change{OpSet, GCEnabled, "false"}); return err }

func ownerOf(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

// Every write gives localconfig.json the layout's mode (and, as root, its
// owner), whatever the file it replaces had.
func TestStoreWriteRepairsModeAndOwner(t *testing.T) {
	st := newTestStore(t)
	ctx := context.Background()
	if _, err := st.Update(ctx, setGC); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(st.Path, 0o666); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(st.Path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Update(ctx, setGC); err != nil {
		t.Fatal(err)
	}
	assertMode(t, st.Path, 0o640)
	if os.Geteuid() == 0 {
		uid, gid := atomicfile.ResolveOwner(st.Owner)
		if u, g := ownerOf(t, st.Path); int(u) != uid || (gid >= 0 && int(g) != gid) {
			t.Errorf("owner = %d:%d, want the layout's %d:%d", u, g, uid, gid)
		}
	}
}

// A symbolic link planted at localconfig.json is replaced by a regular file
// with the layout's mode and owner; the link's target lends it neither and
// is not written.
func TestStoreReplacesSymlinkedFile(t *testing.T) {
	st := newTestStore(t)
	if err := os.MkdirAll(filepath.Dir(st.Path), 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "target.json")
	if err := os.WriteFile(target, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(target, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(target, st.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(context.Background(), setGC); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(st.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o640 {
		t.Errorf("%s is %v, want a regular file 0640", st.Path, fi.Mode())
	}
	if os.Geteuid() == 0 {
		if u, _ := ownerOf(t, st.Path); u != 0 {
			t.Errorf("owner uid = %d, want root's, not the link target's", u)
		}
	}
	if b, _ := os.ReadFile(target); string(b) != `{}` {
		t.Errorf("link target written: %q", b)
	}
	assertMode(t, target, 0o644)
}

// A symbolic link planted at the lock file is refused: the store writes
// nothing and does not create the link's target.
func TestStoreRefusesSymlinkedLock(t *testing.T) {
	st := newTestStore(t)
	if err := os.MkdirAll(filepath.Dir(st.Path), 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "created-by-root")
	if err := os.Symlink(target, st.Path+".lock"); err != nil {
		t.Fatal(err)
	}
	_, err := st.Update(context.Background(), setGC)
	if codeOf(err) != errcode.WriteFailed || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("err = %v, want WriteFailed naming the link", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock link's target exists: %v", err)
	}
	if _, err := os.Lstat(st.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("localconfig.json written without the lock: %v", err)
	}
	if _, err := st.Reset(context.Background(), time.Now()); codeOf(err) != errcode.WriteFailed {
		t.Errorf("Reset: err = %v, want WriteFailed", err)
	}
}

// Temporary files that a killed writer left are removed by the next one.
func TestStoreRemovesStaleTempFiles(t *testing.T) {
	st := newTestStore(t)
	dir := filepath.Dir(st.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{".localconfig.json.tmp-123456", ".localconfig.json.tmp-9"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(`{"partial`), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	other := filepath.Join(dir, ".agentconfig.json.tmp-1")
	if err := os.WriteFile(other, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(context.Background(), setGC); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".localconfig.json.tmp-") {
			t.Errorf("stale temporary file left: %s", e.Name())
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another file's temporary file was removed: %v", err)
	}
}
