//go:build !windows

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/arcagent/arcagent/internal/testutil"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the binaries the tests built (once per test process,
// so no single test can clean them up): 50 MB in the temporary directory
// per run otherwise.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, bin := range []string{binPath, serverBin} {
		if bin != "" && filepath.IsAbs(bin) {
			_ = os.RemoveAll(filepath.Dir(bin))
		}
	}
	os.Exit(code)
}

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

// TestVersionFlag: --version prints what version prints, -j included.
func TestVersionFlag(t *testing.T) {
	for _, tc := range [][2][]string{{{"--version"}, {"version"}}, {{"--version", "-j"}, {"version", "-j"}}} {
		flag, _, c1 := runCLI(t, tc[0]...)
		cmd, _, c2 := runCLI(t, tc[1]...)
		if c1 != 0 || c2 != 0 || flag != cmd || flag == "" {
			t.Errorf("%v: %d %q; %v: %d %q", tc[0], c1, flag, tc[1], c2, cmd)
		}
	}
}

// TestDidYouMean: a mistyped command, at any level, is a usage error that
// names the command meant.
func TestDidYouMean(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"confg"}, `did you mean "config"`},
		{[]string{"fleet", "machnes"}, `did you mean "machines"`},
		{[]string{"fleet", "machines", "lst"}, `did you mean "list"`},
		{[]string{"trust", "lst"}, `did you mean "list"`},
	} {
		_, stderr, code := runCLI(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, "ARC0001") || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestNoColorOffTerminal: /dev/null is a character device but no
// terminal, so output to it is never coloured.
func TestNoColorOffTerminal(t *testing.T) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	t.Setenv("NO_COLOR", "")
	if (&app{stdout: devnull}).color() {
		t.Error("colour chosen for /dev/null")
	}
	_, tty := testutil.PTY(t)
	if !(&app{stdout: tty}).color() {
		t.Error("no colour on a terminal")
	}
}
