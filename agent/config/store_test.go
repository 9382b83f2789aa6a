package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
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
