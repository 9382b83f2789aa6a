package guestconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/arcagent/arcagent/errcode"
)

func init() { Register("package", decodePackage) }

// PackageSpec is the body of a package resource: a dpkg package installed
// (optionally at a version, or at least one) or absent.
type PackageSpec struct {
	// Name is the package, optionally with its architecture (libc6:amd64).
	Name string `yaml:"name"`
	// State is installed (default) or absent.
	State string `yaml:"state"`
	// Version is the exact version wanted; MinVersion the lowest one
	// allowed (Debian version ordering).
	Version    string `yaml:"version"`
	MinVersion string `yaml:"minVersion"`
}

// DpkgStatusFile is where dpkg records the installed packages.
const DpkgStatusFile = "/var/lib/dpkg/status"

var (
	debNameRE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]{0,127}(:[a-z0-9-]{1,32})?$`) })
	debVersionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]{1,9}:)?[0-9][A-Za-z0-9.+~:-]{0,127}$`) })
)

// DpkgPackage is one stanza of the dpkg status file.
type DpkgPackage struct {
	Name         string
	Architecture string
	Version      string
	// Status is the Status field: want, error flag, state
	// ("install ok installed").
	Status string
}

// Installed reports whether dpkg considers the package installed.
func (p DpkgPackage) Installed() bool {
	f := strings.Fields(p.Status)
	return len(f) == 3 && f[2] == "installed"
}

// ParseDpkgStatus parses the stanzas of a dpkg status file (RFC 822-like:
// "Field: value" lines, continuation lines starting with a space, stanzas
// separated by blank lines). Stanzas without a Package field are skipped.
func ParseDpkgStatus(b []byte) []DpkgPackage {
	var out []DpkgPackage
	var cur DpkgPackage
	flush := func() {
		if cur.Name != "" {
			out = append(out, cur)
		}
		cur = DpkgPackage{}
	}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' || line[0] == '#' {
			continue // continuation of a multi-line field, or a comment
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		val := string(bytes.TrimSpace(v))
		switch string(k) {
		case "Package":
			cur.Name = val
		case "Architecture":
			cur.Architecture = val
		case "Version":
			cur.Version = val
		case "Status":
			cur.Status = val
		}
	}
	flush()
	return out
}

// CompareDebVersions compares two Debian versions with dpkg's algorithm
// (epoch, then upstream version, then revision; ~ sorts before anything,
// letters before other characters): -1, 0 or 1.
func CompareDebVersions(a, b string) int {
	ea, ua, ra := splitDebVersion(a)
	eb, ub, rb := splitDebVersion(b)
	if c := compareEpoch(ea, eb); c != 0 {
		return c
	}
	if c := verrevcmp(ua, ub); c != 0 {
		return sign(c)
	}
	return sign(verrevcmp(ra, rb))
}

func splitDebVersion(v string) (epoch, upstream, revision string) {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch, v = v[:i], v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v, revision = v[:i], v[i+1:]
	}
	return epoch, v, revision
}

// compareEpoch compares decimal epochs of any length ("" is 0).
func compareEpoch(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	return strings.Compare(a, b)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// debOrder is dpkg's weight of a character in the non-digit parts.
func debOrder(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case isDigit(c):
		return 0
	case isAlpha(c):
		return int(c)
	case c == '~':
		return -1
	}
	return int(c) + 256
}

