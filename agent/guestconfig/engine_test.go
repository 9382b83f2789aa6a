package guestconfig

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// testRoot makes a target tree with accounts and the given files.
func testRoot(t *testing.T, files map[string]string, modes map[string]os.FileMode) string {
	t.Helper()
	root := t.TempDir()
	base := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"etc/group":  "root:x:0:\nshadow:x:42:\nnogroup:x:65534:\n",
	}
	for k, v := range files {
		base[k] = v
	}
	for p, c := range base {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		m := os.FileMode(0o644)
		if mm, ok := modes[p]; ok {
			m = mm
		}
		if err := os.WriteFile(full, []byte(c), m); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, m); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func compile(t *testing.T, doc string, params map[string]string) *Compiled {
	t.Helper()
	d, err := Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(d, params, CompileContext{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const shadowDoc = `apiVersion: arcagent.dev/guestconfig/v1
name: Shadow
version: 1.0.0
parameters:
  - name: shadowMode
    default: "0640"
resources:
  - id: shadow-mode
    title: /etc/shadow is not world-readable
    severity: high
    file:
      path: /etc/shadow
      maxMode: ${shadowMode}
  - id: motd
    file:
      path: /etc/motd
      content: "authorised use only\n"
      mode: "0644"
`

func TestEvaluateModes(t *testing.T) {
	ctx := context.Background()
	root := testRoot(t, map[string]string{"etc/shadow": "root:*:1::::::\n"}, map[string]os.FileMode{"etc/shadow": 0o644})
	c := compile(t, shadowDoc, nil)

	ro, err := NewEnv(root, EnvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rep := Evaluate(ctx, ro, c, EvalOptions{Mode: Audit})
	if rep.Compliance != NonCompliant || rep.Resources[0].Compliance != NonCompliant || rep.Resources[1].Compliance != NonCompliant {
		t.Fatalf("audit: %+v", rep)
	}
	if got := rep.Resources[0].Reason; got != "/etc/shadow: mode is 0644, want at most 0640" {
		t.Errorf("reason = %q", got)
	}
	if rep.Resources[0].Evidence["mode"] != "0644" || rep.Resources[0].Evidence["owner"] == "" {
		t.Errorf("evidence = %v", rep.Resources[0].Evidence)
	}
	if fi, _ := os.Stat(filepath.Join(root, "etc/shadow")); fi.Mode().Perm() != 0o644 {
		t.Fatal("Audit changed the file")
	}

	backups := t.TempDir()
	rw, err := NewEnv(root, EnvOptions{BackupDir: backups})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	rep = Evaluate(ctx, rw, c, EvalOptions{Mode: ApplyAndAutoCorrect})
	if rep.Compliance != Compliant {
		t.Fatalf("autocorrect: %+v", rep)
	}
	if fi, _ := os.Stat(filepath.Join(root, "etc/shadow")); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode after set = %v", fi.Mode())
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/motd")); string(b) != "authorised use only\n" {
		t.Fatalf("motd = %q", b)
	}
	// Monitoring pass: drift reported, not corrected.
	if err := os.WriteFile(filepath.Join(root, "etc/motd"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep = Evaluate(ctx, rw, c, EvalOptions{Mode: ApplyAndMonitor, Apply: false})
	if rep.Resources[1].Compliance != NonCompliant || rep.Applied {
		t.Fatalf("monitor: %+v", rep.Resources[1])
	}
	rep = Evaluate(ctx, rw, c, EvalOptions{Mode: ApplyAndAutoCorrect})
	if rep.Resources[1].Compliance != Compliant || !rep.Resources[1].Changed {
		t.Fatalf("corrected: %+v", rep.Resources[1])
	}
	if b, err := os.ReadFile(filepath.Join(rep.Backups, "etc/motd")); err != nil || string(b) != "hello\n" {
		t.Fatalf("backup of motd: %q %v", b, err)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"unknown key", "apiVersion: arcagent.dev/guestconfig/v1\nname: x\nversion: '1'\nbogus: 1\nresources:\n- id: a\n  file: {path: /a}\n"},
		{"two types", "apiVersion: arcagent.dev/guestconfig/v1\nname: x\nversion: '1'\nresources:\n- id: a\n  file: {path: /a}\n  sysctlx: {}\n"},
		{"undeclared parameter", "apiVersion: arcagent.dev/guestconfig/v1\nname: x\nversion: '1'\nresources:\n- id: a\n  file: {path: '${p}'}\n"},
		{"duplicate id", "apiVersion: arcagent.dev/guestconfig/v1\nname: x\nversion: '1'\nresources:\n- id: a\n  file: {path: /a}\n- id: a\n  file: {path: /b}\n"},
		{"wrong apiVersion", "apiVersion: v0\nname: x\nversion: '1'\nresources:\n- id: a\n  file: {path: /a}\n"},
	} {
		if _, err := Parse(tc.name, []byte(tc.doc)); err == nil {
			t.Errorf("%s: parsed", tc.name)
		}
	}
	d, err := Parse("x", []byte("apiVersion: arcagent.dev/guestconfig/v1\nname: x\nversion: '1'\nresources:\n- id: a\n  file: {path: /../etc/passwd}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(d, nil, CompileContext{}); err == nil {
		t.Error("a path with .. compiled")
	}
}

func TestWriteOutsideRootRefused(t *testing.T) {
	root := testRoot(t, nil, nil)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "etc/escape")); err != nil {
		t.Fatal(err)
	}
	env, err := NewEnv(root, EnvOptions{BackupDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	c := compile(t, "apiVersion: arcagent.dev/guestconfig/v1\nname: x\nversion: '1'\nresources:\n- id: a\n  file: {path: /etc/escape/pwned, content: x}\n", nil)
	rep := Evaluate(context.Background(), env, c, EvalOptions{Mode: ApplyAndAutoCorrect})
	if rep.Resources[0].Compliance != Error {
		t.Fatalf("write through an escaping link: %+v", rep.Resources[0])
	}
	if _, err := os.Stat(filepath.Join(outside, "pwned")); err == nil {
		t.Fatal("a file was written outside the root")
	}
}
