//go:build !windows

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const gcFlowDoc = `apiVersion: arcagent.dev/guestconfig/v1
name: Motd
version: 1.0.0
parameters:
  - name: banner
    default: authorised use only
resources:
  - id: motd
    title: a login banner
    file:
      path: /etc/motd
      content: "${banner}\n"
  - id: motd-script
    title: the banner, checked by a script
    exec:
      validateFile: scripts/check.sh
`

func writeGCSource(t *testing.T, dir, doc string) {
	t.Helper()
	for p, c := range map[string]string{"guestconfig.yaml": doc, "scripts/check.sh": "grep -q authorised etc/motd && exit 100; exit 101\n"} {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGuestConfigBuildSignCheck: build, sign --kind guestconfig, trust,
// verify (only as a configuration package), check.
func TestGuestConfigBuildSignCheck(t *testing.T) {
	work := t.TempDir()
	root := filepath.Join(work, "root")
	src := filepath.Join(work, "src")
	dist := filepath.Join(work, "dist")
	key := filepath.Join(work, "contoso")
	writeGCSource(t, src, gcFlowDoc)
	pkg := filepath.Join(dist, "Contoso.Baseline.Motd-1.0.0.zip")

	mustRun(t, 2, "guestconfig", "build", src) // no --publisher
	out := mustRun(t, 0, "guestconfig", "build", src, "--publisher", "Contoso.Baseline", "--out", dist)
	if !strings.Contains(out, "built "+pkg+" (2 resources, 2 files") {
		t.Fatalf("build output %q", out)
	}
	mustRun(t, 0, "package", "keygen", "--out", key)
	mustRun(t, 2, "package", "sign", pkg, "--key", key+".key", "--kind", "nonsense")
	// An extension signature is refused for a configuration package: it
	// has no HandlerManifest.json.
	if out := mustRun(t, 2, "package", "sign", pkg, "--key", key+".key"); out != "" {
		t.Fatalf("refused sign printed %q", out)
	}
	mustRun(t, 2, "package", "sign", pkg, "--key", key+".key", "--kind", "guestconfig", "--version", "1.0.1")
	if _, err := os.Stat(pkg + ".sig.json"); err == nil {
		t.Fatal("a refused sign wrote a signature")
	}
	mustRun(t, 0, "package", "sign", pkg, "--key", key+".key", "--kind", "guestconfig")
	mustRun(t, 0, "--root", root, "trust", "add", "contoso", "--key", key+".pub", "--publisher", "Contoso.Baseline")

	exp := []string{"--publisher", "Contoso.Baseline", "--type", "Motd", "--version", "1.0.0"}
	out = mustRun(t, 0, append([]string{"--root", root, "package", "verify", pkg, "--kind", "guestconfig"}, exp...)...)
	if !strings.HasPrefix(out, "VALID: Contoso.Baseline.Motd-1.0.0 signed by contoso") {
		t.Fatalf("verify output %q", out)
	}
	out = mustRun(t, 1, append([]string{"--root", root, "package", "verify", pkg}, exp...)...)
	if !strings.Contains(out, "a guestconfig package, not a") {
		t.Fatalf("verify as an extension: %q", out)
	}

	out = mustRun(t, 0, "--root", root, "guestconfig", "check", pkg)
	if !strings.Contains(out, "Motd 1.0.0: 2 resources (signature verified, signed by contoso)") || !strings.Contains(out, "motd-script  exec") {
		t.Fatalf("check output %q", out)
	}
	out = mustRun(t, 0, "--root", root, "-j", "guestconfig", "check", pkg, "--parameters", "banner=hi")
	var v struct {
		Name      string
		Verified  bool
		Resources []struct{ ID, Type, Title string }
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || !v.Verified || len(v.Resources) != 2 || v.Resources[1].Type != "exec" {
		t.Fatalf("check -j %s (%v)", out, err)
	}

	// A tampered package with its old signature is refused.
	data, _ := os.ReadFile(pkg)
	data[len(data)/2] ^= 1
	os.WriteFile(pkg, data, 0o644)
	_, stderr, code := runCLI(t, "--root", root, "guestconfig", "check", pkg)
	if code != 3 || !strings.Contains(stderr, "ARC0161") {
		t.Fatalf("tampered check: %d %q", code, stderr)
	}
}

func TestGuestConfigCheckDocuments(t *testing.T) {
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	noExec := gcFlowDoc[:strings.Index(gcFlowDoc, "  - id: motd-script")]
	out := mustRun(t, 0, "guestconfig", "check", write("ok.yaml", noExec))
	if !strings.Contains(out, "Motd 1.0.0: 1 resources (not signed)") || !strings.Contains(out, "motd  file  a login banner") {
		t.Fatalf("check %q", out)
	}
	for _, tc := range []struct {
		name, doc string
		args      []string
		want      string
	}{
		{"exec in a local file", gcFlowDoc, nil, "signature verified"},
		{"bad line", noExec + "  - id: two\n    file:\n      path: relative\n", nil, "Motd:15: resource two: file: path \"relative\" must be absolute"},
		{"unknown parameter", noExec, []string{"--parameters", "nope=1"}, "no parameter nope"},
		{"malformed parameter", noExec, []string{"--parameters", "nope"}, "name=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(tc.name+".yaml", tc.doc)
			_, stderr, code := runCLI(t, append([]string{"guestconfig", "check", p}, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
}
