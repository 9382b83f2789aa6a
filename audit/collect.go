package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/internal/saferead"
)

// Options say what to collect from.
type Options struct {
	// Root is the root prefix; "" or "/" is the live host.
	Root string
	// PlannedConfig is a localconfig.json planned before onboarding. When
	// set, only the configuration is audited.
	PlannedConfig string
	// Now is the clock (tests pin it).
	Now time.Time
	// Releases fills facts.releases when a release source is configured.
	Releases ReleasesCollector
	// Cloud fills facts.cloud when the control plane can be asked.
	Cloud CloudCollector
	// HostName names the target in reports and fingerprints instead of the
	// host name (for a planned config: the file's base name by default), so
	// that findings keep their identity across CI runners.
	HostName string
	// Strict makes extension trees without an install record (not
	// installed by this agent) critical signature and tamper failures
	// (ARC-EX-001/002), as well as ARC-EX-004's medium finding. Rules
	// read it as facts.options.strict.
	Strict bool
	// SecretPlaces overrides where onboarding credentials are looked for
	// (production paths; tests).
	SecretPlaces []string
	// HostConfig evaluates the built-in Linux baseline of guest
	// configuration against the target (facts.host_config), for the host
	// profile's rules. Run sets it when one of them is selected.
	HostConfig bool
}

// ReleasesCollector fills version currency facts from a release source.
type ReleasesCollector interface {
	CollectReleases(ctx context.Context, f *Facts) (ReleasesFacts, error)
}

// NoCloudReason is why the cloud rules are not applicable on a connected
// machine when no CloudCollector was given (`arcagent audit --offline`, or
// no selected rule reads facts.cloud).
const NoCloudReason = "the control plane was not asked (offline audit): run `arcagent audit` without --offline on the connected machine, as root"

// CloudCollector fills the cloud section from the control plane. It
// returns a section that is not Available, with its Reason, when it cannot
// ask for a reason that is not a failure (e.g. the machine key is readable
// only by root), and an error when the control plane was asked and failed.
type CloudCollector interface {
	CollectCloud(ctx context.Context, f *Facts) (CloudFacts, error)
}

// collector carries the state shared by the collectors of one run.
type collector struct {
	opts Options
	l    layout.Layout
	// root confines every read of the target (see package saferead).
	root  *saferead.Root
	facts *Facts
	acct  *accounts
	// acctErr is why the target's users and groups could not be read.
	acctErr error
	// settings are the local controls read by collectConfig (nil if unreadable).
	settings *config.Settings
	lowerBuf []byte // reused by the secrets scan
	readBuf  []byte // reused by the secrets scan
}

