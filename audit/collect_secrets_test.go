//go:build !windows

package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/arcagent/arcagent/audit/fixture"
)

// The secret scan reads no link and no special file, but lists every one
// it refuses in facts.secrets.skipped with the reason, so that a credential
// file swapped for a link to /dev/zero is not passed over without a trace.
func TestSecretScanListsRefusedFiles(t *testing.T) {
	root := t.TempDir()
	fixture.New(t, root).DefaultInstall()
	home := filepath.Join(root, "home", "alice")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"zero.txt": "/dev/zero", ".bash_history": "/dev/null", "photo.jpg": "/dev/zero"} {
		if err := os.Symlink(target, filepath.Join(home, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(home, "pipe.env"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "connect.json"), []byte(`{"onboarding-token": "ot_3f9a8c7d6e5b4a39"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Collect(context.Background(), Options{Root: root, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Secrets.Found) != 1 || f.Secrets.Found[0].Path != "home/alice/connect.json" {
		t.Errorf("found = %+v", f.Secrets.Found)
	}
	want := map[string]string{
		"home/alice/zero.txt": "a link, not followed",
		"home/alice/pipe.env": "a special file",
	}
	// photo.jpg is no candidate: it would not have been read as a file
	// either; a history kept in /dev/null holds nothing to find.
	if f.Secrets.SkippedCount != len(want) || len(f.Secrets.Skipped) != len(want) {
		t.Fatalf("skipped = %d %+v, want %v", f.Secrets.SkippedCount, f.Secrets.Skipped, want)
	}
	for _, s := range f.Secrets.Skipped {
		if reason, ok := want[s.Path]; !ok || !strings.Contains(s.Reason, reason) {
			t.Errorf("skipped %s (%s), want %v", s.Path, s.Reason, want)
		}
	}
	var noted bool
	for _, e := range f.Errors {
		noted = noted || (e.Collector == "secrets" && strings.Contains(e.Error, "2 file(s) were not scanned"))
	}
	if !noted {
		t.Errorf("no collector error says files were not scanned: %+v", f.Errors)
	}
}
