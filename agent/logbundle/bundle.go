// Package logbundle writes the support bundle of `arcagent logs`: a zip of
// the agent's logs, the extension manager's state, localconfig.json,
// agentconfig.json and the services' states, with every secret redacted
// (PEM blocks of any kind, tokens, onboarding credentials, proxy
// credentials, challenge secrets, protected settings). Every file of the
// target is read through internal/saferead, so a hostile symbolic link in
// a log directory is listed as skipped and never followed. Without Full,
// each log keeps only its last MaxFile bytes and all logs together at most
// DefaultMaxTotal.
package logbundle

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/saferead"
)

// Limits.
const (
	// DefaultMaxFile is the tail of each log kept without Full.
	DefaultMaxFile = 1 << 20
	// FullMaxFile bounds each file even with Full (the redactor holds a
	// file in memory).
	FullMaxFile = 64 << 20
	// DefaultMaxTotal bounds the logs taken without Full, all trees
	// together; later files are listed as skipped.
	DefaultMaxTotal = 64 << 20
	// maxFiles bounds the files taken from one directory tree.
	maxFiles = 2000
	// maxDepth bounds how deep a directory tree is walked.
	maxDepth = 8
)

// File is a file of the bundle the caller made (show -j, check -j, the
// audit): it is redacted like the rest.
type File struct {
	Name string
	Data []byte
}

// Options say what goes into the bundle.
type Options struct {
	Layout layout.Layout
	// Full keeps whole logs (still redacted); otherwise each keeps its
	// last MaxFile bytes.
	Full bool
	// MaxFile is the tail kept without Full; 0 means DefaultMaxFile.
	MaxFile int64
	// MaxTotal bounds all logs together without Full; 0 means
	// DefaultMaxTotal.
	MaxTotal int64
	// Extra files the caller adds at the top of the bundle.
	Extra []File
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Entry is one file of the bundle.
type Entry struct {
	Name       string `json:"name"`
	Size       int    `json:"size"`
	Truncated  bool   `json:"truncated,omitempty"` // only the tail was kept
	Redactions int    `json:"redactions,omitempty"`
}

// Skip is a file the bundle left out, and why.
type Skip struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Manifest lists the bundle's content; it is MANIFEST.json in the bundle.
type Manifest struct {
	Created time.Time `json:"created"`
	Root    string    `json:"root"`
	Full    bool      `json:"full"`
	Files   []Entry   `json:"files"`
	Skipped []Skip    `json:"skipped,omitempty"`
}

// WriteFile writes the bundle to path atomically, mode 0600.
func WriteFile(ctx context.Context, path string, o Options) (*Manifest, error) {
	var buf bytes.Buffer
	m, err := Write(ctx, &buf, o)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), atomicfile.WriteOptions{Mode: 0o600, Enforce: true}); err != nil {
		return nil, errcode.Wrap(errcode.WriteFailed, err, "write the bundle %s", path)
	}
	return m, nil
}

// bundle is one bundle being written.
type bundle struct {
	o    Options
	l    layout.Layout
	root *saferead.Root
	zw   *zip.Writer
	red  Redactor
	m    Manifest
	now  time.Time
	// total is how many bytes of logs the bundle holds so far.
	total int64
}

// Write writes the bundle as a zip to w.
func Write(ctx context.Context, w io.Writer, o Options) (*Manifest, error) {
	root, err := saferead.Open(o.Layout.Root())
	if err != nil {
		return nil, errcode.Wrap(errcode.PermissionDenied, err, "open %s", o.Layout.Root())
	}
	defer root.Close()
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	if o.MaxFile <= 0 {
		o.MaxFile = DefaultMaxFile
	}
	if o.MaxTotal <= 0 {
		o.MaxTotal = DefaultMaxTotal
	}
	b := &bundle{o: o, l: o.Layout, root: root, zw: zip.NewWriter(w), now: now.UTC()}
	b.m = Manifest{Created: b.now, Root: o.Layout.Root(), Full: o.Full}
	b.learnSecrets()

	for _, f := range o.Extra {
		b.add(f.Name, f.Data, false, true)
	}
	b.addConfig(layout.LocalConfig)
	b.addConfig(layout.AgentConfig)
	b.addConfig(layout.HIMDSStatus)
	for _, d := range []string{layout.LogDir, layout.ExtensionLogsDir, layout.ExtMgrDir} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b.addTree(d)
	}
	b.addServices(ctx)
	slices.SortFunc(b.m.Files, func(a, c Entry) int { return strings.Compare(a.Name, c.Name) })
	man, _ := json.MarshalIndent(b.m, "", "  ")
	b.add("MANIFEST.json", man, false, false)
	if err := b.zw.Close(); err != nil {
		return nil, errcode.Wrap(errcode.WriteFailed, err, "write the bundle")
	}
	return &b.m, nil
}

// rel is a production path as saferead names it (relative to the root).
func rel(prod string) string { return layout.Rel(prod) }