// Collect reads the target into Facts. It fails only when the target itself
// is unusable (a missing root or planned file); anything a collector cannot
// read is recorded in the facts.
func Collect(ctx context.Context, opts Options) (*Facts, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if runtime.GOOS == "windows" {
		return collectWindows(ctx, opts)
	}
	root := opts.Root
	if root == "" {
		root = "/"
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("resolve --root %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, &TargetError{What: "--root " + root, Err: err}
	}
	if !fi.IsDir() {
		return nil, &TargetError{What: "--root " + root, Err: errors.New("not a directory")}
	}
	sr, err := saferead.Open(abs)
	if err != nil {
		return nil, &TargetError{What: "--root " + root, Err: err}
	}
	defer sr.Close()
	c := &collector{opts: opts, l: layout.New(abs), root: sr, facts: &Facts{Errors: []CollectorError{}}}
	f := c.facts
	f.Target = TargetFacts{Kind: "host", Root: c.l.Root(), Live: c.l.IsSystemRoot()}
	f.Options = OptionsFacts{Strict: opts.Strict}
	if !f.Target.Live {
		f.Target.Kind = "root"
	}
	c.acct, err = readAccounts(c.root)
	if err != nil && !f.Target.Live && errors.Is(err, fs.ErrNotExist) {
		// A bare tree without its own accounts: judge ownership by this
		// host's users and groups, and say so.
		c.errorf("host", "/etc/passwd", "the target has no readable users and groups (%v); owners are named from this host's /etc/passwd and /etc/group", err)
		c.acct, err = readHostAccounts()
	}
	if err == nil && !f.Target.Live {
		f.Target.IDs = c.acct.layoutIDs()
	}
	if err != nil {
		// Owners named by number would fail the ownership rules falsely:
		// the sections that name users say error instead.
		c.acctErr = err
		c.errorf("host", "/etc/passwd", "cannot read users and groups: %v", err)
	}
	if f.Target.Live && os.Geteuid() != 0 {
		c.errorf("host", "", "not running as root: files, sockets and processes of other users may be unreadable, so some rules report errors; run sudo arcagent audit")
	}
	c.collectHost()
	if opts.HostName != "" {
		f.Host.Name = opts.HostName
	}
	if opts.PlannedConfig == "" {
		c.collectHostConfig(ctx)
	} else {
		f.HostConfig = HostConfigFacts{Section: Section{Reason: "a planned configuration is audited: the host is not"}, Results: []HostConfigResult{}}
	}
	if opts.PlannedConfig != "" {
		if _, err := os.Stat(opts.PlannedConfig); err != nil {
			return nil, &TargetError{What: "--config " + opts.PlannedConfig, Err: err}
		}
		f.Target.Kind = "planned"
		f.Target.Planned = opts.PlannedConfig
		// The planned file is the target, not the machine auditing it.
		base := filepath.Base(opts.PlannedConfig)
		f.Host = HostFacts{Section: Section{Available: true}, Name: strings.TrimSuffix(base, filepath.Ext(base)), HimdsMembers: []string{}}
		if opts.HostName != "" {
			f.Host.Name = opts.HostName
		}
		if err := c.collectConfig(opts.PlannedConfig, "planned"); err != nil {
			return nil, err
		}
		why := "a planned configuration is audited: only configuration rules apply"
		f.Agent.Reason = why
		c.unavailable(ctx, why)
		return f, nil
	}
	c.collectAgent()
	if !f.Agent.Installed {
		f.Agent.Reason = "no agent is installed on this target"
		f.Target.DefaultInstall = true
		if err := c.collectConfig("", "default"); err != nil {
			return nil, err
		}
		c.unavailable(ctx, "no agent is installed on this target")
		c.collectSecrets(ctx)
		return f, nil
	}
	if err := c.collectConfig(c.l.LocalConfig(), "file"); err != nil {
		return nil, err
	}
	c.collectServices(ctx)
	c.collectFiles()
	c.collectExtensions(ctx)
	c.collectSecrets(ctx)
	c.collectOptional(ctx)
	return f, nil
}

// unavailable marks the sections that need an installed agent.
func (c *collector) unavailable(ctx context.Context, why string) {
	f := c.facts
	f.Services = ServicesFacts{Section: Section{Reason: why}, ProcReason: why, Units: map[string]UnitFacts{}, Processes: map[string][]Process{}, Listeners: map[string][]Listener{}, Expected: expectedServices(), ProxyProbes: []ProxyProbe{}}
	f.Files = FilesFacts{Section: Section{Reason: why}, Entries: []FileFact{}}
	f.Extensions = ExtensionsFacts{Section: Section{Reason: why}, Installed: []ExtensionFact{}}
	if !f.Secrets.Available && f.Secrets.Reason == "" {
		f.Secrets = SecretsFacts{Section: Section{Reason: why}, Found: []SecretFact{}, Places: []string{}}
	}
	c.collectOptional(ctx)
}

// collectOptional fills releases and cloud, or says why they are absent.
func (c *collector) collectOptional(ctx context.Context) {
	f := c.facts
	f.Releases = ReleasesFacts{Section: Section{Reason: "no release source is configured"}, Extensions: []Currency{}}
	if c.opts.Releases != nil {
		r, err := c.opts.Releases.CollectReleases(ctx, f)
		if err != nil {
			c.errorf("releases", "", "%v", err)
			f.Releases.Reason, f.Releases.Error = "the release source could not be read: "+err.Error(), true
		} else {
			f.Releases = r
		}
	}
	f.Cloud = CloudFacts{Section: Section{Reason: "the agent is not connected to a control plane"}, StandingAdmins: []string{}, InheritedAssignments: []string{}}
	switch {
	case f.Agent.Connected:
		f.Cloud.Reason = NoCloudReason
	case f.Agent.Error:
		// Whether the agent is connected is not known: never "not connected".
		f.Cloud.Reason, f.Cloud.Error = "the agent's registration cannot be read: "+f.Agent.Reason, true
	}
	if c.opts.Cloud != nil && f.Agent.Connected {
		cl, err := c.opts.Cloud.CollectCloud(ctx, f)
		if err != nil {
			c.errorf("cloud", "", "%v", err)
			f.Cloud.Reason, f.Cloud.Error = "the control plane could not be asked: "+err.Error(), true
		} else {
			if cl.StandingAdmins == nil {
				cl.StandingAdmins = []string{}
			}
			if cl.InheritedAssignments == nil {
				cl.InheritedAssignments = []string{}
			}
			f.Cloud = cl
		}
	}
}

func (c *collector) errorf(collector, prodPath, format string, args ...any) {
	p := layout.Rel(prodPath)
	if c.facts.Target.OS == "windows" && p != "" {
		p = windowsLocation(p)
	}
	c.facts.Errors = append(c.facts.Errors, CollectorError{Collector: collector, Path: p, Error: fmt.Sprintf(format, args...)})
}

// TargetError says the target itself cannot be audited.
type TargetError struct {
	What string
	Err  error
}

func (e *TargetError) Error() string {
	if errors.Is(e.Err, fs.ErrNotExist) {
		return fmt.Sprintf("%s does not exist", e.What)
	}
	return fmt.Sprintf("cannot audit %s: %v", e.What, e.Err)
}

func (e *TargetError) Unwrap() error { return e.Err }

// exists reports whether a production path exists under the root.
// A path that leads out of the root through a link does not exist for
// the audit, and the collector errors say so.
func (c *collector) exists(prod string) bool {
	_, err := c.root.Lstat(prod)
	if errors.Is(err, saferead.ErrEscapes) {
		c.errorOnce("target", prod, err)
	}
	return err == nil
}

// errorOnce records err for prod unless it was recorded already.
func (c *collector) errorOnce(collector, prod string, err error) {
	for _, e := range c.facts.Errors {
		if e.Path == layout.Rel(prod) && e.Error == err.Error() {
			return
		}
	}
	c.errorf(collector, prod, "%v", err)
}

// read reads a production path of the target through saferead: inside the
// root, never through a final symlink, regular files only, at most limit
// bytes. Its errors name the path.
func (c *collector) read(prod string, limit int64) ([]byte, error) {
	return c.root.ReadFile(prod, limit)
}

// glob expands a production path pattern (path.Match syntax per component)
// inside the root, resolving directories through saferead so that a link
// out of a --root tree is not listed. The matches exist and are sorted.
func (c *collector) glob(pattern string) []string {
	cur := []string{"/"}
	for _, part := range strings.Split(strings.Trim(path.Clean("/"+pattern), "/"), "/") {
		if part == "" {
			continue
		}
		var next []string
		for _, dir := range cur {
			if !strings.ContainsAny(part, `*?[\`) {
				next = append(next, path.Join(dir, part))
				continue
			}
			d, err := c.root.OpenDir(dir)
			if err != nil {
				continue
			}
			ents, _ := d.Entries()
			d.Close()
			for _, e := range ents {
				if ok, _ := path.Match(part, e.Name()); ok {
					next = append(next, path.Join(dir, e.Name()))
				}
			}
		}
		cur = next
	}
	out := cur[:0]
	for _, p := range cur {
		if c.exists(p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}
