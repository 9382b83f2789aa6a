//go:build !windows

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/layout"
)

func localConfigPath(root string) string { return layout.New(root).LocalConfig() }

func readSettings(t *testing.T, root string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(localConfigPath(root))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("localconfig.json is not JSON: %v", err)
	}
	return m
}

func checkMode(t *testing.T, root string) {
	t.Helper()
	fi, err := os.Stat(localConfigPath(root))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("localconfig.json mode = %o, want 640", fi.Mode().Perm())
	}
}

// The lockdown example of the security guidance, verbatim but for the binary
// name, through a real process; and again with typographic quotes pasted in.
func TestLockdownExampleVerbatim(t *testing.T) {
	bin := buildArcagent(t)
	allow := "Microsoft.Azure.Monitor/AzureMonitorWindowsAgent,Microsoft.Azure.AzureDefenderForServers/MDE.Windows"
	for _, quoted := range []bool{false, true} {
		t.Run(fmt.Sprintf("typographic=%v", quoted), func(t *testing.T) {
			root := t.TempDir()
			q := func(s string) string {
				if quoted {
					return "\u201c" + s + "\u201d"
				}
				return s
			}
			for _, args := range [][]string{
				{"config", "set", "incomingconnections.enabled", q("false")},
				{"config", "set", "guestconfiguration.enabled", q("false")},
				{"config", "set", "extensions.allowlist", q(allow)},
			} {
				cmd := exec.Command(bin, args...)
				cmd.Env = append(os.Environ(), "ARCAGENT_ROOT="+root)
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%v: %v\n%s", args, err, out)
				}
				if quoted != strings.Contains(string(out), "typographic quotes") {
					t.Errorf("%v: typographic-quote warning shown=%v, want %v: %s", args, !quoted, quoted, out)
				}
				checkMode(t, root)
			}
			m := readSettings(t, root)
			if m["incomingconnections.enabled"] != false || m["guestconfiguration.enabled"] != false {
				t.Errorf("settings = %v", m)
			}
			got := fmt.Sprint(m["extensions.allowlist"])
			if got != "[Microsoft.Azure.Monitor/AzureMonitorWindowsAgent Microsoft.Azure.AzureDefenderForServers/MDE.Windows]" {
				t.Errorf("allowlist = %s", got)
			}
		})
	}
}

func TestConfigCommands(t *testing.T) {
	root := t.TempDir()
	steps := []struct {
		args     []string
		code     int
		stdout   string // substring
		stderr   string // substring
		fileHas  string // substring of localconfig.json after the step
		fileLack string
	}{
		{[]string{"config", "set", "extensions.allowlist", "Contoso/Backup,", "Fabrikam/Agent"}, 0, "Contoso/Backup,Fabrikam/Agent", "", `"Fabrikam/Agent"`, ""},
		{[]string{"config", "set", "extensions.allowlist", "-a", "contoso/backup, Northwind/Mon"}, 0, "Contoso/Backup,Fabrikam/Agent,Northwind/Mon", "", `"Northwind/Mon"`, `"contoso/backup"`},
		{[]string{"config", "set", "extensions.allowlist", "--remove", "FABRIKAM/AGENT"}, 0, "Contoso/Backup,Northwind/Mon", "", "", "Fabrikam"},
		{[]string{"config", "set", "extensions.allowlist", "-a", "-r", "X/Y"}, 2, "", "ARC0013", "", "X/Y"},
		{[]string{"config", "set", "incomingconnections.enabled", "-a", "false"}, 2, "", "ARC0012", "", "incomingconnections"},
		{[]string{"config", "set", "guestconfiguration.agent.cpulimit", "500"}, 2, "", "an integer from 1 to 100", "", "cpulimit"},
		{[]string{"config", "set", "no.such.property", "1"}, 2, "", "ARC0010", "", "no.such"},
		{[]string{"config", "get", "extensions.allowlist"}, 0, "Contoso/Backup,Northwind/Mon", "", "", ""},
		{[]string{"config", "set", "config.mode", "monitor"}, 0, "", "", `"config.mode": "monitor"`, ""},
		{[]string{"config", "set", "extensions.blocklist", "A/B"}, 2, "", "ARC0014", "", `"A/B"`},
		{[]string{"config", "clear", "extensions.allowlist"}, 2, "", "ARC0014", `"Northwind/Mon"`, ""},
		{[]string{"config", "get", "incomingconnections.enabled"}, 0, "true", "monitor mode", "", ""},
		{[]string{"config", "clear", "config.mode"}, 0, "config.mode = full", "", "", "monitor"},
		{[]string{"config", "clear", "extensions.allowlist"}, 0, "", "", "", "Northwind"},
		{[]string{"config", "clear"}, 2, "", "ARC0001", "", ""},
		{[]string{"config", "info", "extensions.allowlist"}, 0, "Allow/None", "", "", ""},
		{[]string{"config", "info", "bogus"}, 2, "", "ARC0010", "", ""},
	}
	for i, st := range steps {
		stdout, stderr, code := runCLI(t, append([]string{"--root", root}, st.args...)...)
		if code != st.code || !strings.Contains(stdout, st.stdout) || !strings.Contains(stderr, st.stderr) {
			t.Fatalf("step %d %v: code %d stdout %q stderr %q; want code %d, stdout ~%q, stderr ~%q", i, st.args, code, stdout, stderr, st.code, st.stdout, st.stderr)
		}
		if st.code != 0 && !strings.Contains(stderr, "what to do:") {
			t.Errorf("step %d: error without a remedy: %q", i, stderr)
		}
		b, _ := os.ReadFile(localConfigPath(root))
		if st.fileHas != "" && !strings.Contains(string(b), st.fileHas) {
			t.Errorf("step %d: file lacks %q:\n%s", i, st.fileHas, b)
		}
		if st.fileLack != "" && strings.Contains(string(b), st.fileLack) {
			t.Errorf("step %d: file has %q:\n%s", i, st.fileLack, b)
		}
		if len(b) > 0 {
			checkMode(t, root)
		}
	}
}

