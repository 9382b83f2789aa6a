package extensions

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/signing"
)

func TestBuildIsReproducible(t *testing.T) {
	ctx := context.Background()
	var sums []string
	for i := 0; i < 2; i++ {
		src := filepath.Join(t.TempDir(), "src")
		writeExtension(t, src)
		// Different mtimes and an unrelated umask-ish mode must not matter.
		stamp := time.Date(2020+i, 1, 2, 3, 4, 5, 0, time.UTC)
		filepath.Walk(src, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, stamp, stamp) })
		if i == 1 {
			os.Chmod(filepath.Join(src, "README.txt"), 0o640)
		}
		res, err := BuildPackage(ctx, BuildOptions{Dir: src, Package: testPkg, OutDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(res.Path) != "Contoso.Monitoring.StatusReporter-1.0.0.zip" || res.Files != 3 {
			t.Fatalf("result %+v", res)
		}
		sum, _, _ := signing.HashFile(ctx, res.Path)
		if sum != res.SHA256 {
			t.Fatal("reported sha256 differs from the file's")
		}
		if _, err := ReadPackageManifest(res.Path); err != nil {
			t.Fatal(err)
		}
		sums = append(sums, res.SHA256)
	}
	if sums[0] != sums[1] {
		t.Fatalf("same input, different packages: %v", sums)
	}
}

func TestBuildRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		pkg   signing.Package
		want  error
	}{
		{"no manifest", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, HandlerManifestName)) }, testPkg, CodeBadHandlerManifest},
		{"manifest not json", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, HandlerManifestName), []byte("{"), 0o644)
		}, testPkg, CodeBadHandlerManifest},
		{"command file missing", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "bin/handler.sh")) }, testPkg, CodeBadHandlerManifest},
		{"command not executable", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, "bin/handler.sh"), 0o644) }, testPkg, CodeBadHandlerManifest},
		{"symlink in tree", func(t *testing.T, dir string) { os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")) }, testPkg, CodeBadHandlerManifest},
		{"runtime status folder", func(t *testing.T, dir string) {
			os.MkdirAll(filepath.Join(dir, "status"), 0o755)
			os.WriteFile(filepath.Join(dir, "status/0.status"), []byte("[]"), 0o644)
		}, testPkg, CodeBadHandlerManifest},
		{"handler environment", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "HandlerEnvironment.json"), []byte("[]"), 0o644)
		}, testPkg, CodeBadHandlerManifest},
		{"bad version", func(*testing.T, string) {}, signing.Package{Publisher: "Contoso", Type: "X", Version: "1.0-beta"}, signing.CodeBadPackageName},
		{"type with dot", func(*testing.T, string) {}, signing.Package{Publisher: "Contoso", Type: "X.Y", Version: "1.0"}, signing.CodeBadPackageName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			writeExtension(t, src)
			tc.setup(t, src)
			out := t.TempDir()
			_, err := BuildPackage(ctx, BuildOptions{Dir: src, Package: tc.pkg, OutDir: out})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Fatalf("output written: %v", ents)
			}
		})
	}
}

func TestParseHandlerManifest(t *testing.T) {
	const cmds = `"installCommand":"a/i.sh","uninstallCommand":"a/u.sh","updateCommand":"a/up.sh","enableCommand":"a/e.sh","disableCommand":"a/d.sh"`
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"azure format", `[{"version":1.0,"handlerManifest":{` + cmds + `,"reportHeartbeat":true,"updateMode":"UpdateWithoutInstall"}}]`, true},
		{"string version", `[{"version":"1.0","handlerManifest":{` + cmds + `}}]`, true},
		{"BOM and resourceLimits", "\ufeff" + `[{"version":1,"handlerManifest":{` + cmds + `},"resourceLimits":{"services":[]}}]`, true},
		{"not an array", `{"version":1.0,"handlerManifest":{` + cmds + `}}`, false},
		{"two handlers", `[{"version":1.0,"handlerManifest":{` + cmds + `}},{"version":1.0,"handlerManifest":{` + cmds + `}}]`, false},
		{"no handlerManifest", `[{"version":1.0}]`, false},
		{"no version", `[{"handlerManifest":{` + cmds + `}}]`, false},
		{"version 2", `[{"version":2.0,"handlerManifest":{` + cmds + `}}]`, false},
		{"missing enable", `[{"version":1.0,"handlerManifest":{"installCommand":"i","uninstallCommand":"u","updateCommand":"up","disableCommand":"d"}}]`, false},
		{"bad updateMode", `[{"version":1.0,"handlerManifest":{` + cmds + `,"updateMode":"Sometimes"}}]`, false},
		{"heartbeat as string", `[{"version":1.0,"handlerManifest":{` + cmds + `,"reportHeartbeat":"yes"}}]`, false},
		{"multi-line command", `[{"version":1.0,"handlerManifest":{` + strings.Replace(cmds, "a/i.sh", `a/i.sh\nrm -rf /`, 1) + `}}]`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hm, err := ParseHandlerManifest([]byte(tc.in))
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, CodeBadHandlerManifest) {
				t.Fatalf("err = %v", err)
			}
			if tc.ok && hm.HandlerManifest.EnableCommand != "a/e.sh" {
				t.Fatalf("manifest %+v", hm)
			}
		})
	}
}

func TestCommandProgram(t *testing.T) {
	for in, want := range map[string]string{
		"bin/run.sh enable": "bin/run.sh",
		"./run.sh":          "run.sh",
		"bash run.sh":       "",
		"/bin/sh x":         "",
		"../x/run.sh":       "../x/run.sh",
	} {
		if got := CommandProgram(in); got != want {
			t.Errorf("CommandProgram(%q) = %q, want %q", in, got, want)
		}
	}
}
