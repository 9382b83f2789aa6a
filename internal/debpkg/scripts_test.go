package debpkg

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/layout"
)

func packages(t *testing.T) []Package {
	t.Helper()
	in := testInputs(t)
	a, err := Agent(in)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Server(in)
	if err != nil {
		t.Fatal(err)
	}
	return []Package{a, s}
}

func scriptFiles(t *testing.T, p Package) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	for name, body := range map[string]string{"preinst": p.Scripts.PreInst, "postinst": p.Scripts.PostInst, "prerm": p.Scripts.PreRm, "postrm": p.Scripts.PostRm} {
		f := filepath.Join(dir, p.Name+"."+name)
		if err := os.WriteFile(f, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		out[name] = f
	}
	return out
}

// TestScriptsSyntax parses every maintainer script with sh -n, and with
// shellcheck when it is installed.
func TestScriptsSyntax(t *testing.T) {
	shellcheck, _ := exec.LookPath("shellcheck")
	if shellcheck == "" {
		t.Log("shellcheck is not installed: only sh -n checks the scripts")
	}
	for _, p := range packages(t) {
		for name, f := range scriptFiles(t, p) {
			t.Run(p.Name+"/"+name, func(t *testing.T) {
				if out, err := exec.Command("sh", "-n", f).CombinedOutput(); err != nil {
					t.Errorf("sh -n: %v\n%s", err, out)
				}
				if shellcheck != "" {
					if out, err := exec.Command(shellcheck, "-s", "sh", f).CombinedOutput(); err != nil {
						t.Errorf("shellcheck: %v\n%s", err, out)
					}
				}
			})
		}
	}
}

// TestScriptsFromLayout: postinst fixes every directory of the layout
// with its owner and mode, the users are the layout's, and purge removes
// the state trees (and only on purge).
func TestScriptsFromLayout(t *testing.T) {
	a := packages(t)[0]
	for _, e := range layout.Entries() {
		if e.Kind != layout.KindDir {
			continue
		}
		want := "fix_dir " + e.Path + " " + e.Owner + " " + e.Group + " " + perm(e.Mode)
		if !strings.Contains(a.Scripts.PostInst, "\t"+want+"\n") {
			t.Errorf("postinst does not run %q", want)
		}
	}
	for _, want := range []string{
		"useradd --system --gid himds",
		"useradd --system --gid arcproxy",
		"systemd-sysusers --replace=" + SysusersFile + " -",
	} {
		if !strings.Contains(a.Scripts.PreInst, want) || !strings.Contains(a.Scripts.PostInst, want) {
			t.Errorf("preinst and postinst should both contain %q", want)
		}
	}
	purge := a.Scripts.PostRm[strings.Index(a.Scripts.PostRm, "purge)"):]
	remove := a.Scripts.PostRm[:strings.Index(a.Scripts.PostRm, "purge)")]
	for _, tree := range []string{layout.StateDir, layout.GuestConfigDir} {
		if !strings.Contains(purge, "rm -rf "+tree+"\n") {
			t.Errorf("postrm purge does not remove %s", tree)
		}
		if strings.Contains(remove, tree) {
			t.Errorf("postrm removes %s on remove: only purge may", tree)
		}
	}
	for _, u := range []string{"userdel himds", "userdel arcproxy", "groupdel himds", "groupdel arcproxy"} {
		if !strings.Contains(purge, u) {
			t.Errorf("postrm purge does not run %s", u)
		}
	}
	if strings.Contains(a.Scripts.PreRm, "upgrade)") {
		t.Error("prerm acts on upgrade: postinst restarts the services instead")
	}
}

func perm(m os.FileMode) string { return fmt.Sprintf("%04o", uint32(m.Perm())) }

// TestUnitsVerify runs systemd-analyze verify over the units. The host has
// no agent installed, so the binaries' paths are swapped for stand-ins in
// copies of the units; every other directive is checked as it is.
func TestUnitsVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the units are not verified")
	}
	dir := t.TempDir()
	stand := filepath.Join(dir, "bin")
	if err := os.Mkdir(stand, 0o755); err != nil {
		t.Fatal(err)
	}
	trueBin, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1) to stand in for the binaries")
	}
	for _, b := range []string{"arcagent", "arcserver"} {
		if err := os.Symlink(trueBin, filepath.Join(stand, b)); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(unitDir)
	if err != nil {
		t.Fatal(err)
	}
	var units []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(unitDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.NewReplacer(layout.Binary, filepath.Join(stand, "arcagent"), ServerBinary, filepath.Join(stand, "arcserver")).Replace(string(data))
		f := filepath.Join(dir, e.Name())
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, f)
	}
	out, err := exec.Command(sa, append([]string{"verify"}, units...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