// readSecret reads a file that holds a secret, to teach the redactor its
// value; it is never put in the bundle.
func (b *bundle) readSecret(prod string) []byte {
	dir, base := path.Split(rel(prod))
	d, err := b.root.OpenDir(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return nil
	}
	defer d.Close()
	data, err := d.ReadFile(base, nil, saferead.ConfigLimit)
	if err != nil {
		return nil
	}
	return data
}

// learnSecrets teaches the redactor the secrets this machine holds: the
// machine key, the challenge secret files, the protected-settings keys,
// the fleet login's API token, and the proxy's credentials.
func (b *bundle) learnSecrets() {
	b.red.AddSecret(b.readSecret(layout.MachineKey))
	for _, g := range []struct{ dir, suffix string }{{layout.TokensDir, ".key"}, {layout.CertsDir, ".key"}, {layout.ExtensionsDir, ".prv"}} {
		d, err := b.root.OpenDir(rel(g.dir))
		if err != nil {
			continue
		}
		ents, _ := d.Entries()
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), g.suffix) {
				if data, err := d.ReadFile(e.Name(), nil, saferead.ConfigLimit); err == nil {
					b.red.AddSecret(data)
				}
			}
		}
		d.Close()
	}
	logins := []string{"/root/.config/arcagent/fleet.json"}
	if p := os.Getenv("ARCAGENT_FLEET_CONFIG"); p != "" && b.l.IsSystemRoot() {
		logins = append(logins, p)
	} else if h, err := os.UserConfigDir(); err == nil && b.l.IsSystemRoot() {
		logins = append(logins, filepath.Join(h, "arcagent", "fleet.json"))
	}
	for _, p := range logins {
		var v map[string]any
		if json.Unmarshal(b.readSecret(p), &v) == nil {
			for k, val := range v {
				if s, ok := val.(string); ok && secretKey(k) {
					b.red.AddSecret([]byte(s))
				}
			}
		}
	}
	// The arc proxy's upstream credentials (one line user:password).
	if line := strings.TrimSpace(strings.SplitN(string(b.readSecret(layout.ProxyCredentials)), "\n", 2)[0]); line != "" {
		b.red.AddSecret([]byte(line))
		if _, pw, ok := strings.Cut(line, ":"); ok {
			b.red.AddSecret([]byte(pw))
		}
	}
	if s, _, err := config.ParseFile(layout.LocalConfig, b.readSecret(layout.LocalConfig)); err == nil {
		if u, err := url.Parse(s.String(config.ProxyURL)); err == nil && u.User != nil {
			p, _ := u.User.Password()
			b.red.AddSecret([]byte(p))
			b.red.AddSecret([]byte(u.User.String()))
		}
	}
}

// secretName reports whether a file's name says it holds a secret: it is
// listed as skipped, never read into the bundle.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{".key", ".prv", ".pem", ".pfx", ".p12", ".crt", ".cer"} {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return n == "fleet.json" || strings.Contains(n, "credential") || strings.Contains(n, "secret")
}

// add redacts data and stores it in the bundle under name.
func (b *bundle) add(name string, data []byte, truncated, asJSON bool, drop ...string) {
	var n int
	if asJSON || strings.HasSuffix(name, ".json") {
		data, n = b.red.RedactJSON(data, drop...)
	} else {
		data, n = b.red.Redact(data)
	}
	w, err := b.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: b.now})
	if err == nil {
		_, err = w.Write(data)
	}
	if err != nil {
		b.skip(name, "could not be written to the bundle: "+err.Error())
		return
	}
	if name != "MANIFEST.json" {
		b.m.Files = append(b.m.Files, Entry{Name: name, Size: len(data), Truncated: truncated, Redactions: n})
	}
}

func (b *bundle) skip(p, reason string) {
	b.m.Skipped = append(b.m.Skipped, Skip{Path: p, Reason: reason})
}

// addConfig adds one configuration file, whole, if it exists.
func (b *bundle) addConfig(prod string) {
	data := []byte(nil)
	dir, base := path.Split(rel(prod))
	d, err := b.root.OpenDir(strings.TrimSuffix(dir, "/"))
	if err == nil {
		data, err = d.ReadFile(base, nil, saferead.ConfigLimit)
		d.Close()
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return
	case err != nil:
		b.skip(prod, err.Error())
		return
	}
	b.add(rel(prod), data, false, true)
}

// addTree adds the files under a directory of the layout.
func (b *bundle) addTree(prod string) {
	d, err := b.root.OpenDir(rel(prod))
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		b.skip(prod, err.Error())
		return
	}
	count := 0
	b.walk(d, prod, 0, &count)
	d.Close()
}

