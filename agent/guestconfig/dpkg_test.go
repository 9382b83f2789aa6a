package guestconfig

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// debVersionTable was recorded with `dpkg --compare-versions A lt|eq B`
// (dpkg 1.22 on Debian): want is -1, 0 or 1.
var debVersionTable = []struct {
	a, b string
	want int
}{
	{"1.0", "1.0", 0},
	{"1.0", "1.0-0", 0},
	{"1.0", "1.0-1", -1},
	{"1.0-1", "1.0-2", -1},
	{"1.0~rc1", "1.0", -1},
	{"1.0~rc1", "1.0~rc1~", 1},
	{"1.0~", "1.0", -1},
	{"1.0", "1.0.0", -1},
	{"1.0a", "1.0", 1},
	{"1.0a", "1.0+", -1},
	{"1.0+", "1.0.", -1},
	{"1:0.9", "2.0", 1},
	{"0:1.0", "1.0", 0},
	{"1.2.3", "1.2.10", -1},
	{"1.002", "1.2", 0},
	{"2.30-1ubuntu1", "2.30-1ubuntu1.1", -1},
	{"2.30-1ubuntu1", "2.30-1", 1},
	{"1:9.6p1-3", "1:9.7p1-1", -1},
	{"8.9p1-3ubuntu0.10", "8.9p1-3ubuntu0.9", 1},
	{"7.88.1-10+deb12u5", "7.88.1-10+deb12u12", -1},
	{"1.0-1~bpo1", "1.0-1", -1},
	{"1.0-a", "1.0-1", 1},
	{"3.0.2-0ubuntu1.15", "3.0.2-0ubuntu1.9", 1},
	{"1.1.1f-1ubuntu2", "1.1.1f-1ubuntu2.16", -1},
	{"0.0", "0", 1},
	{"1.0-1-1", "1.0-1", 1},
	{"1.0--1", "1.0-1", 1},
	{"2:1.0", "10:0.1", -1},
	{"1.0.0~beta1+dfsg", "1.0.0~beta1", 1},
}

