//go:build !windows

package extensions

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// noHang fails the test if f has not returned after 10s: a hang detector
// for FIFOs (os.Open of a FIFO blocks until a writer comes), not a timing.
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

// copyTo copies the regular file src to dst (same mode).
func copyTo(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

// The install record is read inside the extensions directory: a FIFO, a
// link to /dev/zero and an absolute link to a valid record elsewhere are
// refused with ARC0118 naming the path, never blocked on or followed.
func TestReadInstallRecordConfined(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
		make             func(t *testing.T, p, elsewhere string)
	}{
		{"manifest is a FIFO", RecordManifest, "is a FIFO", func(t *testing.T, p, _ string) {
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"envelope is a FIFO", RecordEnvelope, "is a FIFO", func(t *testing.T, p, _ string) {
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"manifest links to /dev/zero", RecordManifest, "is a symbolic link", func(t *testing.T, p, _ string) {
			if err := os.Symlink("/dev/zero", p); err != nil {
				t.Fatal(err)
			}
		}},
		{"manifest links to the record moved elsewhere", RecordManifest, "is a symbolic link", func(t *testing.T, p, elsewhere string) {
			if err := os.Symlink(elsewhere, p); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, res, extDir := installFixture(t)
			p := filepath.Join(res.RecordDir, tc.file)
			// The valid file, moved out of the tree.
			elsewhere := filepath.Join(t.TempDir(), tc.file)
			copyTo(t, p, elsewhere)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			tc.make(t, p, elsewhere)
			var err error
			noHang(t, func() { _, _, err = ReadInstallRecord(extDir, res.Record.Name) })
			if !errors.Is(err, CodeInstallRecord) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Join(RecordsDirName, res.Record.Name, tc.file)) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// The tamper check looks at every path inside the tree: a recorded
// directory replaced by an absolute link to a copy of it on the host makes
// the files below it "changed" (the copy is never hashed), and FIFOs, in
// place of a file or added, are reported without being opened.
func TestCompareTreeConfined(t *testing.T) {
	_, res, _ := installFixture(t)
	host := filepath.Join(t.TempDir(), "bin")
	copyTo(t, filepath.Join(res.Dir, "bin/handler.sh"), filepath.Join(host, "handler.sh"))
	if err := os.RemoveAll(filepath.Join(res.Dir, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host, filepath.Join(res.Dir, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(res.Dir, "README.txt")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"README.txt", "added.pipe"} {
		if err := syscall.Mkfifo(filepath.Join(res.Dir, p), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var rep *TreeReport
	var err error
	noHang(t, func() { rep, err = CompareTree(context.Background(), res.Dir, res.Record.Files) })
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Change{}
	for _, c := range rep.Changes {
		got[c.Path] = c
	}
	for p, want := range map[string]string{
		"bin":            "was a dir, is a symlink",
		"bin/handler.sh": "bin is now a symbolic link, which is not followed",
		"README.txt":     "was a file, is a special file",
		"added.pipe":     "new special file",
	} {
		if c, ok := got[p]; !ok || !strings.Contains(c.Detail, want) {
			t.Errorf("change for %s = %+v, want %q (all: %+v)", p, c, want, rep.Changes)
		}
	}
	if err := rep.Err(); !errors.Is(err, CodeTreeTampered) {
		t.Errorf("Err() = %v", err)
	}
}

// A recorded directory replaced by a link inside the tree, to an identical
// copy, is not followed either: the files below it are changed.
func TestCompareTreeDoesNotFollowInnerLinks(t *testing.T) {
	_, res, _ := installFixture(t)
	if err := os.Rename(filepath.Join(res.Dir, "bin"), filepath.Join(res.Dir, "config")); err != nil { // runtime path: ignored
		t.Fatal(err)
	}
	if err := os.Symlink("config", filepath.Join(res.Dir, "bin")); err != nil {
		t.Fatal(err)
	}
	rep, err := CompareTree(context.Background(), res.Dir, res.Record.Files)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, c := range rep.Changes {
		found = found || c.Path == "bin/handler.sh" && c.Kind == ChangeModified && strings.Contains(c.Detail, "symbolic link")
	}
	if !found {
		t.Errorf("changes = %+v", rep.Changes)
	}
}

// A records directory that is a link (here to another extensions
// directory's records) is refused rather than listed.
func TestListInstalledRefusesLinkedRecords(t *testing.T) {
	_, res, _ := installFixture(t)
	other := filepath.Join(t.TempDir(), "waagent")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(res.RecordDir), filepath.Join(other, RecordsDirName)); err != nil {
		t.Fatal(err)
	}
	names, err := ListInstalled(other)
	if err == nil || !strings.Contains(err.Error(), RecordsDirName) {
		t.Errorf("ListInstalled = %v, %v", names, err)
	}
	if names, err := ListInstalled(filepath.Join(t.TempDir(), "none")); err != nil || len(names) != 0 {
		t.Errorf("missing directory: %v, %v", names, err)
	}
}

// TestPackagePathFIFORefused: a package path the user names that is a FIFO
// (package sign, package build's manifest check, install) is refused at
// once, never waited on.
func TestPackagePathFIFORefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "Contoso.Monitoring.StatusReporter-1.0.0.zip")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	done := make(chan [2]error, 1)
	go func() {
		_, err1 := ReadPackageManifest(fifo)
		_, err2 := Extract(context.Background(), fifo, filepath.Join(t.TempDir(), "dest"), Limits{})
		done <- [2]error{err1, err2}
	}()
	select {
	case errs := <-done:
		for i, err := range errs {
			if err == nil {
				t.Errorf("call %d read a FIFO as a package", i)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a FIFO package path blocked (hang detector)")
	}
}
