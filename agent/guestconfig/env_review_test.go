package guestconfig

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/errcode"
)

// TestWriteFileKeepsSpecialModeBits: replacing the content of a set-id or
// sticky file without a mode in the resource keeps the whole original mode,
// not only its permission bits.
func TestWriteFileKeepsSpecialModeBits(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "usr/local/bin/tool")
	if err := os.WriteFile(p, []byte("old\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := fs.FileMode(0o750) | fs.ModeSetgid
	if err := os.Chmod(p, want); err != nil {
		t.Fatal(err)
	}
	env := writeEnv(t, root)
	if err := env.WriteFile("/usr/local/bin/tool", []byte("new\n"), WriteSpec{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := permBits(fi.Mode()); got != want {
		t.Fatalf("mode after the write is %s, want the original %s", octal(got), octal(want))
	}
}

// TestWriteThroughPlantedLink: a user who owns a directory on the way to a
// managed file (their home, /tmp) replaces a subdirectory with a link
// leading up and out of it (relative, so it stays inside the target root).
// Every kind of change must refuse to follow it: otherwise a resource for
// /home/alice/.ssh/authorized_keys with owner alice hands root's own
// authorized_keys to alice.
func TestWriteThroughPlantedLink(t *testing.T) {
	root := testRoot(t, map[string]string{
		"root/.ssh/authorized_keys": "ssh-ed25519 AAAA root@admin\n",
		"root/.ssh/config":          "Host *\n",
		"home/alice/notes":          "mine\n",
	}, map[string]os.FileMode{"root/.ssh/authorized_keys": 0o600, "root/.ssh/config": 0o600})
	if err := os.Symlink("../../root/.ssh", filepath.Join(root, "home/alice/.ssh")); err != nil {
		t.Fatal(err)
	}
	before := treeDigest(t, filepath.Join(root, "root"))
	env := writeEnv(t, root)
	mode := fs.FileMode(0o644)
	uid := 1000
	for name, change := range map[string]func() error{
		"chown": func() error {
			return env.SetOwnerMode("/home/alice/.ssh/authorized_keys", WriteSpec{UID: &uid, Mode: &mode})
		},
		"write": func() error {
			return env.WriteFile("/home/alice/.ssh/authorized_keys", []byte("ssh-ed25519 BBBB alice\n"), WriteSpec{UID: &uid})
		},
		"create": func() error { return env.WriteFile("/home/alice/.ssh/new", []byte("x\n"), WriteSpec{}) },
		"remove": func() error { return env.Remove("/home/alice/.ssh/config") },
		"link":   func() error { return env.symlink("/home/alice/.ssh/config", "/dev/null") },
		"inplace": func() error {
			return env.writeInPlace("/home/alice/.ssh/authorized_keys", []byte("ssh-ed25519 BBBB alice\n"))
		},
	} {
		err := change()
		if err == nil {
			t.Errorf("%s: followed the link out of alice's home", name)
			continue
		}
		if !strings.Contains(errcode.Format(err), string(CodeOutside)) {
			t.Errorf("%s: %v, want %s", name, err, CodeOutside)
		}
	}
	if after := treeDigest(t, filepath.Join(root, "root")); after != before {
		t.Fatalf("root's files changed:\n%s\nwas\n%s", after, before)
	}
	if fi, err := os.Stat(filepath.Join(root, "root/.ssh/authorized_keys")); err != nil {
		t.Fatal(err)
	} else if uid, _ := Owner(fi); uid != os.Getuid() {
		t.Fatalf("root's authorized_keys is owned by %d now", uid)
	}
	// A link down into the same directory is still followed.
	if err := os.MkdirAll(filepath.Join(root, "etc/real.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.d", filepath.Join(root, "etc/conf.d")); err != nil {
		t.Fatal(err)
	}
	if err := env.WriteFile("/etc/conf.d/x.conf", []byte("x\n"), WriteSpec{}); err != nil {
		t.Fatal(err)
	}
	if got := readFixture(t, root, "etc/real.d/x.conf"); got != "x\n" {
		t.Fatalf("x.conf = %q", got)
	}
}

// TestRemoveMissingParent: removing a file whose directory does not exist
// is not an error (nothing to remove).
func TestRemoveMissingParent(t *testing.T) {
	env := writeEnv(t, testRoot(t, nil, nil))
	if err := env.Remove("/etc/nope.d/x.conf"); err != nil {
		t.Fatal(err)
	}
	if err := env.removeLink("/etc/nope.d/x.conf"); err != nil {
		t.Fatal(err)
	}
}

// TestChownRefusesHardLink: a user who made a hard link to /etc/shadow in
// their home (possible with fs.protected_hardlinks off, or in an image
// someone else built) must not get it handed over by a resource that sets
// the owner or mode of the file in their home: the inode is shadow's.
func TestChownRefusesHardLink(t *testing.T) {
	root := testRoot(t, map[string]string{"etc/shadow": "root:$6$secret:19000::::::\n", "home/alice/.keep": ""},
		map[string]os.FileMode{"etc/shadow": 0o640})
	if err := os.Link(filepath.Join(root, "etc/shadow"), filepath.Join(root, "home/alice/shadow")); err != nil {
		t.Fatal(err)
	}
	r := oneResource(t, "file", "path: /home/alice/shadow\nowner: \"1000\"\nmode: \"0644\"")
	env := writeEnv(t, root)
	ctx := t.Context()
	if obs, err := r.Test(ctx, env); err != nil || obs.Compliant {
		t.Fatalf("test: %+v, %v", obs, err)
	}
	if err := r.Set(ctx, env); err == nil || !strings.Contains(err.Error(), "hard link") {
		t.Fatalf("set through a hard link: %v", err)
	}
	fi, err := os.Stat(filepath.Join(root, "etc/shadow"))
	if err != nil {
		t.Fatal(err)
	}
	if uid, _ := Owner(fi); uid != os.Getuid() || fi.Mode().Perm() != 0o640 {
		t.Fatalf("/etc/shadow is now %s owned by %d", fi.Mode(), uid)
	}
}

// TestKeyValueRefusesUnreadableValue: with the whitespace separator a
// value starting with "=" is read back as the separator, so set would
// rewrite the file (and keep a backup) at every pass without converging.
func TestKeyValueRefusesUnreadableValue(t *testing.T) {
	if _, err := tryResource("keyvalue", "path: /etc/ssh/sshd_config\nkey: Banner\nvalue: \"=/etc/issue\""); err == nil || !strings.Contains(err.Error(), "cannot start with =") {
		t.Fatalf("value starting with =: %v", err)
	}
	if _, err := tryResource("keyvalue", "path: /etc/default/grub\nkey: X\nseparator: \"=\"\nvalue: \"=y\""); err != nil {
		t.Fatalf("with the = separator it is a value like any other: %v", err)
	}
}
