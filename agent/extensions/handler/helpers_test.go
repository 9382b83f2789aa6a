//go:build !windows

package handler

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/arcagent/arcagent/agent/extensions"
	"golang.org/x/sys/unix"
)

// newExt makes an extension tree under a fresh extensions directory:
// <tmp>/waagent/Test.Handler-1.0 with the given files (name → content,
// all executable) and a manifest whose commands are cmds (op → command;
// missing ops run "true").
func newExt(t testing.TB, files map[string]string, cmds map[Op]string) Extension {
	t.Helper()
	root := t.TempDir()
	ext := Extension{Publisher: "Test", Type: "Handler", Version: "1.0"}
	ext.Dir = filepath.Join(root, "waagent", ext.FullName())
	ext.LogDir = filepath.Join(root, "GuestConfig", "extension_logs", ext.FullName())
	if err := os.MkdirAll(ext.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(ext.Dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cmd := func(op Op) string {
		if c, ok := cmds[op]; ok {
			return c
		}
		return "true"
	}
	ext.Manifest = &extensions.HandlerManifest{Version: "1.0", HandlerManifest: extensions.HandlerCommands{
		InstallCommand: cmd(OpInstall), EnableCommand: cmd(OpEnable), DisableCommand: cmd(OpDisable),
		UpdateCommand: cmd(OpUpdate), UninstallCommand: cmd(OpUninstall),
	}}
	return ext
}

func mode(t testing.TB, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func mkfifo(p string) error { return unix.Mkfifo(p, 0o600) }

func syscallKill(pid int) error { return unix.Kill(pid, unix.SIGKILL) }