// verrevcmp is dpkg's lib/dpkg/version.c verrevcmp.
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		firstDiff := 0
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := debOrder(a, i), debOrder(b, j)
			if ac != bc {
				return ac - bc
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		for i < len(a) && j < len(b) && isDigit(a[i]) && isDigit(b[j]) {
			if firstDiff == 0 {
				firstDiff = int(a[i]) - int(b[j])
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if firstDiff != 0 {
			return firstDiff
		}
	}
	return 0
}

type packageResource struct{ s PackageSpec }

func decodePackage(body *yaml.Node, _ CompileContext) (Resource, error) {
	var s PackageSpec
	if err := DecodeBody(body, &s); err != nil {
		return nil, err
	}
	if !debNameRE().MatchString(s.Name) {
		return nil, fmt.Errorf("name %q: a Debian package name (lower-case letters, digits, + - .), optionally :arch", s.Name)
	}
	switch s.State {
	case "", "installed":
		s.State = "installed"
	case "absent":
		if s.Version != "" || s.MinVersion != "" {
			return nil, errors.New("state absent takes no version or minVersion")
		}
	default:
		return nil, fmt.Errorf("state %q: use installed or absent", s.State)
	}
	if s.Version != "" && s.MinVersion != "" {
		return nil, errors.New("give version or minVersion, not both")
	}
	for _, v := range []string{s.Version, s.MinVersion} {
		if v != "" && !debVersionRE().MatchString(v) {
			return nil, fmt.Errorf("version %q is not a Debian version (it starts with a digit, optionally after an epoch N:)", v)
		}
	}
	return &packageResource{s: s}, nil
}

// find returns the stanzas of the package (every architecture unless the
// name gives one).
func (r *packageResource) find(env *Env) ([]DpkgPackage, error) {
	b, err := env.ReadFile(DpkgStatusFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errcode.Wrap(CodeResource, err, "%s does not exist under %s: package resources need a dpkg-based system", DpkgStatusFile, env.Root())
	}
	if err != nil {
		return nil, err
	}
	name, arch, _ := strings.Cut(r.s.Name, ":")
	var out []DpkgPackage
	for _, p := range ParseDpkgStatus(b) {
		if p.Name == name && (arch == "" || p.Architecture == arch) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (r *packageResource) Get(ctx context.Context, env *Env) (Evidence, error) {
	obs, err := r.Test(ctx, env)
	return obs.Evidence, err
}

func (r *packageResource) Test(_ context.Context, env *Env) (Observation, error) {
	ev := Evidence{"name": r.s.Name}
	found, err := r.find(env)
	if err != nil {
		return Observation{Evidence: ev}, err
	}
	var installed []DpkgPackage
	var states []string
	for _, p := range found {
		states = append(states, fmt.Sprintf("%s:%s %s (%s)", p.Name, p.Architecture, p.Version, p.Status))
		if p.Installed() {
			installed = append(installed, p)
		}
	}
	if len(states) > 0 {
		ev["status"] = strings.Join(states, "; ")
	}
	ev["installed"] = fmt.Sprint(len(installed) > 0)
	if r.s.State == "absent" {
		if len(installed) > 0 {
			return Observation{Reason: fmt.Sprintf("package %s is installed (%s), want absent", r.s.Name, installed[0].Version), Evidence: ev}, nil
		}
		return Observation{Compliant: true, Evidence: ev}, nil
	}
	if len(installed) == 0 {
		why := "is not installed"
		if len(found) > 0 {
			why = "is not fully installed (" + found[0].Status + ")"
		}
		return Observation{Reason: fmt.Sprintf("package %s %s", r.s.Name, why), Evidence: ev}, nil
	}
	var versions, reasons []string
	for _, p := range installed {
		versions = append(versions, p.Version)
		switch {
		case r.s.Version != "" && CompareDebVersions(p.Version, r.s.Version) != 0:
			reasons = append(reasons, fmt.Sprintf("%s:%s is %s, want %s", p.Name, p.Architecture, p.Version, r.s.Version))
		case r.s.MinVersion != "" && CompareDebVersions(p.Version, r.s.MinVersion) < 0:
			reasons = append(reasons, fmt.Sprintf("%s:%s is %s, want at least %s", p.Name, p.Architecture, p.Version, r.s.MinVersion))
		}
	}
	ev["version"] = strings.Join(versions, ", ")
	if len(reasons) > 0 {
		return Observation{Reason: "package " + strings.Join(reasons, "; "), Evidence: ev}, nil
	}
	return Observation{Compliant: true, Evidence: ev}, nil
}

// Set installs or removes the package with apt-get, on the live system
// only.
func (r *packageResource) Set(ctx context.Context, env *Env) error {
	if !env.Live() {
		return errcode.New(CodeResource, "package %s: package changes need the live system (the target is the root %s); install or remove it in the image instead", r.s.Name, env.Root())
	}
	if err := env.requireWrite("package " + r.s.Name); err != nil {
		return err
	}
	// The name is validated: it cannot start with "-". Changed
	// configuration files keep the local version without a prompt.
	opts := []string{"-y", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}
	pkg := r.s.Name
	if r.s.Version != "" {
		pkg += "=" + r.s.Version
	}
	verb := "install"
	if r.s.State == "absent" {
		verb, pkg = "remove", r.s.Name
	}
	args := append(append([]string{verb}, opts...), pkg)
	res, err := env.Run(ctx, Command{Path: "/usr/bin/apt-get", Args: args, Env: []string{"DEBIAN_FRONTEND=noninteractive"}})
	if err != nil {
		return errcode.Wrap(CodeResource, err, "apt-get %s %s", args[0], r.s.Name)
	}
	if res.ExitCode != 0 {
		msg := strings.TrimSpace(string(res.Stderr))
		if len(msg) > 500 {
			msg = "…" + msg[len(msg)-500:]
		}
		return errcode.New(CodeResource, "apt-get %s %s exited with %d: %s", args[0], r.s.Name, res.ExitCode, msg)
	}
	return nil
}
