//go:build !windows

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTrustCommands(t *testing.T) {
	t.Setenv("ARCAGENT_KEY_PASSWORD", "")
	work := t.TempDir()
	root := filepath.Join(work, "root")
	mustRun(t, 0, "package", "keygen", "--out", filepath.Join(work, "a"))
	mustRun(t, 0, "package", "keygen", "--out", filepath.Join(work, "b"), "--algorithm", "ed25519")
	tests := []struct {
		name string
		args []string
		want int
		out  string
	}{
		{"empty list", []string{"trust", "list"}, 0, "no trusted keys"},
		{"add", []string{"trust", "add", "a", "--key", filepath.Join(work, "a.pub"), "--publisher", "Contoso.Monitoring,Contoso.Scripts"}, 0, "may sign for publishers: Contoso.Monitoring, Contoso.Scripts"},
		{"add catalog key", []string{"trust", "add", "b", "--key", filepath.Join(work, "b.pub"), "--catalog", "extensions"}, 0, "may sign catalogs: extensions"},
		{"add without key", []string{"trust", "add", "c", "--publisher", "P"}, 2, ""},
		{"add name taken", []string{"trust", "add", "a", "--key", filepath.Join(work, "b.pub"), "--publisher", "P"}, 2, ""},
		{"add private key file", []string{"trust", "add", "c", "--key", filepath.Join(work, "a.key"), "--publisher", "P"}, 2, ""},
		{"add with nothing allowed", []string{"trust", "add", "c", "--key", filepath.Join(work, "a.pub")}, 2, ""},
		{"list", []string{"trust", "list"}, 0, "ed25519"},
		{"remove", []string{"trust", "remove", "b"}, 0, "removed b"},
		{"remove unknown", []string{"trust", "remove", "b"}, 2, ""},
	}
	for _, tc := range tests {
		out, errOut, code := runCLI(t, append([]string{"--root", root}, tc.args...)...)
		if code != tc.want || !strings.Contains(out, tc.out) {
			t.Fatalf("%s: exit %d (want %d), stdout %q, stderr %q", tc.name, code, tc.want, out, errOut)
		}
	}
	out := mustRun(t, 0, "--root", root, "-j", "trust", "list")
	var l struct {
		Keys []struct {
			Name       string
			Publishers []string
			KeyID      string
		}
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.Keys) != 1 || l.Keys[0].Name != "a" || len(l.Keys[0].Publishers) != 2 {
		t.Fatalf("list -j %s (%v)", out, err)
	}
	fi, err := os.Stat(filepath.Join(root, "var/opt/azcmagent/trust/a.key.json"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("entry mode %v (%v)", fi.Mode(), err)
	}
}

func TestTrustStoreOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to hand the trust store to another user")
	}
	t.Setenv("ARCAGENT_KEY_PASSWORD", "")
	work := t.TempDir()
	root := filepath.Join(work, "root")
	mustRun(t, 0, "package", "keygen", "--out", filepath.Join(work, "a"))
	mustRun(t, 0, "--root", root, "trust", "add", "a", "--key", filepath.Join(work, "a.pub"), "--publisher", "P")
	entry := filepath.Join(root, "var/opt/azcmagent/trust/a.key.json")
	if err := os.Chown(entry, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(t, "--root", root, "trust", "list")
	if code != 3 || !strings.Contains(errOut, "ARC0106") || !strings.Contains(errOut, "not root") {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
}
