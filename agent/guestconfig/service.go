package guestconfig

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/arcagent/arcagent/errcode"
)

func init() { Register("service", decodeService) }

// ServiceSpec is the body of a service resource: a systemd unit's
// enablement, mask and (on the live system) activity. Unset fields are not
// checked.
type ServiceSpec struct {
	Unit    string `yaml:"unit"`
	Enabled *bool  `yaml:"enabled"`
	Active  *bool  `yaml:"active"`
	Masked  *bool  `yaml:"masked"`
}

// systemctlPath is the host's systemctl; "" (or a missing binary) makes
// set manipulate the links itself under a root.
var systemctlPath = "/usr/bin/systemctl"

// unitDirs are the unit search path, highest precedence first.
var unitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// enableDirs hold the .wants/.requires links of enabled units
// (/run: enabled for this boot only).
var enableDirs = []string{"/etc/systemd/system", "/run/systemd/system"}

var unitRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.(service|socket|timer|target|path|mount|automount|swap|slice)$`)
})

type serviceResource struct{ s ServiceSpec }

func decodeService(body *yaml.Node, _ CompileContext) (Resource, error) {
	var s ServiceSpec
	if err := DecodeBody(body, &s); err != nil {
		return nil, err
	}
	if len(s.Unit) > 255 || !unitRE().MatchString(s.Unit) {
		return nil, fmt.Errorf("unit %q: a systemd unit name with its type (sshd.service, getty@tty1.service, apt-daily.timer)", s.Unit)
	}
	if s.Enabled == nil && s.Active == nil && s.Masked == nil {
		return nil, errors.New("give at least one of enabled, active and masked")
	}
	if s.Masked != nil && *s.Masked && ((s.Enabled != nil && *s.Enabled) || (s.Active != nil && *s.Active)) {
		return nil, errors.New("a masked unit can be neither enabled nor active")
	}
	return &serviceResource{s: s}, nil
}

// unitState is what the files of the target say about a unit.
type unitState struct {
	file     string   // the unit file found ("" : not found)
	maskedBy string   // the /dev/null link masking it
	links    []string // .wants/.requires links to it
	install  []string // [Install] WantedBy= and RequiredBy= targets
	hasInst  bool     // the file has an [Install] section
	runtime  bool     // every link is under /run
}

// template is the template file name of an instance (getty@tty1.service
// -> getty@.service), or "" for a plain unit.
func template(unit string) string {
	at := strings.IndexByte(unit, '@')
	if at < 0 {
		return ""
	}
	dot := strings.LastIndexByte(unit, '.')
	if dot < at || dot == at+1 {
		return ""
	}
	return unit[:at+1] + unit[dot:]
}

func (r *serviceResource) state(env *Env) (unitState, error) {
	var st unitState
	unit := r.s.Unit
	for _, d := range []string{"/etc/systemd/system", "/run/systemd/system"} {
		p := path.Join(d, unit)
		if t, err := env.readlink(p); err == nil && (t == "/dev/null" || resolveLink(p, t) == "/dev/null") {
			st.maskedBy = p
			break
		}
	}
	names := []string{unit}
	if t := template(unit); t != "" {
		names = append(names, t)
	}
	var body []byte
find:
	for _, n := range names {
		for _, d := range unitDirs {
			p := path.Join(d, n)
			fi, err := env.Lstat(p)
			if err != nil {
				continue
			}
			read := p
			if fi.Mode()&fs.ModeSymlink != 0 {
				t, err := env.readlink(p)
				if err != nil {
					return st, err
				}
				read = resolveLink(p, t)
				if read == "/dev/null" {
					continue
				}
			}
			b, err := env.ReadFile(read)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return st, err
			}
			st.file, body = read, b
			break find
		}
	}
	st.install, st.hasInst = unitInstall(body)
	st.runtime = true
	for _, d := range enableDirs {
		ents, err := env.listDir(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return st, err
		}
		for _, de := range ents {
			if !de.IsDir() || !(strings.HasSuffix(de.Name(), ".wants") || strings.HasSuffix(de.Name(), ".requires")) {
				continue
			}
			p := path.Join(d, de.Name(), unit)
			if fi, err := env.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				st.links = append(st.links, p)
				if d != "/run/systemd/system" {
					st.runtime = false
				}
			}
		}
	}
	return st, nil
}

// unitInstall reads the WantedBy= and RequiredBy= targets of a unit
// file's [Install] section.
func unitInstall(b []byte) (targets []string, has bool) {
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line
			if section == "[Install]" {
				has = true
			}
			continue
		}
		if section != "[Install]" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k = strings.TrimSpace(k); k {
		case "WantedBy", "RequiredBy":
			suffix := ".wants"
			if k == "RequiredBy" {
				suffix = ".requires"
			}
			for _, t := range strings.Fields(v) {
				if unitRE().MatchString(t) {
					targets = append(targets, t+suffix)
				}
			}
		}
	}
	return targets, has
}

// enablement is how systemctl is-enabled would name the state.
func (st unitState) enablement() string {
	switch {
	case st.maskedBy != "":
		return "masked"
	case len(st.links) > 0 && st.runtime:
		return "enabled-runtime"
	case len(st.links) > 0:
		return "enabled"
	case st.file == "":
		return "not-found"
	case !st.hasInst || len(st.install) == 0:
		return "static"
	}
	return "disabled"
}

// liveSystemd reports whether activity can be asked of systemd.
func liveSystemd(env *Env) bool {
	if !env.Live() {
		return false
	}
	fi, err := env.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

func (r *serviceResource) Get(ctx context.Context, env *Env) (Evidence, error) {
	obs, err := r.Test(ctx, env)
	return obs.Evidence, err
}

func (r *serviceResource) isActive(ctx context.Context, env *Env) (string, error) {
	res, err := env.Run(ctx, Command{Path: systemctlOrDefault(), Args: []string{"is-active", "--", r.s.Unit}})
	if err != nil {
		return "", errcode.Wrap(CodeResource, err, "systemctl is-active %s", r.s.Unit)
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

func systemctlOrDefault() string {
	if systemctlPath == "" {
		return "/usr/bin/systemctl"
	}
	return systemctlPath
}

func (r *serviceResource) Test(ctx context.Context, env *Env) (Observation, error) {
	ev := Evidence{"unit": r.s.Unit}
	st, err := r.state(env)
	if err != nil {
		return Observation{Evidence: ev}, err
	}
	ev["unitFile"] = st.file
	if st.file == "" {
		ev["unitFile"] = "not found"
	}
	en := st.enablement()
	ev["enabled"] = en
	if st.maskedBy != "" {
		ev["maskedBy"] = st.maskedBy + " -> /dev/null"
	}
	if len(st.links) > 0 {
		ev["links"] = strings.Join(st.links, " ")
	}
	if len(st.install) > 0 {
		ev["install"] = strings.Join(st.install, " ")
	}
	var reasons []string
	if r.s.Masked != nil {
		if masked := st.maskedBy != ""; masked != *r.s.Masked {
			reasons = append(reasons, fmt.Sprintf("masked is %v, want %v", masked, *r.s.Masked))
		}
	}
	if r.s.Enabled != nil {
		isOn := en == "enabled" || en == "enabled-runtime"
		switch {
		case en == "static":
			// No [Install] section: started as a dependency of other
			// units; neither enabled nor disabled (systemctl is-enabled
			// says static). Masking is what stops it.
		case *r.s.Enabled && !isOn:
			reasons = append(reasons, fmt.Sprintf("is %s, want enabled", en))
		case !*r.s.Enabled && isOn:
			reasons = append(reasons, fmt.Sprintf("is %s (%s), want disabled", en, strings.Join(st.links, " ")))
		}
	}
	if r.s.Active != nil {
		switch {
		case !env.Live():
			ev["active"] = "not evaluated: not the live system"
		case !liveSystemd(env):
			ev["active"] = "not evaluated: systemd is not running (/run/systemd/system is missing)"
		default:
			a, err := r.isActive(ctx, env)
			if err != nil {
				return Observation{Evidence: ev}, err
			}
			ev["active"] = a
			isActive := a == "active" || a == "reloading" || a == "refreshing"
			if isActive != *r.s.Active {
				reasons = append(reasons, fmt.Sprintf("is %s, want %s", a, map[bool]string{true: "active", false: "inactive"}[*r.s.Active]))
			}
		}
	}
	if len(reasons) > 0 {
		return Observation{Reason: r.s.Unit + ": " + strings.Join(reasons, "; "), Evidence: ev}, nil
	}
	return Observation{Compliant: true, Evidence: ev}, nil
}

// haveSystemctl reports whether the host has a systemctl to run.
func haveSystemctl() bool {
	if systemctlPath == "" {
		return false
	}
	fi, err := os.Stat(systemctlPath)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func (r *serviceResource) systemctl(ctx context.Context, env *Env, args ...string) error {
	if err := env.requireWrite("unit " + r.s.Unit); err != nil {
		return err
	}
	if !env.Live() {
		args = append([]string{"--root=" + env.Root()}, args...)
	}
	args = append(args, "--", r.s.Unit)
	res, err := env.Run(ctx, Command{Path: systemctlPath, Args: args, Env: []string{"SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}})
	if err != nil {
		return errcode.Wrap(CodeResource, err, "systemctl %s", strings.Join(args, " "))
	}
	if res.ExitCode != 0 {
		return errcode.New(CodeResource, "systemctl %s exited with %d: %s", strings.Join(args, " "), res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return nil
}

func (r *serviceResource) Set(ctx context.Context, env *Env) error {
	st, err := r.state(env)
	if err != nil {
		return err
	}
	live := liveSystemd(env)
	if env.Live() && !live {
		return errcode.New(CodeResource, "unit %s: systemd is not running on this system (/run/systemd/system is missing), so units cannot be changed live", r.s.Unit)
	}
	useCtl := live || haveSystemctl()
	masked := st.maskedBy != ""
	en := st.enablement()
	isOn := en == "enabled" || en == "enabled-runtime"
	step := func(args ...string) error {
		if useCtl {
			return r.systemctl(ctx, env, args...)
		}
		return r.links(env, st, args[0])
	}
	if r.s.Masked != nil && !*r.s.Masked && masked {
		if err := step("unmask"); err != nil {
			return err
		}
		masked = false
	}
	if r.s.Enabled != nil && !*r.s.Enabled && isOn {
		args := []string{"disable"}
		if live && r.s.Active != nil && !*r.s.Active {
			args = append(args, "--now")
		}
		if err := step(args...); err != nil {
			return err
		}
	}
	if r.s.Masked != nil && *r.s.Masked && !masked {
		if err := step("mask"); err != nil {
			return err
		}
	}
	if r.s.Enabled != nil && *r.s.Enabled && !isOn && en != "static" {
		if st.file == "" {
			return fmt.Errorf("unit %s is not installed (no unit file in %s): install its package first", r.s.Unit, strings.Join(unitDirs, ", "))
		}
		if !st.hasInst || len(st.install) == 0 {
			return fmt.Errorf("%s has no WantedBy= or RequiredBy= in its [Install] section: it cannot be enabled", st.file)
		}
		args := []string{"enable"}
		if live && r.s.Active != nil && *r.s.Active {
			args = append(args, "--now")
		}
		if err := step(args...); err != nil {
			return err
		}
	}
	if live && r.s.Active != nil {
		a, err := r.isActive(ctx, env)
		if err != nil {
			return err
		}
		isActive := a == "active" || a == "reloading" || a == "refreshing"
		switch {
		case *r.s.Active && !isActive:
			return r.systemctl(ctx, env, "start")
		case !*r.s.Active && isActive:
			return r.systemctl(ctx, env, "stop")
		}
	}
	return nil
}

// links does what systemctl --root would for one verb, with atomic link
// changes under the root (no systemctl on this host).
func (r *serviceResource) links(env *Env, st unitState, verb string) error {
	mask := path.Join("/etc/systemd/system", r.s.Unit)
	switch verb {
	case "mask":
		return env.symlink(mask, "/dev/null")
	case "unmask":
		for _, d := range []string{"/etc/systemd/system", "/run/systemd/system"} {
			p := path.Join(d, r.s.Unit)
			if t, err := env.readlink(p); err == nil && resolveLink(p, t) == "/dev/null" {
				if err := env.removeLink(p); err != nil {
					return err
				}
			}
		}
		return nil
	case "enable":
		for _, t := range st.install {
			if err := env.symlink(path.Join("/etc/systemd/system", t, r.s.Unit), st.file); err != nil {
				return err
			}
		}
		return nil
	case "disable":
		for _, l := range st.links {
			if strings.HasPrefix(l, "/etc/") {
				if err := env.removeLink(l); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return fmt.Errorf("unit %s: %s needs the live system", r.s.Unit, verb)
}
