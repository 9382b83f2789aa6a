//go:build !windows

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/reports"
)

// processPrngShim is the C source of a bcryptprimitives.dll exporting
// ProcessPrng, which the Go runtime (1.22 and later) needs on Windows and
// Debian bookworm's Wine 8 does not have. It is built with mingw-w64 into
// the test's own Wine prefix only.
const processPrngShim = `#include <windows.h>
#include <bcrypt.h>
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T n) {
  while (n > 0) {
    ULONG c = n > 0x40000000 ? 0x40000000 : (ULONG)n;
    if (BCryptGenRandom(NULL, data, c, BCRYPT_USE_SYSTEM_PREFERRED_RNG) < 0) return FALSE;
    data += c; n -= c;
  }
  return TRUE;
}
`

// wineRig runs a Windows build of arcagent under Wine, with a temporary
// Wine prefix and a temporary %ProgramData%.
type wineRig struct {
	t           *testing.T
	dir         string // holds arcagent.exe
	env         []string
	programData string // the Linux path of %ProgramData%
}

func newWineRig(t *testing.T) *wineRig {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the Wine smoke test builds a Windows binary and starts Wine")
	}
	if _, err := exec.LookPath("wine"); err != nil {
		t.Skip("wine is not installed (apt-get install wine wine64): the Windows smoke test needs it; the cross-compile still runs in make test")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "arcagent.exe")
	build := exec.Command("go", "build", "-o", exe, ".")
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=windows go build: %v\n%s", err, out)
	}
	r := &wineRig{t: t, dir: dir, programData: filepath.Join(dir, "ProgramData")}
	if err := os.Mkdir(r.programData, 0o755); err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(dir, "wineprefix")
	r.env = append(os.Environ(), "WINEPREFIX="+prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=")
	_, stderr, code := r.run("version")
	if code != 0 && strings.Contains(stderr, "bcryptprimitives.dll") {
		r.installShim(prefix)
		_, stderr, code = r.run("version")
	}
	if code != 0 {
		t.Skipf("wine cannot run a Go Windows binary here (exit %d): %s", code, firstLine(stderr))
	}
	return r
}

// installShim builds processPrngShim into the prefix's system32, or skips.
func (r *wineRig) installShim(prefix string) {
	r.t.Helper()
	cc, err := exec.LookPath("x86_64-w64-mingw32-gcc")
	if err != nil {
		r.t.Skip("this Wine has no bcryptprimitives.dll (ProcessPrng), which Go binaries need, and x86_64-w64-mingw32-gcc (apt-get install gcc-mingw-w64-x86-64-win32) is missing to build a stand-in")
	}
	src := filepath.Join(r.dir, "shim.c")
	if err := os.WriteFile(src, []byte(processPrngShim), 0o644); err != nil {
		r.t.Fatal(err)
	}
	dll := filepath.Join(prefix, "drive_c", "windows", "system32", "bcryptprimitives.dll")
	if out, err := exec.Command(cc, "-shared", "-O2", "-o", dll, src, "-lbcrypt").CombinedOutput(); err != nil {
		r.t.Fatalf("build the ProcessPrng stand-in: %v\n%s", err, out)
	}
}