func (b *bundle) walk(d *saferead.Dir, prod string, depth int, count *int) {
	ents, err := d.Entries()
	if err != nil {
		b.skip(prod, err.Error())
		return
	}
	slices.SortFunc(ents, func(a, c fs.DirEntry) int { return strings.Compare(a.Name(), c.Name()) })
	for _, e := range ents {
		p := path.Join(prod, e.Name())
		switch {
		case p == layout.ExtDownloadsDir:
			b.skip(p, "extension packages are not logs")
		case e.Type()&fs.ModeSymlink != 0:
			b.skip(p, "a symbolic link: not followed")
		case e.IsDir():
			if depth+1 >= maxDepth {
				b.skip(p, "too deep")
				continue
			}
			sub, err := d.Sub(e.Name())
			if err != nil {
				b.skip(p, err.Error())
				continue
			}
			b.walk(sub, p, depth+1, count)
			sub.Close()
		case secretName(e.Name()):
			b.skip(p, "a secret file, never included")
		case *count >= maxFiles:
			b.skip(p, "more than "+strconv.Itoa(maxFiles)+" files in the tree")
		default:
			*count++
			b.addFile(d, e.Name(), p)
		}
	}
}

// addFile adds one file of a tree: its tail without Full, the whole of it
// (up to FullMaxFile) with Full.
func (b *bundle) addFile(d *saferead.Dir, base, prod string) {
	f, err := d.Open(base)
	if err != nil {
		b.skip(prod, err.Error())
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		b.skip(prod, err.Error())
		return
	}
	limit := b.o.MaxFile
	if b.o.Full {
		limit = FullMaxFile
	} else if b.total+min(fi.Size(), limit) > b.o.MaxTotal {
		b.skip(prod, fmt.Sprintf("the bundle already holds %d KiB of logs: use --full for all of them", b.total>>10))
		return
	}
	truncated := false
	if fi.Size() > limit {
		if _, err := f.Seek(fi.Size()-limit, io.SeekStart); err != nil {
			b.skip(prod, err.Error())
			return
		}
		truncated = true
	}
	data, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		b.skip(prod, err.Error())
		return
	}
	if truncated {
		// The first line is cut: it is dropped.
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	b.total += int64(len(data))
	var drop []string
	if strings.HasPrefix(prod, layout.ExtMgrDir+"/") {
		// The desired state holds the sealed protected settings.
		drop = []string{"desired"}
	}
	b.add(rel(prod), data, truncated, false, drop...)
}

// ServiceState is how one agent service stands.
type ServiceState struct {
	Name     string `json:"name"`
	UnitFile string `json:"unitFile"`          // present, missing, or why it cannot be read
	Active   string `json:"active,omitempty"`  // systemctl is-active
	Process  string `json:"process,omitempty"` // PIDs found in /proc, without systemd
	Note     string `json:"note,omitempty"`
}

// addServices adds services.json and each unit file present.
func (b *bundle) addServices(ctx context.Context) {
	var states []ServiceState
	systemd := false
	if b.l.IsSystemRoot() {
		if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() {
			_, err := exec.LookPath("systemctl")
			systemd = err == nil
		}
	}
	procs := map[string][]string{}
	if b.l.IsSystemRoot() && !systemd {
		procs = daemons()
	}
	for _, s := range layout.Services() {
		st := ServiceState{Name: s.Name}
		unit := layout.UnitDir + "/" + s.Name + ".service"
		dir, base := path.Split(rel(unit))
		data := []byte(nil)
		d, err := b.root.OpenDir(strings.TrimSuffix(dir, "/"))
		if err == nil {
			data, err = d.ReadFile(base, nil, saferead.ConfigLimit)
			d.Close()
		}
		switch {
		case err == nil:
			st.UnitFile = "present"
			b.add(rel(unit), data, false, false)
		case errors.Is(err, fs.ErrNotExist):
			st.UnitFile = "missing"
		default:
			st.UnitFile = err.Error()
		}
		switch {
		case systemd:
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			out, _ := exec.CommandContext(cctx, "systemctl", "is-active", s.Name+".service").Output()
			cancel()
			st.Active = strings.TrimSpace(string(out))
		case b.l.IsSystemRoot():
			if pids := procs[daemonVerb[s.Name]]; len(pids) > 0 {
				st.Process = "running (pid " + strings.Join(pids, ", ") + ")"
			} else {
				st.Process = "not running"
			}
		default:
			st.Note = "a root prefix, not the live system: only the unit file is judged"
		}
		states = append(states, st)
	}
	data, _ := json.MarshalIndent(states, "", "  ")
	b.add("services.json", data, false, true)
}

// daemonVerb is the `arcagent daemon` verb of each service's unit.
var daemonVerb = map[string]string{"himdsd": "himds", "extd": "extd", "gcad": "gcad", "arcproxyd": "arcproxy"}

// daemons maps each `arcagent daemon NAME` running on this host to its
// PIDs, from /proc.
func daemons() map[string][]string {
	out := map[string][]string{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if len(args) == 0 || !strings.Contains(filepath.Base(args[0]), "arcagent") {
			continue
		}
		for i, a := range args {
			if a == "daemon" && i+1 < len(args) {
				out[args[i+1]] = append(out[args[i+1]], e.Name())
				break
			}
		}
	}
	return out
}

// DefaultName is the bundle's default file name:
// arcagent-logs-<host>-<time>.zip.
func DefaultName(host string, now time.Time) string {
	host = strings.Map(func(r rune) rune {
		if r == '-' || r == '.' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, host)
	if host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("arcagent-logs-%s-%s.zip", host, now.UTC().Format("20060102T150405Z"))
}