func TestConfigListJSONShape(t *testing.T) {
	root := t.TempDir()
	if _, e, c := runCLI(t, "--root", root, "config", "set", "config.mode", "monitor"); c != 0 {
		t.Fatal(e)
	}
	out, _, code := runCLI(t, "--root", root, "config", "list", "--json")
	if code != 0 {
		t.Fatalf("code %d", code)
	}
	var doc struct {
		LocalSettings []struct {
			Key            string
			Value          any
			EffectiveValue any
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not the LocalSettings shape: %v\n%s", err, out)
	}
	if len(doc.LocalSettings) != len(config.Names()) {
		t.Fatalf("%d settings, want %d", len(doc.LocalSettings), len(config.Names()))
	}
	for _, s := range doc.LocalSettings {
		if s.Key == "incomingconnections.enabled" && (s.Value != true || s.EffectiveValue != false) {
			t.Errorf("monitor mode: %s configured %v effective %v", s.Key, s.Value, s.EffectiveValue)
		}
	}
	table, _, _ := runCLI(t, "--root", root, "config", "list")
	if !strings.Contains(table, "CONFIGURED") || !strings.Contains(table, "EFFECTIVE") || !strings.Contains(table, "monitor mode") {
		t.Errorf("table lacks configured/effective columns:\n%s", table)
	}
}

func TestConfigCorruptFile(t *testing.T) {
	root := t.TempDir()
	p := localConfigPath(root)
	_ = os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte("{not json"), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"config", "list"}, {"config", "set", "guestconfiguration.enabled", "false"}} {
		_, stderr, code := runCLI(t, append([]string{"--root", root}, args...)...)
		if code != 3 || !strings.Contains(stderr, p) || !strings.Contains(stderr, "arcagent config clear --all") {
			t.Errorf("%v: code %d stderr %q; want 3 naming the file and the repair", args, code, stderr)
		}
	}
	if b, _ := os.ReadFile(p); string(b) != "{not json" {
		t.Fatal("corrupt file was modified")
	}
	out, _, code := runCLI(t, "--root", root, "config", "clear", "--all")
	if code != 0 || !strings.Contains(out, "kept in") {
		t.Fatalf("clear --all: code %d out %q", code, out)
	}
	if _, _, code := runCLI(t, "--root", root, "config", "list"); code != 0 {
		t.Errorf("after repair: code %d", code)
	}
}

func TestConfigUnknownKeysKept(t *testing.T) {
	root := t.TempDir()
	p := localConfigPath(root)
	_ = os.MkdirAll(filepath.Dir(p), 0o755)
	_ = os.WriteFile(p, []byte(`{"vendor.extra": "keep me"}`), 0o640)
	_, stderr, code := runCLI(t, "--root", root, "config", "set", "guestconfiguration.enabled", "false")
	if code != 0 || !strings.Contains(stderr, "vendor.extra") {
		t.Fatalf("code %d stderr %q: want a warning naming the unknown key", code, stderr)
	}
	if m := readSettings(t, root); m["vendor.extra"] != "keep me" || m["guestconfiguration.enabled"] != false {
		t.Errorf("settings = %v", m)
	}
}

