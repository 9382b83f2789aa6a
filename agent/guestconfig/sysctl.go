package guestconfig

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

func init() { Register("sysctl", decodeSysctl) }

// SysctlSpec is the body of a sysctl resource: a kernel parameter's
// runtime value (/proc/sys) and the value the boot applies (sysctl.d).
type SysctlSpec struct {
	// Key is the dotted name (net.ipv4.ip_forward).
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
	// Runtime (default true) checks /proc/sys/<key>; only on the live
	// system, or a fixture root that has the file.
	Runtime *bool `yaml:"runtime"`
	// Persisted (default true) checks the sysctl.d files and
	// /etc/sysctl.conf in systemd-sysctl's order (later files override).
	Persisted *bool `yaml:"persisted"`
	// PersistFile is where set persists the value (default
	// /etc/sysctl.d/90-arcagent.conf).
	PersistFile string `yaml:"persistFile"`
}

// DefaultSysctlPersistFile is where a sysctl resource persists its value.
const DefaultSysctlPersistFile = "/etc/sysctl.d/90-arcagent.conf"

// sysctlDirs are systemd-sysctl's directories, the first winning for a file
// name present in several.
var sysctlDirs = []string{"/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d"}

var sysctlKeyRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_:@+-]+)+$`) })

type sysctlResource struct {
	s       SysctlSpec
	runtime bool
	persist bool
	proc    string
	fmt     kvFormat
}

// sysctlNorm maps a key as a sysctl.d file writes it to its dotted form:
// a leading - (ignore errors) is dropped, and a key whose first separator
// is / uses / and . swapped (sysctl.d(5)).
func sysctlNorm(k string) string {
	k = strings.TrimPrefix(k, "-")
	if i := strings.IndexAny(k, "./"); i >= 0 && k[i] == '/' {
		k = strings.Map(func(r rune) rune {
			switch r {
			case '/':
				return '.'
			case '.':
				return '/'
			}
			return r
		}, k)
	}
	return k
}

func decodeSysctl(body *yaml.Node, _ CompileContext) (Resource, error) {
	var s SysctlSpec
	if err := DecodeBody(body, &s); err != nil {
		return nil, err
	}
	if len(s.Key) > 255 || !sysctlKeyRE().MatchString(s.Key) {
		return nil, fmt.Errorf("key %q: a dotted kernel parameter name such as net.ipv4.ip_forward", s.Key)
	}
	if strings.TrimSpace(s.Value) == "" || strings.ContainsAny(s.Value, "\n\x00") {
		return nil, errors.New("value: a non-empty single line is required")
	}
	r := &sysctlResource{s: s, runtime: true, persist: true,
		proc: "/proc/sys/" + strings.ReplaceAll(s.Key, ".", "/"),
		fmt:  kvFormat{equals: true, normKey: sysctlNorm}}
	if s.Runtime != nil {
		r.runtime = *s.Runtime
	}
	if s.Persisted != nil {
		r.persist = *s.Persisted
	}
	if !r.runtime && !r.persist {
		return nil, errors.New("runtime and persisted are both false: nothing to check")
	}
	if r.s.PersistFile == "" {
		r.s.PersistFile = DefaultSysctlPersistFile
	}
	if err := CheckPath(r.s.PersistFile); err != nil {
		return nil, err
	}
	if r.s.PersistFile != "/etc/sysctl.conf" && (path.Dir(r.s.PersistFile) != "/etc/sysctl.d" || !strings.HasSuffix(r.s.PersistFile, ".conf")) {
		return nil, fmt.Errorf("persistFile %q: use /etc/sysctl.d/NAME.conf or /etc/sysctl.conf (the files the boot reads)", r.s.PersistFile)
	}
	return r, nil
}

// sysctlFile is one configuration file in the order it is applied.
type sysctlFile struct {
	path   string // the path read
	listed string // the path listed (a link's own path)
}

// sysctlFiles lists the files applied at boot, in order, and notes about
// masked or unreadable ones.
func sysctlFiles(env *Env) ([]sysctlFile, []string, error) {
	byName := map[string]string{}
	var names, notes []string
	for _, dir := range sysctlDirs {
		ents, err := env.listDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		for _, de := range ents {
			n := de.Name()
			if !strings.HasSuffix(n, ".conf") {
				continue
			}
			if _, dup := byName[n]; dup {
				continue
			}
			byName[n] = path.Join(dir, n)
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []sysctlFile
	sawConf := false
	for _, n := range names {
		p := byName[n]
		f := sysctlFile{path: p, listed: p}
		fi, err := env.Lstat(p)
		if err != nil {
			return nil, nil, err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			t, err := env.readlink(p)
			if err != nil {
				return nil, nil, err
			}
			f.path = resolveLink(p, t)
			if f.path == "/dev/null" {
				notes = append(notes, p+" is masked (-> /dev/null)")
				continue
			}
		}
		if f.path == "/etc/sysctl.conf" {
			sawConf = true
		}
		out = append(out, f)
	}
	if !sawConf {
		out = append(out, sysctlFile{path: "/etc/sysctl.conf", listed: "/etc/sysctl.conf"})
	}
	return out, notes, nil
}

// persisted finds the value the boot applies: the last setting over the
// files in order. where is "file:line" ("" when unset).
func (r *sysctlResource) persisted(env *Env) (value, where string, files int, notes []string, err error) {
	value, where, _, files, notes, _, err = r.persistedIn(env)
	return
}

// persistedIn is persisted with the effective file and the file list.
func (r *sysctlResource) persistedIn(env *Env) (value, where, file string, files int, notes []string, list []sysctlFile, err error) {
	list, notes, err = sysctlFiles(env)
	if err != nil {
		return "", "", "", 0, nil, nil, err
	}
	for _, f := range list {
		b, err := env.ReadFile(f.path)
		if errors.Is(err, fs.ErrNotExist) {
			if f.path != f.listed {
				notes = append(notes, fmt.Sprintf("%s -> %s does not exist", f.listed, f.path))
			}
			continue
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s not read: %v", f.listed, err))
			continue
		}
		files++
		sc := scanKV(b, r.fmt, r.s.Key)
		if l := sc.effective(r.fmt); l != nil {
			value, where, file = l.Value, fmt.Sprintf("%s:%d", f.listed, l.N), f.listed
		}
	}
	return value, where, file, files, notes, list, nil
}

// applyOrder is the position at which the file p is applied among list
// (where it would be when it does not exist yet).
func applyOrder(list []sysctlFile, p string) float64 {
	for i, f := range list {
		if f.listed == p || f.path == p {
			return float64(i)
		}
	}
	if p == "/etc/sysctl.conf" {
		return float64(len(list))
	}
	for i, f := range list {
		if f.listed == "/etc/sysctl.conf" || path.Base(f.listed) > path.Base(p) {
			return float64(i) - 0.5
		}
	}
	return float64(len(list))
}

func (r *sysctlResource) Get(ctx context.Context, env *Env) (Evidence, error) {
	obs, err := r.Test(ctx, env)
	return obs.Evidence, err
}

// runtimeValue reads /proc/sys; evaluated is false on a non-live root
// without the file.
func (r *sysctlResource) runtimeValue(env *Env) (value string, evaluated bool, err error) {
	b, err := env.ReadFile(r.proc)
	if errors.Is(err, fs.ErrNotExist) {
		if !env.Live() {
			return "", false, nil
		}
		return "", true, fmt.Errorf("the kernel has no parameter %s (%s: %w; is its module loaded?)", r.s.Key, r.proc, err)
	}
	if err != nil {
		return "", true, err
	}
	return normSpace(string(b)), true, nil
}

func (r *sysctlResource) Test(_ context.Context, env *Env) (Observation, error) {
	ev := Evidence{"key": r.s.Key}
	want := normSpace(r.s.Value)
	var reasons []string
	if r.runtime {
		v, evaluated, err := r.runtimeValue(env)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			ev["runtime"] = "absent"
			reasons = append(reasons, err.Error())
		case err != nil:
			return Observation{Evidence: ev}, err
		case !evaluated:
			ev["runtime"] = "not evaluated (not the live system: " + r.proc + " is absent under the root)"
		default:
			ev["runtime"] = v
			if v != want {
				reasons = append(reasons, fmt.Sprintf("runtime value is %q, want %q", v, want))
			}
		}
	}
	if r.persist {
		v, where, files, notes, err := r.persisted(env)
		if err != nil {
			return Observation{Evidence: ev}, err
		}
		ev["filesRead"] = fmt.Sprint(files)
		if len(notes) > 0 {
			ev["notes"] = strings.Join(notes, "; ")
		}
		switch {
		case where == "":
			ev["persisted"] = "unset"
			reasons = append(reasons, "not set in any sysctl.d file or /etc/sysctl.conf (the boot keeps the kernel's default)")
		default:
			ev["persisted"] = normSpace(v)
			ev["persistedAt"] = where
			if normSpace(v) != want {
				reasons = append(reasons, fmt.Sprintf("%s sets %q, want %q", where, normSpace(v), want))
			}
		}
	}
	if len(reasons) > 0 {
		return Observation{Reason: r.s.Key + ": " + strings.Join(reasons, "; "), Evidence: ev}, nil
	}
	return Observation{Compliant: true, Evidence: ev}, nil
}

func (r *sysctlResource) Set(_ context.Context, env *Env) error {
	want := normSpace(r.s.Value)
	if r.persist {
		v, where, file, _, _, list, err := r.persistedIn(env)
		if err != nil {
			return err
		}
		if where != "" && normSpace(v) != want && file != r.s.PersistFile && applyOrder(list, file) > applyOrder(list, r.s.PersistFile) {
			return fmt.Errorf("%s sets %s to %q and is applied after %s, so writing %s there would not take effect: change or remove that line (nothing was changed)", where, r.s.Key, normSpace(v), r.s.PersistFile, want)
		}
		if where == "" || normSpace(v) != want {
			kv := &kvResource{
				s: KeyValueSpec{Path: r.s.PersistFile, Key: r.s.Key, Value: want, State: "present", Separator: "=", Compare: "exact", Create: true},
				f: kvFormat{equals: true, normKey: sysctlNorm},
			}
			if err := kv.Set(context.Background(), env); err != nil {
				return err
			}
			v, where, _, _, err = r.persisted(env)
			if err != nil {
				return err
			}
			if normSpace(v) != want {
				return fmt.Errorf("%s set to %q in %s, but %s sets %q and is applied later: change or remove that line", r.s.Key, want, r.s.PersistFile, where, normSpace(v))
			}
		}
	}
	if r.runtime {
		v, evaluated, err := r.runtimeValue(env)
		if err != nil {
			return err
		}
		if evaluated && v != want {
			if env.Live() {
				return env.writeInPlace(r.proc, []byte(want+"\n"))
			}
			// A fixture root's /proc/sys file is a plain file.
			return env.WriteFile(r.proc, []byte(want+"\n"), WriteSpec{})
		}
	}
	return nil
}
