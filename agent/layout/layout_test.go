package layout

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestPathsUnderRoot(t *testing.T) {
	tests := []struct {
		root, prod, want string
	}{
		{"", LocalConfig, "/var/opt/azcmagent/localconfig.json"},
		{"/", TokensDir, "/var/opt/azcmagent/tokens"},
		{"/tmp/r", LocalConfig, "/tmp/r/var/opt/azcmagent/localconfig.json"},
		{"/tmp/r/", ExtensionsDir, "/tmp/r/var/lib/waagent"},
	}
	for _, tt := range tests {
		if got := New(tt.root).Path(tt.prod); got != tt.want {
			t.Errorf("New(%q).Path(%q) = %q, want %q", tt.root, tt.prod, got, tt.want)
		}
	}
	for _, root := range []string{"/", "/tmp/r"} {
		l := New(root)
		if got := l.Prod(l.Path(TokensDir + "/a.key")); got != TokensDir+"/a.key" {
			t.Errorf("root %s: Prod(Path(x)) = %q", root, got)
		}
	}
	if Rel(LocalConfig) != "var/opt/azcmagent/localconfig.json" {
		t.Errorf("Rel = %q", Rel(LocalConfig))
	}
}

func TestEntriesMatchDesign(t *testing.T) {
	want := map[string]struct {
		owner, group string
		mode         os.FileMode
	}{
		"binary":          {"root", "root", 0o755},
		"localconfig":     {"root", "himds", 0o640},
		"agentconfig":     {"root", "himds", 0o640},
		"certs-dir":       {"himds", "himds", 0o700},
		"machine-key":     {"himds", "himds", 0o600},
		"tokens-dir":      {"himds", "himds", 0o710},
		"token-key":       {"himds", "himds", 0o640},
		"trust-dir":       {"root", "root", 0o755},
		"trust-file":      {"root", "root", 0o644},
		"log-dir":         {"himds", "himds", 0o750},
		"guestconfig-dir": {"root", "root", 0o700},
		"extension-dir":   {"root", "root", 0o700},
		"unit-himdsd":     {"root", "root", 0o644},
		"unit-arcproxyd":  {"root", "root", 0o644},
	}
	for id, w := range want {
		e, ok := Lookup(id)
		if !ok {
			t.Errorf("missing layout entry %s", id)
			continue
		}
		if e.Owner != w.owner || e.Group != w.group || e.Mode != w.mode {
			t.Errorf("%s = %s:%s %o, want %s:%s %o", id, e.Owner, e.Group, e.Mode, w.owner, w.group, w.mode)
		}
	}
	seen := map[string]bool{}
	for _, e := range Entries() {
		if seen[e.ID] {
			t.Errorf("duplicate id %s", e.ID)
		}
		seen[e.ID] = true
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := WriteFileAtomic(p, []byte("one"), WriteOptions{Mode: 0o640}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("new file mode = %o, want 640", fi.Mode().Perm())
	}
	// An existing file keeps its mode, whatever the caller asks.
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("two"), WriteOptions{Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("rewritten file mode = %o, want 600 kept", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Errorf("content = %q", b)
	}
	// A failing writer leaves the old file and no temporary file.
	err := WriteAtomic(p, WriteOptions{}, func(w io.Writer) error {
		_, _ = w.Write([]byte("partial"))
		return errors.New("disk on fire")
	})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Errorf("old content lost: %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
}

func TestWriteFileAtomicKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing ownership needs root")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "owned")
	if err := os.WriteFile(p, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("y"), WriteOptions{Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("owner = %d:%d, want 65534:65534 kept", st.Uid, st.Gid)
	}
	// A new file gets the requested owner when the names exist.
	q := filepath.Join(dir, "new")
	if err := WriteFileAtomic(q, []byte("z"), WriteOptions{Mode: 0o640, Owner: Owner{User: "root", Group: "root"}}); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(q)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("owner = %d:%d, want 0:0", st.Uid, st.Gid)
	}
}

func TestWriteFileAtomicMissingDir(t *testing.T) {
	err := WriteFileAtomic(filepath.Join(t.TempDir(), "no", "such", "f"), []byte("x"), WriteOptions{})
	if err == nil {
		t.Fatal("want an error for a missing directory")
	}
}