// Two real processes change the file at once; both changes must land.
func TestConcurrentConfigSetProcesses(t *testing.T) {
	bin := buildArcagent(t)
	for round := 0; round < 5; round++ {
		root := t.TempDir()
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for _, args := range [][]string{
			{"config", "set", "extensions.blocklist", "-a", "Contoso/One"},
			{"config", "set", "extensions.blocklist", "-a", "Contoso/Two"},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := exec.Command(bin, append([]string{"--root", root}, args...)...).CombinedOutput()
				if err != nil {
					errs <- fmt.Errorf("%v: %v: %s", args, err, out)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got := fmt.Sprint(readSettings(t, root)["extensions.blocklist"])
		if !strings.Contains(got, "Contoso/One") || !strings.Contains(got, "Contoso/Two") {
			t.Fatalf("round %d: blocklist = %s, an update was lost", round, got)
		}
		checkMode(t, root)
	}
}

// Writing without permission says to run as root (exit 3, ARC0018).
func TestConfigSetWithoutPermission(t *testing.T) {
	bin := buildArcagent(t)
	root := t.TempDir()
	if _, e, c := runCLI(t, "--root", root, "config", "set", "guestconfiguration.enabled", "false"); c != 0 {
		t.Fatal(e)
	}
	cmd := exec.Command(bin, "--root", root, "config", "set", "incomingconnections.enabled", "false")
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Skip("no user nobody to drop to")
		}
		uid, _ := strconv.Atoi(nobody.Uid)
		gid, _ := strconv.Atoi(nobody.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		// nobody must be able to reach the tree and the binary to show the
		// error. Only the test's own directories are opened up: the system
		// temporary directory keeps its mode (1777, sticky).
		for d := root; d != filepath.Clean(os.TempDir()) && d != "/" && d != "."; d = filepath.Dir(d) {
			_ = os.Chmod(d, 0o755)
		}
		_ = os.Chmod(filepath.Dir(bin), 0o755)
	} else {
		if err := os.Chmod(filepath.Dir(localConfigPath(root)), 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(filepath.Dir(localConfigPath(root)), 0o755) })
	}
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 3 || !strings.Contains(string(out), "ARC0018") || !strings.Contains(string(out), "run the command as root") {
		t.Fatalf("err %v, output %q; want exit 3 with ARC0018 and 'run as root'", err, out)
	}
	if m := readSettings(t, root); m["incomingconnections.enabled"] != nil {
		t.Errorf("the refused change was written: %v", m)
	}
}

// config list fits the width it is given: the effective column wraps, and
// nothing is lost; without a width (a pipe) every row stays one line.
func TestConfigListFitsWidth(t *testing.T) {
	root := t.TempDir()
	if _, e, c := runCLI(t, "--root", root, "config", "set", "config.mode", "monitor"); c != 0 {
		t.Fatal(e)
	}
	t.Setenv("COLUMNS", "")
	wide, _, _ := runCLI(t, "--root", root, "config", "list")
	rows := strings.Count(wide, "\n")
	for _, width := range []int{80, 70} {
		t.Setenv("COLUMNS", fmt.Sprint(width))
		out, _, code := runCLI(t, "--root", root, "config", "list")
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if utf8.RuneCountInString(l) > width {
				t.Errorf("COLUMNS=%d: line of %d: %q", width, utf8.RuneCountInString(l), l)
			}
		}
		if strings.Count(out, "\n") <= rows || !strings.Contains(strings.Join(strings.Fields(out), " "), "monitor mode") {
			t.Errorf("COLUMNS=%d: nothing wrapped, or the reason is lost:\n%s", width, out)
		}
	}
}

// TestConfigSetExampleNamesLinuxAgents: the help's allowlist example is one
// a Linux host can paste without blocking its own monitoring agents.
func TestConfigSetExampleNamesLinuxAgents(t *testing.T) {
	out, _, code := runCLI(t, "config", "set", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(out, "WindowsAgent") || strings.Contains(out, "MDE.Windows") {
		t.Errorf("config set --help suggests the Windows agents:\n%s", out)
	}
	if !strings.Contains(out, "AzureMonitorLinuxAgent") || !strings.Contains(out, "MDE.Linux") {
		t.Errorf("config set --help lacks the Linux agents:\n%s", out)
	}
}
