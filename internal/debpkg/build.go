package debpkg

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

// The arcserver package's paths and identity (docs/packaging.md): the
// control plane is not part of the agent's layout.
const (
	ServerBinary   = "/usr/bin/arcserver"
	ServerUnit     = "/usr/lib/systemd/system/arcserver.service"
	ServerSysusers = "/usr/lib/sysusers.d/arcserver.conf"
	ServerDataDir  = "/var/lib/arcserver"
	ServerUser     = "arcserver"
	// ServerInitialised is the file `arcserver init` creates: the
	// service starts (and restarts after an upgrade) only once it exists.
	ServerInitialised = ServerDataDir + "/arcserver.db"
)

const (
	maintainer = "arcagent maintainers <arcagent@users.noreply.github.com>"
	homepage   = "https://github.com/arcagent/arcagent"
	// wantsDir is where `systemctl enable` puts the enablement links.
	wantsDir = "/etc/systemd/system"
)

func checkInputs(in Inputs) (string, error) {
	if !slices.Contains(Arches, in.Arch) {
		return "", fmt.Errorf("architecture %q is not packaged: use one of %v", in.Arch, Arches)
	}
	return DebianVersion(in.Version)
}

// Agent returns the arcagent package.
func Agent(in Inputs) (Package, error) {
	v, err := checkInputs(in)
	if err != nil {
		return Package{}, err
	}
	items, err := AgentItems(in)
	if err != nil {
		return Package{}, err
	}
	d, err := agentScriptData(items)
	if err != nil {
		return Package{}, err
	}
	s, err := renderScripts(d)
	if err != nil {
		return Package{}, err
	}
	return Package{
		Name:        AgentPackage,
		Description: "arcagent: Azure Connected Machine agent (azcmagent) and security audit engine\n HIMDS, the extension manager, guest configuration and the arc proxy as\n systemd services, with the users, owners and modes its own audit expects.",
		Version:     v,
		Arch:        in.Arch,
		// Microsoft's agent package installs the same paths.
		Conflicts: []string{"azcmagent"},
		Items:     items,
		Scripts:   s,
	}, nil
}

// ServerItems are the arcserver package's items.
func ServerItems(in Inputs) []Item {
	root := func(it Item) Item { it.Owner, it.Group = layout.UserRoot, layout.GroupRoot; return it }
	return []Item{
		root(Item{Path: ServerBinary, Type: TypeFile, Source: filepath.Join(in.BinDir, "arcserver"), Mode: 0o755, Why: "the control plane server"}),
		root(Item{Path: ServerSysusers, Type: TypeFile, Data: []byte(serverSysusers()), Mode: 0o644, Why: "the service user for systemd-sysusers"}),
		root(Item{Path: ServerUnit, Type: TypeFile, Source: filepath.Join(in.UnitDir, path.Base(ServerUnit)), Mode: 0o644, Why: "the service"}),
		{Path: ServerDataDir, Type: TypeDir, Owner: ServerUser, Group: ServerUser, Mode: 0o700, Why: "the database, CA and TLS keys"},
	}
}

func serverSysusers() string {
	return sysusersText(ServerPackage, []sysUser{{Name: ServerUser, Group: ServerUser, Comment: "arcserver control plane", Home: ServerDataDir}}, nil)
}

// Server returns the arcserver package.
func Server(in Inputs) (Package, error) {
	v, err := checkInputs(in)
	if err != nil {
		return Package{}, err
	}
	items := ServerItems(in)
	unit, err := readFile(filepath.Join(in.UnitDir, path.Base(ServerUnit)))
	if err != nil {
		return Package{}, err
	}
	d := scriptData{
		Package:       ServerPackage,
		SysusersFile:  ServerSysusers,
		Sysusers:      serverSysusers(),
		Users:         []sysUser{{Name: ServerUser, Group: ServerUser, Comment: "arcserver control plane", Home: ServerDataDir}},
		Fix:           []Item{items[3]},
		Enable:        []string{path.Base(ServerUnit)},
		Start:         []string{"arcserver"},
		Stop:          []string{path.Base(ServerUnit)},
		ConfiguredIf:  ServerInitialised,
		ConfiguredWhy: "the server is initialised (arcserver init)",
		PurgeTrees:    []string{ServerDataDir},
	}
	for _, t := range wantedBy(unit) {
		d.Wants = append(d.Wants, wantsDir+"/"+t+".wants/"+path.Base(ServerUnit))
	}
	s, err := renderScripts(d)
	if err != nil {
		return Package{}, err
	}
	return Package{
		Name:        ServerPackage,
		Description: "arcserver: the arcagent control plane\n The HTTPS API agents and operators talk to, with its SQLite store, as a\n systemd service running as user arcserver.",
		Version:     v,
		Arch:        in.Arch,
		Items:       items,
		Scripts:     s,
	}, nil
}

