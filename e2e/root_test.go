//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Suite is the Debian release the root is made of.
const Suite = "bookworm"

// defaultCache keeps the debootstrap tarball between runs (ARCAGENT_E2E_CACHE
// overrides it; CI may keep this directory).
const defaultCache = "/var/cache/arcagent-e2e"

// runCmd runs a command and returns its combined output; the test fails
// when it does not exit 0.
func runCmd(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	out, err := tryCmd(dir, nil, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// tryCmd runs a command and returns its combined output and error.
func tryCmd(dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"), env...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.String(), err
}

// chroot runs a command inside root with a clean environment.
func chroot(root string, args ...string) (string, error) {
	return tryCmd("/", []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}, "chroot", append([]string{root}, args...)...)
}

// requireTools skips the test when it cannot run here.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the installed-system test needs root (debootstrap, chroot, dpkg): run make e2e as root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: apt-get install debootstrap dpkg-dev (what .ci/run installs)", tool)
		}
	}
}

// mirror is the machine's configured Debian mirror: ARCAGENT_E2E_MIRROR, else
// the first URI of /etc/apt/sources.list.d/*.sources or sources.list that
// serves Suite (not the security archive), else deb.debian.org.
func mirror() string {
	if m := os.Getenv("ARCAGENT_E2E_MIRROR"); m != "" {
		return m
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		if m := mirrorDeb822(f); m != "" {
			return m
		}
	}
	lists, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	for _, f := range append([]string{"/etc/apt/sources.list"}, lists...) {
		if m := mirrorList(f); m != "" {
			return m
		}
	}
	return "http://deb.debian.org/debian"
}

// mirrorDeb822 reads a deb822 .sources file: stanzas of Types, URIs, Suites.
func mirrorDeb822(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, stanza := range strings.Split(string(data), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, " ") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if !strings.Contains(fields["types"], "deb") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		if !containsWord(fields["suites"], Suite) {
			continue
		}
		for _, u := range strings.Fields(fields["uris"]) {
			if !strings.Contains(u, "security") {
				return u
			}
		}
	}
	return ""
}

// mirrorList reads a one-line-style sources.list: deb [opts] URI suite comp….
func mirrorList(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) < 3 || w[0] != "deb" {
			continue
		}
		w = w[1:]
		if strings.HasPrefix(w[0], "[") {
			for len(w) > 0 && !strings.HasSuffix(w[0], "]") {
				w = w[1:]
			}
			if len(w) > 0 {
				w = w[1:]
			}
		}
		if len(w) >= 2 && w[1] == Suite && !strings.Contains(w[0], "security") {
			return w[0]
		}
	}
	return ""
}

func containsWord(list, w string) bool {
	for _, f := range strings.Fields(list) {
		if f == w {
			return true
		}
	}
	return false
}

// debArch is the machine's Debian architecture.
func debArch(t *testing.T) string {
	return strings.TrimSpace(runCmd(t, "/", "dpkg", "--print-architecture"))
}

// newRoot returns a fresh Debian root under a temporary directory: the
// cached tarball extracted, or debootstrap run (and its result cached).
// It reports whether the cache was used.
func newRoot(t *testing.T, arch string) (string, bool) {
	t.Helper()
	cache := os.Getenv("ARCAGENT_E2E_CACHE")
	if cache == "" {
		cache = defaultCache
	}
	tarball := filepath.Join(cache, fmt.Sprintf("debootstrap-%s-minbase-%s.tar.gz", Suite, arch))
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(tarball); err == nil && fi.Mode().IsRegular() {
		start := time.Now()
		runCmd(t, "/", "tar", "-xpzf", tarball, "--numeric-owner", "-C", root)
		t.Logf("root from the cached %s in %s", tarball, time.Since(start).Round(time.Millisecond))
		return root, true
	}
	m := mirror()
	start := time.Now()
	if out, err := tryCmd("/", nil, "debootstrap", "--variant=minbase", Suite, root, m); err != nil {
		t.Fatalf("debootstrap --variant=minbase %s from %s failed (is the mirror reachable?): %v\n%s", Suite, m, err, tail(out, 3000))
	}
	t.Logf("debootstrap --variant=minbase %s %s from %s in %s", Suite, arch, m, time.Since(start).Round(time.Second))
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Logf("cannot cache the root in %s: %v", cache, err)
		return root, false
	}
	tmp := tarball + ".tmp"
	if out, err := tryCmd("/", nil, "tar", "-czf", tmp, "--numeric-owner", "-C", root, "."); err != nil {
		os.Remove(tmp)
		t.Logf("cannot cache the root: %v\n%s", err, out)
		return root, false
	}
	if err := os.Rename(tmp, tarball); err != nil {
		t.Logf("cannot cache the root: %v", err)
	}
	return root, false
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// skipped are the parts of a root that change by themselves or by dpkg's
// own bookkeeping, left out of the before/after comparison.
var skipped = []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/lib/dpkg", "/var/log", "/var/cache/debconf", "/var/cache/ldconfig", "/etc/ld.so.cache"}

// entry is one path of a root: kind, mode and owner (and a link's target).
type entry string

// snapshot lists every path of root with its kind, mode and owner, and the
// users and groups of its account files.
func snapshot(t *testing.T, root string) (map[string]entry, []string) {
	t.Helper()
	files := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		for _, s := range skipped {
			if rel == s || strings.HasPrefix(rel, s+"/") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		e := fmt.Sprintf("%s %d:%d", fi.Mode(), st.Uid, st.Gid)
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			e += " -> " + target
		}
		files[rel] = entry(e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var accounts []string
	for _, f := range []string{"passwd", "group"} {
		data, err := os.ReadFile(filepath.Join(root, "etc", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if name, _, ok := strings.Cut(line, ":"); ok {
				accounts = append(accounts, f+":"+name)
			}
		}
	}
	sort.Strings(accounts)
	return files, accounts
}

// diff lists what differs between two snapshots: "+ path" added, "- path"
// removed, "~ path" changed.
func diff(before, after map[string]entry) []string {
	var out []string
	for p, e := range after {
		b, ok := before[p]
		switch {
		case !ok:
			out = append(out, "+ "+p+" ("+string(e)+")")
		case b != e:
			out = append(out, "~ "+p+" ("+string(b)+" -> "+string(e)+")")
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			out = append(out, "- "+p)
		}
	}
	sort.Strings(out)
	return out
}

func TestMirrorParsing(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, file, text, want string
	}{
		{"deb822", "a.sources", "Types: deb\nURIs: http://security.debian.org/debian-security\nSuites: bookworm-security\n\nTypes: deb deb-src\n# comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n", "http://mirror.example/debian"},
		{"deb822 disabled", "b.sources", "Types: deb\nEnabled: no\nURIs: http://x/debian\nSuites: bookworm\n", ""},
		{"list", "c.list", "# x\ndeb [signed-by=/k.gpg arch=amd64] http://list.example/debian bookworm main\n", "http://list.example/debian"},
		{"list other suite", "d.list", "deb http://list.example/debian trixie main\n", ""},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, tt.file)
		if err := os.WriteFile(p, []byte(tt.text), 0o644); err != nil {
			t.Fatal(err)
		}
		got := mirrorList(p)
		if strings.HasSuffix(p, ".sources") {
			got = mirrorDeb822(p)
		}
		if got != tt.want {
			t.Errorf("%s: mirror %q, want %q", tt.name, got, tt.want)
		}
	}
}
