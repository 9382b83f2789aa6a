package extd

import (
	"context"
	"slices"
	"strings"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/signing"
)

// Listed is one row of `arcagent extension list`.
type Listed struct {
	Name      string `json:"name"`
	Publisher string `json:"publisher"`
	Type      string `json:"type"`
	Version   string `json:"version,omitempty"`
	Source    string `json:"source"` // controlplane, local, or unmanaged (a tree with no entry)
	Phase     string `json:"phase,omitempty"`
	State     string `json:"state"`
	Message   string `json:"message,omitempty"`
	Sequence  int    `json:"sequence"`
	Degraded  string `json:"degraded,omitempty"`
	Dir       string `json:"dir,omitempty"`
}

// SourceUnmanaged marks a tree under the extensions directory that the
// extension manager has no entry for.
const SourceUnmanaged = "unmanaged"

// List reads the state and the extensions directory (no network): every
// entry, plus every tree that no entry accounts for.
func List(m *Manager) ([]Listed, error) {
	st, err := LoadState(m.o.Layout)
	if err != nil {
		return nil, err
	}
	out := []Listed{}
	known := map[string]bool{}
	for _, e := range st.Extensions {
		l := Listed{Name: e.Name, Publisher: e.Publisher, Type: e.Type, Version: e.Version, Source: e.Source,
			Phase: e.Phase, State: e.Status.State, Message: e.Status.Message, Sequence: e.Sequence, Degraded: e.Status.Degraded}
		if e.Version != "" {
			name := signing.Package{Publisher: e.Publisher, Type: e.Type, Version: e.Version}.Name()
			known[name] = true
			l.Dir = m.o.Layout.ExtensionsDir() + "/" + name
		}
		if l.State == "" {
			l.State = e.Phase
		}
		out = append(out, l)
	}
	trees, err := extensions.ListInstalled(m.o.Layout.ExtensionsDir())
	if err == nil {
		for _, t := range trees {
			if known[t] {
				continue
			}
			l := Listed{Name: t, Source: SourceUnmanaged, State: "NotManaged", Message: "not installed by this agent's extension manager", Dir: m.o.Layout.ExtensionsDir() + "/" + t}
			if pkg, err := signing.ParsePackageFileName(t + ".zip"); err == nil {
				l.Publisher, l.Type, l.Version = pkg.Publisher, pkg.Type, pkg.Version
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// Remove removes the named extensions (all with all) on this machine,
// offline: disable → uninstall → delete, as a removal from the control
// plane does. While the control plane still assigns one, the running
// daemon installs it again (it notices the state change) unless local
// policy refuses it.
func (m *Manager) Remove(ctx context.Context, names []string, all bool) ([]string, error) {
	p, done, err := m.begin(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer done()
	var todo []*Entry
	if all {
		todo = slices.Clone(p.st.Extensions)
	} else {
		for _, n := range names {
			e := p.st.Lookup(n)
			if e == nil {
				e = p.lookupTree(n)
			}
			if e == nil {
				e = p.unmanagedTree(n)
			}
			if e == nil {
				return nil, errNotInstalled(n)
			}
			todo = append(todo, e)
		}
	}
	var removed []string
	for _, e := range todo {
		if !p.removeSteps(ctx, e, PhaseDisabling) {
			return removed, errcode.New(CodeState, "could not finish removing %s: %s", e.Name, e.Status.Message)
		}
		removed = append(removed, e.Name)
	}
	if len(removed) > 0 {
		p.st.StatusPending = true // sent by the daemon at its next pass
	}
	return removed, p.save()
}

// lookupTree finds an entry by its tree name <Publisher.Type-Version>.
func (p *pass) lookupTree(name string) *Entry {
	for _, e := range p.st.Extensions {
		if e.Version != "" && strings.EqualFold(signing.Package{Publisher: e.Publisher, Type: e.Type, Version: e.Version}.Name(), name) {
			return e
		}
	}
	return nil
}

// unmanagedTree is a tree under the extensions directory that no entry
// accounts for (not installed by this agent), named <Publisher.Type-Version>:
// it is removed like any other, its handler's disable and uninstall run
// when its manifest parses.
func (p *pass) unmanagedTree(name string) *Entry {
	pkg, err := signing.ParsePackageFileName(name + ".zip")
	if err != nil || pkg.Name() != name {
		return nil
	}
	trees, err := extensions.ListInstalled(p.m.o.Layout.ExtensionsDir())
	if err != nil || !slices.Contains(trees, name) {
		return nil
	}
	return &Entry{Name: name, Source: SourceUnmanaged, Publisher: pkg.Publisher, Type: pkg.Type, Version: pkg.Version, Phase: PhaseInstalled}
}

// LocalInstall is a package installed by `arcagent package install`.
type LocalInstall struct {
	Package  string // path of the zip
	Envelope []byte // nil: Package + ".sig.json"
	Expect   signing.Expectation
	Replace  bool
}

// InstallLocal installs a package through the same path as an assignment:
// local policy first (nothing is read or written when it refuses), then
// verification against the trust store and safe extraction with an
// install record; the extension manager records it as installed locally
// (not enabled). The control plane never removes it.
func (m *Manager) InstallLocal(ctx context.Context, li LocalInstall) (*extensions.InstallResult, error) {
	settings, _, err := config.NewStore(m.o.Layout).Load()
	if err != nil {
		return nil, errcode.Wrap(CodeRefused, err, "the local security controls cannot be read, so nothing is installed")
	}
	if v := Decide(settings, li.Expect.Publisher, li.Expect.Type); !v.Allowed {
		return nil, errcode.New(CodeRefused, "%s/%s: %s", li.Expect.Publisher, li.Expect.Type, v.Message())
	}
	p, done, err := m.begin(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer done()
	name := li.Expect.Publisher + "." + li.Expect.Type
	var old *Entry
	for _, e := range p.st.Extensions {
		if strings.EqualFold(e.Publisher, li.Expect.Publisher) && strings.EqualFold(e.Type, li.Expect.Type) {
			if e.Source != SourceLocal || !li.Replace {
				if e.Source == SourceControlPlane {
					return nil, errcode.New(extensions.CodeAlreadyInstalled, "%s is managed by the control plane as %q; change its assignment instead", name, e.Name)
				}
				return nil, errcode.New(extensions.CodeAlreadyInstalled, "%s %s is already installed; pass --replace to replace it", name, e.Version)
			}
			old, name = e, e.Name // replaced under its name, whatever the case typed
		}
	}
	if o := p.st.Lookup(name); o != nil && o.Source != SourceLocal {
		// The entry of that name is another extension's: never replaced.
		return nil, errcode.New(extensions.CodeAlreadyInstalled, "the name %s is taken by %s.%s, assigned by the control plane; remove that assignment first", name, o.Publisher, o.Type)
	}
	trust, err := p.loadTrust()
	if err != nil {
		return nil, err
	}
	res, err := extensions.Install(ctx, extensions.InstallOptions{
		Package: li.Package, Envelope: li.Envelope, Trust: trust, Expect: li.Expect,
		ExtensionsDir: m.o.Layout.ExtensionsDir(), Replace: li.Replace, Limits: m.o.Limits, Logger: m.o.Log, Now: p.now(),
	})
	if err != nil {
		return nil, err
	}
	e := &Entry{Name: name, Source: SourceLocal, Publisher: res.Record.Package.Publisher, Type: res.Record.Package.Type,
		Version: res.Record.Package.Version, PackageSHA256: res.Record.PackageSHA256, Phase: PhaseInstalled}
	e.Status = apiv1.ExtensionStatus{Name: name, Publisher: e.Publisher, Type: e.Type, Version: e.Version, State: PhaseInstalled,
		Message: "installed locally with arcagent package install; not enabled", UpdatedAt: p.now().UTC().Truncate(1e9)}
	if old != nil && old.Version != e.Version {
		if err := p.deleteTree(ctx, old, old.Version); err != nil {
			return res, err
		}
	}
	p.st.put(e)
	return res, p.save()
}