func TestCompareDebVersions(t *testing.T) {
	for _, c := range debVersionTable {
		if got := CompareDebVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareDebVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := CompareDebVersions(c.b, c.a); got != -c.want {
			t.Errorf("CompareDebVersions(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

// dpkgCompare asks dpkg itself.
func dpkgCompare(t *testing.T, a, b string) int {
	t.Helper()
	for _, op := range []struct {
		op string
		r  int
	}{{"lt", -1}, {"eq", 0}} {
		err := exec.Command("dpkg", "--compare-versions", a, op.op, b).Run()
		if err == nil {
			return op.r
		}
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return 1
}

// Where dpkg is installed, the table and the versions of the host's own
// packages are checked against it (read only).
func TestCompareDebVersionsAgainstDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed")
	}
	for _, c := range debVersionTable[:8] {
		if got := dpkgCompare(t, c.a, c.b); got != c.want {
			t.Errorf("dpkg says %q vs %q is %d; the table says %d", c.a, c.b, got, c.want)
		}
	}
	b, err := os.ReadFile(DpkgStatusFile)
	if err != nil {
		t.Skip(err)
	}
	var vs []string
	for _, p := range ParseDpkgStatus(b) {
		if p.Version != "" {
			vs = append(vs, p.Version)
		}
	}
	if len(vs) < 2 {
		t.Skip("too few packages")
	}
	step := max(1, len(vs)/20)
	for i := 0; i+step < len(vs); i += step {
		a, b := vs[i], vs[i+step]
		if got, want := CompareDebVersions(a, b), dpkgCompare(t, a, b); got != want {
			t.Errorf("CompareDebVersions(%q, %q) = %d, dpkg says %d", a, b, got, want)
		}
	}
}

const dpkgStatus = `Package: openssh-server
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 1:9.2p1-2+deb12u3
Description: secure shell (SSH) server
 a multi-line description
 .
 Package: not-a-package

Package: telnetd
Status: deinstall ok config-files
Architecture: amd64
Version: 0.17-44

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u7

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.36-9+deb12u4

Package: broken
Status: install reinstreq half-configured
Architecture: all
Version: 1.0
`

func TestParseDpkgStatus(t *testing.T) {
	ps := ParseDpkgStatus([]byte(dpkgStatus))
	var got []string
	for _, p := range ps {
		got = append(got, p.Name+"|"+p.Architecture+"|"+p.Version+"|"+p.Status)
	}
	want := []string{
		"openssh-server|amd64|1:9.2p1-2+deb12u3|install ok installed",
		"telnetd|amd64|0.17-44|deinstall ok config-files",
		"libc6|amd64|2.36-9+deb12u7|install ok installed",
		"libc6|i386|2.36-9+deb12u4|install ok installed",
		"broken|all|1.0|install reinstreq half-configured",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("parsed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !ps[0].Installed() || ps[1].Installed() || ps[4].Installed() {
		t.Fatal("Installed() wrong")
	}
}

func TestPackage(t *testing.T) {
	cases := []struct {
		body      string
		compliant bool
		reason    string
		evidence  map[string]string
	}{
		{"name: openssh-server", true, "", map[string]string{"version": "1:9.2p1-2+deb12u3", "installed": "true"}},
		{"name: openssh-server\nminVersion: 1:9.2p1-2+deb12u2", true, "", nil},
		{"name: openssh-server\nminVersion: 1:9.2p1-2+deb12u10", false, "is 1:9.2p1-2+deb12u3, want at least 1:9.2p1-2+deb12u10", nil},
		{"name: openssh-server\nversion: 1:9.2p1-2+deb12u3", true, "", nil},
		{"name: openssh-server\nversion: 9.2p1-2+deb12u3", false, "want 9.2p1-2+deb12u3", nil},
		{"name: telnetd\nstate: absent", true, "", map[string]string{"installed": "false", "status": "deinstall ok config-files"}},
		{"name: telnetd", false, "not fully installed (deinstall ok config-files)", nil},
		{"name: openssh-server\nstate: absent", false, "is installed (1:9.2p1-2+deb12u3), want absent", nil},
		{"name: nginx", false, "nginx is not installed", map[string]string{"installed": "false"}},
		{"name: nginx\nstate: absent", true, "", nil},
		{"name: libc6\nminVersion: 2.36-9+deb12u7", false, "libc6:i386 is 2.36-9+deb12u4", nil},
		{"name: libc6:amd64\nminVersion: 2.36-9+deb12u7", true, "", map[string]string{"version": "2.36-9+deb12u7"}},
		{"name: broken", false, "half-configured", nil},
	}
	root := testRoot(t, map[string]string{"var/lib/dpkg/status": dpkgStatus}, nil)
	env := writeEnv(t, root)
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			r := oneResource(t, "package", c.body)
			obs, err := r.Test(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			if obs.Compliant != c.compliant || !strings.Contains(obs.Reason, c.reason) {
				t.Fatalf("compliant %v reason %q, want %v %q (evidence %v)", obs.Compliant, obs.Reason, c.compliant, c.reason, obs.Evidence)
			}
			for k, want := range c.evidence {
				if got := obs.Evidence[k]; !strings.Contains(got, want) {
					t.Errorf("evidence %s = %q, want %q", k, got, want)
				}
			}
			if !c.compliant {
				before := treeDigest(t, root)
				err := r.Set(context.Background(), env)
				if err == nil || !strings.Contains(err.Error(), "package changes need the live system") {
					t.Fatalf("set under a fixture root: %v", err)
				}
				if treeDigest(t, root) != before {
					t.Fatal("a refused set changed the tree")
				}
			}
		})
	}
	t.Run("no status file", func(t *testing.T) {
		env := writeEnv(t, testRoot(t, nil, nil))
		_, err := oneResource(t, "package", "name: nginx\nstate: absent").Test(context.Background(), env)
		if err == nil || !strings.Contains(err.Error(), "need a dpkg-based system") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestPackageDecode(t *testing.T) {
	for _, body := range []string{
		"name: -rf",
		"name: Nginx",
		"name: nginx\nstate: latest",
		"name: nginx\nstate: absent\nversion: \"1.0\"",
		"name: nginx\nversion: \"1.0\"\nminVersion: \"1.0\"",
		"name: nginx\nversion: v1.0",
		"name: nginx\nversion: 1.0 && reboot",
	} {
		if _, err := tryResource("package", body); err == nil {
			t.Errorf("%q: compiled, want an error", body)
		}
	}
}

// The live host's status file parses and agrees with dpkg-query (read only).
func TestPackageLiveRead(t *testing.T) {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "dpkg").Output()
	if err != nil {
		t.Skip("dpkg-query unavailable:", err)
	}
	env, err := NewEnv("/", EnvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	obs, err := oneResource(t, "package", "name: dpkg\nversion: "+string(bytes.TrimSpace(out))).Test(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if !obs.Compliant {
		t.Fatalf("dpkg %s not found as installed: %s %v", out, obs.Reason, obs.Evidence)
	}
}
