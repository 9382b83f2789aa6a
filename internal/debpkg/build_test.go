package debpkg

import (
	"context"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/layout"
)

// debEntry is one line of dpkg-deb -c.
type debEntry struct {
	mode, owner, target string
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func debContents(t *testing.T, deb string) map[string]debEntry {
	t.Helper()
	m := map[string]debEntry{}
	for _, line := range strings.Split(strings.TrimSpace(dpkgDeb(t, "-c", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", line)
		}
		p := "/" + strings.Trim(strings.TrimPrefix(f[5], "."), "/")
		e := debEntry{mode: f[0], owner: f[1]}
		if len(f) == 8 && f[6] == "->" {
			e.target = f[7]
		}
		m[p] = e
	}
	return m
}

// lsMode is the ls -l form of an item's type and mode.
func lsMode(it Item) string {
	switch it.Type {
	case TypeDir:
		return (it.Mode.Perm() | fs.ModeDir).String()
	case TypeSymlink:
		return "l---------"
	}
	return it.Mode.Perm().String()
}

// TestBuildDeb builds both packages into a temp dir and inspects them with
// dpkg-deb: every item with its owner and mode, nothing else but parent
// directories, the conffile, the control fields and the scripts.
func TestBuildDeb(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed: the built packages are not inspected")
	}
	in := testInputs(t)
	out := t.TempDir()
	paths, err := Build(context.Background(), in, out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(out, "arcagent_1.2.3_amd64.deb"), filepath.Join(out, "arcserver_1.2.3_amd64.deb")}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Fatalf("Build wrote %v, want %v", paths, want)
	}
	for i, mk := range []func(Inputs) (Package, error){Agent, Server} {
		p, err := mk(in)
		if err != nil {
			t.Fatal(err)
		}
		deb := paths[i]
		t.Run(p.Name, func(t *testing.T) {
			got := debContents(t, deb)
			items := map[string]bool{}
			for _, it := range p.Items {
				items[it.Path] = true
				e, ok := got[it.Path]
				if !ok {
					t.Errorf("%s is not in %s", it.Path, filepath.Base(deb))
					continue
				}
				if e.owner != it.Owner+"/"+it.Group {
					t.Errorf("%s is owned by %s, want %s/%s", it.Path, e.owner, it.Owner, it.Group)
				}
				if e.mode != lsMode(it) {
					t.Errorf("%s has mode %s, want %s", it.Path, e.mode, lsMode(it))
				}
				if it.Type == TypeSymlink && e.target != it.Target {
					t.Errorf("%s links to %q, want %q", it.Path, e.target, it.Target)
				}
			}
			for p, e := range got {
				if items[p] {
					continue
				}
				// Only plain parent directories may be added.
				if e.mode != "drwxr-xr-x" || e.owner != "root/root" {
					t.Errorf("%s (%s %s) is in the package but not an item", p, e.mode, e.owner)
				}
			}
			for _, base := range baseDirs {
				if _, ok := got[base]; ok {
					t.Errorf("%s is in the package: dpkg would remove it on purge", base)
				}
			}
			fields := dpkgDeb(t, "-f", deb, "Package", "Version", "Architecture")
			for _, f := range []string{"Package: " + p.Name, "Version: 1.2.3", "Architecture: amd64"} {
				if !strings.Contains(fields, f+"\n") {
					t.Errorf("control lacks %q:\n%s", f, fields)
				}
			}
			info := dpkgDeb(t, "-I", deb)
			for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
				if !strings.Contains(info, " "+s+" ") {
					t.Errorf("no %s script in:\n%s", s, info)
				}
			}
			if p.Name == AgentPackage {
				conffiles := dpkgDeb(t, "-I", deb, "conffiles")
				if strings.TrimSpace(conffiles) != layout.LocalConfig {
					t.Errorf("conffiles = %q, want %s only", conffiles, layout.LocalConfig)
				}
				if c := dpkgDeb(t, "-f", deb, "Conflicts"); strings.TrimSpace(c) != "azcmagent" {
					t.Errorf("Conflicts = %q, want azcmagent (the same paths)", c)
				}
				if postinst := dpkgDeb(t, "-I", deb, "postinst"); postinst != p.Scripts.PostInst {
					t.Error("the packaged postinst is not the generated one")
				}
			}
		})
	}
}
