//go:build !windows

package daemon

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

// Loose directories under a temporary root are repaired at start: modes
// always (the process owns them), owners too when root.
func TestCheckDirsRepairs(t *testing.T) {
	l := layout.New(t.TempDir())
	dirs := HIMDSDirs(l, "")
	for _, d := range dirs {
		if err := os.MkdirAll(d.Path, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d.Path, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	wantUID, wantGID := os.Geteuid(), -1
	if os.Geteuid() == 0 {
		wantUID, wantGID = atomicfile.ResolveOwner(atomicfile.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS})
		for _, d := range dirs { // someone else's
			if err := os.Chown(d.Path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}
	}
	var logs bytes.Buffer
	if err := CheckDirs(dirs, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{l.TokensDir(): 0o710, l.CertsDir(): 0o700, l.RunDir(): 0o750, l.LogDir(): 0o750}
	for _, d := range dirs {
		fi, err := os.Lstat(d.Path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want[d.Path] {
			t.Errorf("%s: mode %04o, want %04o", d.Path, fi.Mode().Perm(), want[d.Path])
		}
		st := fi.Sys().(*syscall.Stat_t)
		if (wantUID >= 0 && int(st.Uid) != wantUID) || (wantGID >= 0 && int(st.Gid) != wantGID) {
			t.Errorf("%s: owner %d:%d, want %d:%d", d.Path, st.Uid, st.Gid, wantUID, wantGID)
		}
	}
	if !strings.Contains(logs.String(), "repaired the mode") || !strings.Contains(logs.String(), "was=0777") {
		t.Errorf("the repairs were not logged:\n%s", logs.String())
	}
	// Missing ones are created (but certs/, which connect makes).
	l2 := layout.New(t.TempDir())
	if err := CheckDirs(HIMDSDirs(l2, ""), nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(l2.TokensDir()); err != nil || fi.Mode().Perm() != 0o710 {
		t.Errorf("tokens/ created as %v, %v", fi, err)
	}
	if _, err := os.Stat(l2.CertsDir()); err == nil {
		t.Error("certs/ was created")
	}
	// Parents made on the way are 0755, never the leaf's 0710: the service
	// user must be able to reach its directories through them.
	if fi, err := os.Stat(l2.Path(layout.StateDir)); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("%s created as %v, %v, want 0755", l2.Path(layout.StateDir), fi.Mode(), err)
	}
	// Right already: nothing to say.
	logs.Reset()
	if err := CheckDirs(dirs, slog.New(slog.NewTextHandler(&logs, nil))); err != nil || logs.Len() != 0 {
		t.Errorf("second check: %v, log %q", err, logs.String())
	}
}

// A symlink or a file where a directory belongs is refused, and never
// followed: the target keeps its mode.
func TestCheckDirsRefusesNonDirectories(t *testing.T) {
	l := layout.New(t.TempDir())
	elsewhere := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Mkdir(elsewhere, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(elsewhere, 0o777)
	if err := os.MkdirAll(filepath.Dir(l.TokensDir()), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, l.TokensDir()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.RunDir(), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := CheckDirs(HIMDSDirs(l, ""), nil)
	for _, want := range []string{l.TokensDir() + " is not a directory", l.RunDir() + " is not a directory", "sudo rm " + l.TokensDir()} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
	if fi, _ := os.Stat(elsewhere); fi.Mode().Perm() != 0o777 {
		t.Errorf("the symlink's target was changed to %04o", fi.Mode().Perm())
	}
}

// A process that may not repair (the service user after the privilege
// drop, on reload) refuses a directory it does not own, with the command
// that fixes it.
func TestCheckDirsRefusesWhatItCannotRepair(t *testing.T) {
	if dir := os.Getenv("DAEMON_TEST_CHECK_DIR"); dir != "" {
		err := CheckDirs([]Dir{{Path: dir, Owner: atomicfile.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS}, Mode: 0o710}}, nil)
		fmt.Println("error:", err)
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the check runs as user nobody on a root-owned directory")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	base, err := os.MkdirTemp("", "daemon-dirs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	_ = os.Chmod(base, 0o755)
	bin := filepath.Join(base, "daemon.test")
	src, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(base, "tokens")
	if err := os.Mkdir(tokens, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(tokens, 0o777) // root-owned and loose
	cmd := exec.Command(bin, "-test.run", "^TestCheckDirsRefusesWhatItCannotRepair$")
	cmd.Env = append(os.Environ(), "DAEMON_TEST_CHECK_DIR="+tokens)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{"mode 0777", "sudo chown nobody " + tokens, "sudo chmod 0710 " + tokens} {
		if !strings.Contains(string(out), want) {
			t.Errorf("as nobody: %s\nwant it to contain %q", out, want)
		}
	}
	if fi, _ := os.Stat(tokens); fi.Mode().Perm() != 0o777 {
		t.Errorf("mode changed to %04o", fi.Mode().Perm())
	}
}
