package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// buildArcagent builds the arcagent binary once per test process, for tests
// that need real processes (file locks, privilege, exit codes).
func buildArcagent(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "arcagent-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "arcagent")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = err
			binPath = string(out)
		}
	})
	if binErr != nil {
		t.Fatalf("build arcagent: %v\n%s", binErr, binPath)
	}
	return binPath
}

// runCLI runs the CLI in-process and returns stdout, stderr and the exit code.
func runCLI(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

func TestVersion(t *testing.T) {
	out, _, code := runCLI(t, "version")
	if code != 0 || !strings.Contains(out, "arcagent ") || !strings.Contains(out, "go version:") || !strings.Contains(out, "commit:") {
		t.Errorf("version: code %d, output %q", code, out)
	}
	out, _, code = runCLI(t, "version", "-j")
	for _, k := range []string{`"version"`, `"commit"`, `"buildDate"`, `"goVersion"`} {
		if code != 0 || !strings.Contains(out, k) {
			t.Errorf("version -j lacks %s: %q", k, out)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"no-such-verb"},
		{"version", "--no-such-flag"},
		{"version", "extra"},
		{"config", "get"},
		{"config", "set", "incomingconnections.enabled"},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != 2 || !strings.Contains(stderr, "ARC0001") {
			t.Errorf("%v: code %d, stderr %q; want exit 2 with ARC0001", args, code, stderr)
		}
	}
}

func TestCompletion(t *testing.T) {
	out, _, code := runCLI(t, "completion", "bash")
	if code != 0 || !strings.Contains(out, "arcagent") {
		t.Errorf("completion bash: code %d", code)
	}
}