// FileName is the package's file name: NAME_VERSION_ARCH.deb.
func (p Package) FileName() string {
	return fmt.Sprintf("%s_%s_%s.deb", p.Name, p.Version, p.Arch)
}

// Write writes the .deb to w. Generated contents and scripts are staged
// in a temporary directory (nfpm reads files).
func (p Package) Write(ctx context.Context, w io.Writer) error {
	stage, err := os.MkdirTemp("", "debpkg-")
	if err != nil {
		return fmt.Errorf("create a staging directory: %w", err)
	}
	defer os.RemoveAll(stage)
	var contents files.Contents
	for i, it := range p.Items {
		if err := ctx.Err(); err != nil {
			return err
		}
		src := it.Source
		if it.Type != TypeDir && it.Type != TypeSymlink && it.Data != nil {
			src = filepath.Join(stage, fmt.Sprintf("item-%d", i))
			if err := os.WriteFile(src, it.Data, 0o600); err != nil {
				return fmt.Errorf("stage %s: %w", it.Path, err)
			}
		}
		c := &files.Content{Destination: it.Path, FileInfo: &files.ContentFileInfo{Owner: it.Owner, Group: it.Group, Mode: it.Mode}}
		switch it.Type {
		case TypeDir:
			c.Type = files.TypeDir
		case TypeFile:
			c.Type, c.Source = files.TypeFile, src
		case TypeConfig:
			c.Type, c.Source = files.TypeConfigNoReplace, src
		case TypeSymlink:
			c.Type, c.Source = files.TypeSymlink, it.Target
			c.FileInfo.Mode = 0
		default:
			return fmt.Errorf("item %s has type %q, which internal/debpkg does not package", it.Path, it.Type)
		}
		if c.Source != "" && c.Type != files.TypeSymlink {
			if _, err := os.Stat(c.Source); err != nil {
				return fmt.Errorf("%s needs %s (build the binaries first: make deb): %w", it.Path, c.Source, err)
			}
		}
		contents = append(contents, c)
	}
	scripts := [4]string{}
	for i, s := range []string{p.Scripts.PreInst, p.Scripts.PostInst, p.Scripts.PreRm, p.Scripts.PostRm} {
		if s == "" {
			continue
		}
		scripts[i] = filepath.Join(stage, fmt.Sprintf("script-%d", i))
		if err := os.WriteFile(scripts[i], []byte(s), 0o700); err != nil {
			return fmt.Errorf("stage the maintainer scripts: %w", err)
		}
	}
	info := &nfpm.Info{
		Name:          p.Name,
		Arch:          p.Arch,
		Platform:      "linux",
		Version:       p.Version,
		VersionSchema: "none",
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    maintainer,
		Description:   p.Description,
		Homepage:      homepage,
		Overridables: nfpm.Overridables{
			Depends:   p.Depends,
			Conflicts: p.Conflicts,
			Contents:  contents,
			Scripts:   nfpm.Scripts{PreInstall: scripts[0], PostInstall: scripts[1], PreRemove: scripts[2], PostRemove: scripts[3]},
			Deb:       nfpm.Deb{Compression: "none"}, // finishDeb compresses
		},
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return fmt.Errorf("prepare package %s: %w", p.Name, err)
	}
	var raw bytes.Buffer
	if err := deb.Default.Package(info, &raw); err != nil {
		return fmt.Errorf("write package %s: %w", p.Name, err)
	}
	return finishDeb(raw.Bytes(), w)
}

// Build writes both packages for in.Arch into outDir (atomically: a
// partial .deb is never left under its final name) and returns their
// paths.
func Build(ctx context.Context, in Inputs, outDir string) ([]string, error) {
	var out []string
	for _, mk := range []func(Inputs) (Package, error){Agent, Server} {
		p, err := mk(in)
		if err != nil {
			return out, err
		}
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return out, fmt.Errorf("create %s: %w", outDir, err)
		}
		dst := filepath.Join(outDir, p.FileName())
		if err := writeAtomic(ctx, dst, p); err != nil {
			return out, err
		}
		out = append(out, dst)
	}
	return out, nil
}

func writeAtomic(ctx context.Context, dst string, p Package) error {
	var b bytes.Buffer
	if err := p.Write(ctx, &b); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(dst, b.Bytes(), atomicfile.WriteOptions{Mode: 0o644}); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}