// winPath is the Windows name (drive Z:) of a Linux path.
func winPath(p string) string { return "Z:" + strings.ReplaceAll(p, "/", `\`) }

// run runs arcagent.exe args… under cmd.exe with %ProgramData% set to the
// rig's folder (Wine sets its own ProgramData for every process it starts).
func (r *wineRig) run(args ...string) (stdout, stderr string, code int) {
	r.t.Helper()
	line := "set ProgramData=" + winPath(r.programData) + "&& arcagent.exe " + strings.Join(args, " ")
	cmd := exec.Command("wine", "cmd", "/c", line)
	cmd.Dir, cmd.Env = r.dir, r.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		r.t.Fatalf("wine: %v", err)
	}
	return strings.ReplaceAll(out.String(), "\r\n", "\n"), strings.ReplaceAll(errb.String(), "\r\n", "\n"), code
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

func resultsOf(t *testing.T, stdout string) *reports.Report {
	t.Helper()
	var rep reports.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("the audit's JSON report does not parse: %v\n%s", err, stdout)
	}
	return &rep
}

// TestWindowsUnderWine: the Windows build's config verbs write the Windows
// layout under %ProgramData%, its audit of the configuration names the
// Windows script extensions, says "not evaluated on Windows yet" for the
// rules that need ACLs, owners or services, and the daemons are refused.
func TestWindowsUnderWine(t *testing.T) {
	r := newWineRig(t)

	if out, errOut, code := r.run("config", "set", "incomingconnections.enabled", "false"); code != 0 {
		t.Fatalf("config set: exit %d\n%s%s", code, out, errOut)
	}
	file := filepath.Join(r.programData, "AzureConnectedMachineAgent", "Config", "localconfig.json")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("config set did not write the Windows layout's localconfig.json: %v", err)
	}
	var saved map[string]any
	if err := json.Unmarshal(data, &saved); err != nil || saved["incomingconnections.enabled"] != false {
		t.Fatalf("localconfig.json = %s (%v), want incomingconnections.enabled false", data, err)
	}
	// A second write replaces the file (rename with replace).
	if out, errOut, code := r.run("config", "set", "guestconfiguration.enabled", "false"); code != 0 {
		t.Fatalf("config set (replacing localconfig.json): exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := r.run("config", "get", "incomingconnections.enabled"); code != 0 || strings.TrimSpace(out) != "false" {
		t.Errorf("config get = %q (exit %d, %s), want false", out, code, errOut)
	}
	out, errOut, code := r.run("config", "list")
	if code != 0 || !regexp.MustCompile(`(?m)^incomingconnections\.enabled\s+false\s+false\s*$`).MatchString(out) {
		t.Errorf("config list (exit %d, %s) does not show incomingconnections.enabled set to false:\n%s", code, errOut, out)
	}

	// The live audit reads that file.
	out, errOut, code = r.run("audit", "-o", "json")
	if code != 1 {
		t.Errorf("audit: exit %d, want 1 (the default config's extension findings)\n%s", code, errOut)
	}
	rep := resultsOf(t, out)
	if !strings.HasPrefix(rep.Target.OS, "Windows") {
		t.Errorf("target os = %q, want Windows…", rep.Target.OS)
	}
	byRule := map[string]reports.Result{}
	for _, res := range rep.Results {
		byRule[res.RuleID] = res
	}
	for _, id := range []string{"ARC-T0-001", "ARC-T0-003"} {
		if res := byRule[id]; res.Status != reports.StatusPass {
			t.Errorf("%s = %s %q, want pass from the localconfig.json config set wrote", id, res.Status, res.Message)
		}
	}
	for _, id := range []string{"ARC-PR-001", "ARC-PR-010", "ARC-PR-017", "ARC-PR-020", "ARC-EX-001", "ARC-BL-005"} {
		res, ok := byRule[id]
		if !ok || res.Status != reports.StatusNotApplicable || !strings.HasPrefix(res.Reason, "not evaluated on Windows yet") {
			t.Errorf("%s = %s %q, want not_applicable: not evaluated on Windows yet…", id, res.Status, res.Reason)
		}
	}
	for _, res := range rep.Results {
		if strings.HasPrefix(res.RuleID, "ARC-PR-") && res.Status != reports.StatusNotApplicable {
			t.Errorf("%s = %s on Windows: a privilege rule needs owners, ACLs or services, which are not read", res.RuleID, res.Status)
		}
	}
	if res := byRule["ARC-T0-004"]; res.Location.Path != `C:\ProgramData\AzureConnectedMachineAgent\Config\localconfig.json` &&
		!strings.HasSuffix(res.Location.Path, `\AzureConnectedMachineAgent\Config\localconfig.json`) {
		t.Errorf("ARC-T0-004 points at %q, want the Windows localconfig.json", res.Location.Path)
	}

	// A planned file: its script-capable entries are named as on Windows.
	planned := filepath.Join(r.dir, "planned.json")
	if err := os.WriteFile(planned, []byte(`{"incomingconnections.enabled": false, "extensions.allowlist": ["Microsoft.Compute/CustomScriptExtension", "Microsoft.Azure.Monitor/AzureMonitorWindowsAgent"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = r.run("audit", "--config", winPath(planned), "-o", "json")
	if code != 1 {
		t.Errorf("audit --config: exit %d, want 1 (CustomScriptExtension is allowed)\n%s", code, errOut)
	}
	rep = resultsOf(t, out)
	if rep.Target.Kind != reports.TargetPlanned {
		t.Errorf("target kind = %q, want planned", rep.Target.Kind)
	}
	var t0004 *reports.Result
	for i := range rep.Results {
		if rep.Results[i].RuleID == "ARC-T0-004" {
			t0004 = &rep.Results[i]
		}
	}
	switch {
	case t0004 == nil:
		t.Error("no ARC-T0-004 result")
	case t0004.Status != reports.StatusFail || !strings.Contains(t0004.Message, "Microsoft.Compute/CustomScriptExtension"):
		t.Errorf("ARC-T0-004 = %s %q, want a failure naming Microsoft.Compute/CustomScriptExtension", t0004.Status, t0004.Message)
	case strings.Contains(t0004.Message, "Linux"):
		t.Errorf("ARC-T0-004 names Linux extensions on Windows: %q", t0004.Message)
	}
	for _, rule := range rep.Rules {
		if rule.ID == "ARC-T0-004" && !strings.Contains(rule.Remediation, "AzureMonitorWindowsAgent") {
			t.Errorf("ARC-T0-004's remediation = %q, want the Windows agents", rule.Remediation)
		}
	}

	// The host profile checks a Linux host.
	out, _, _ = r.run("audit", "--profile", "host", "-o", "json")
	rep = resultsOf(t, out)
	if len(rep.Results) == 0 {
		t.Error("audit --profile host gave no results")
	}
	for _, res := range rep.Results {
		if res.Status != reports.StatusNotApplicable || !strings.Contains(res.Reason, "not applicable on Windows") {
			t.Errorf("%s = %s %q, want not_applicable on Windows", res.RuleID, res.Status, res.Reason)
		}
	}

	// The daemons and the Linux-only verbs say so, with their code.
	for _, args := range [][]string{{"daemon", "himds"}, {"show"}, {"audit", "--root", winPath(r.dir)}} {
		_, errOut, code := r.run(args...)
		if code != 2 || !strings.Contains(errOut, "ARC0560") || !strings.Contains(errOut, "not supported on Windows") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and ARC0560 not supported on Windows", args, code, errOut)
		}
	}
}

// TestWindowsPackageTestsUnderWine runs the Windows tests of the packages
// with a Windows implementation of their own (LockFileEx, rename with
// replace, confined reads) on Windows, under Wine.
func TestWindowsPackageTestsUnderWine(t *testing.T) {
	r := newWineRig(t)
	for _, pkg := range []string{"internal/atomicfile", "internal/saferead"} {
		exe := strings.ReplaceAll(pkg, "/", "_") + ".test.exe"
		build := exec.Command("go", "test", "-c", "-o", filepath.Join(r.dir, exe), "github.com/arcagent/arcagent/"+pkg)
		build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("GOOS=windows go test -c %s: %v\n%s", pkg, err, out)
		}
		cmd := exec.Command("wine", exe, "-test.v", "-test.run", "^TestWindows")
		cmd.Dir, cmd.Env = r.dir, r.env
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Errorf("%s's Windows tests under Wine: %v\n%s", pkg, err, out)
		}
	}
}
