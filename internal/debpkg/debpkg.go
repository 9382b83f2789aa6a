// Package debpkg builds arcagent's two Debian packages (arcagent and
// arcserver) with nfpm used as a library. The arcagent package's file list
// is generated from agent/layout's table: every directory row with its
// owner, group and mode, the files the package ships (binary, units,
// localconfig.json as a conffile), the directories of the glob rows, and a
// short, declared list of extras (the links, VERSION, arcproxyd.path, the
// sysusers.d file, HIMDS's run directory from agent/daemon). The maintainer
// scripts are generated from the same table (docs/packaging.md).
package debpkg

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/daemon"
	"github.com/arcagent/arcagent/agent/layout"
)

// Package names.
const (
	AgentPackage  = "arcagent"
	ServerPackage = "arcserver"
)

// ItemType is what a package item is.
type ItemType string

// Item types.
const (
	TypeDir     ItemType = "dir"
	TypeFile    ItemType = "file"
	TypeConfig  ItemType = "config" // a conffile: dpkg never overwrites the operator's changes
	TypeSymlink ItemType = "symlink"
)

// Item is one path a package installs.
type Item struct {
	Path  string // absolute destination
	Type  ItemType
	Owner string
	Group string
	Mode  fs.FileMode
	// Source is the file on disk the item copies (binary, unit); Data is
	// generated content. One of them is set for a file.
	Source string
	Data   []byte
	// Target is a symbolic link's target.
	Target string
	// LayoutID is the agent/layout row the item comes from; "" for a
	// declared extra (see Extra).
	LayoutID string
	// Why says where an item that is not a layout row comes from.
	Why string
	// NoFix leaves the item's owner and mode alone after the first
	// install (postinst does not reset a directory an operator tightened).
	NoFix bool
}

// Package is one .deb: its control data, items and maintainer scripts.
type Package struct {
	Name        string
	Description string
	Version     string // Debian version
	Arch        string // Debian architecture: amd64 or arm64
	Depends     []string
	Conflicts   []string
	Items       []Item
	Scripts     Scripts
}

// Scripts are the maintainer scripts' contents (POSIX sh).
type Scripts struct {
	PreInst, PostInst, PreRm, PostRm string
}

// Inputs are what the packages are built from.
type Inputs struct {
	// Version is the version the binaries were stamped with (git describe
	// or VERSION=...): written to /opt/azcmagent/bin/VERSION and mapped
	// to the Debian version with DebianVersion.
	Version string
	// Arch is the Debian (and Go) architecture: amd64 or arm64.
	Arch string
	// BinDir holds arcagent and arcserver built for Arch.
	BinDir string
	// UnitDir holds the systemd units (packaging/systemd).
	UnitDir string
}

// Arches are the architectures `make deb` builds.
var Arches = []string{"amd64", "arm64"}

// runtimeFiles are the layout's file rows the agent writes at run time
// (connect, an operator): not shipped. The package ships the binary,
// localconfig.json and the units; every other file row must be listed
// here, or AgentItems fails: a new row is a decision, not an omission.
var runtimeFiles = []string{"agentconfig", "proxy-credentials"}

// Extra paths of the arcagent package that are not layout rows.
const (
	VersionFile  = layout.BinDir + "/VERSION"
	SysusersFile = "/usr/lib/sysusers.d/arcagent.conf"
	// PathUnit starts the arc proxy when localconfig.json changes.
	PathUnit = "arcproxyd.path"
)

// Links are the names the arcagent binary answers to (as `make install`
// makes them), relative links in layout.BinDir.
var Links = []string{"azcmagent", "himds"}

// StartOrder is the order in which the services start (and restart after
// an upgrade): the arc proxy before HIMDS (arcproxyd.service is
// Before=himdsd.service), HIMDS before extd and gcad (After=himdsd.service).
// It stops in the reverse order.
func StartOrder() []string {
	return []string{"arcproxyd", "himdsd", "extd", "gcad"}
}

// DefaultLocalConfig is the content `arcagent config` writes for a machine
// with nothing configured: the conffile the package ships.
func DefaultLocalConfig() ([]byte, error) {
	return config.NewSettings().Marshal()
}

// AgentItems generates the arcagent package's items from agent/layout.
func AgentItems(in Inputs) ([]Item, error) {
	var items []Item
	rows := layout.Entries()
	isDirRow := map[string]bool{}
	for _, e := range rows {
		if e.Kind == layout.KindDir {
			isDirRow[e.Path] = true
		}
	}
	localconfig, err := DefaultLocalConfig()
	if err != nil {
		return nil, err
	}
	globParents := map[string]bool{}
	for _, e := range rows {
		it := Item{Path: e.Path, Owner: e.Owner, Group: e.Group, Mode: e.Mode, LayoutID: e.ID}
		switch e.Kind {
		case layout.KindDir:
			it.Type = TypeDir
		case layout.KindFile:
			switch {
			case e.ID == "binary":
				it.Type, it.Source = TypeFile, filepath.Join(in.BinDir, "arcagent")
			case e.ID == "localconfig":
				it.Type, it.Data = TypeConfig, localconfig
			case path.Dir(e.Path) == layout.UnitDir:
				it.Type, it.Source = TypeFile, filepath.Join(in.UnitDir, path.Base(e.Path))
			case slices.Contains(runtimeFiles, e.ID):
				continue
			default:
				return nil, fmt.Errorf("layout row %s (%s) is a file internal/debpkg neither ships nor lists as written at run time: ship it in AgentItems or add its ID to runtimeFiles", e.ID, e.Path)
			}
		case layout.KindGlob:
			// Runtime files are not shipped; their directory is.
			dir := path.Dir(e.Path)
			if isDirRow[dir] || globParents[dir] {
				continue
			}
			globParents[dir] = true
			items = append(items, Item{Path: dir, Type: TypeDir, Owner: layout.UserRoot, Group: layout.GroupRoot, Mode: 0o755, NoFix: true,
				Why: "the directory of layout row " + e.ID + " (" + e.Path + "), not a row itself: root:root 0755, its entries protect themselves"})
			continue
		default:
			return nil, fmt.Errorf("layout row %s has kind %q, which internal/debpkg does not know", e.ID, e.Kind)
		}
		items = append(items, it)
	}
	// Extras.
	for _, l := range Links {
		items = append(items, Item{Path: layout.BinDir + "/" + l, Type: TypeSymlink, Target: path.Base(layout.Binary), Owner: layout.UserRoot, Group: layout.GroupRoot, Mode: 0o777,
			Why: "the binary answers to " + l + " (as make install links it)"})
	}
	items = append(items,
		Item{Path: VersionFile, Type: TypeFile, Data: []byte(strings.TrimSpace(in.Version) + "\n"), Owner: layout.UserRoot, Group: layout.GroupRoot, Mode: 0o644,
			Why: "the version the binary was built as (make install writes it too)"},
		Item{Path: layout.UnitDir + "/" + PathUnit, Type: TypeFile, Source: filepath.Join(in.UnitDir, PathUnit), Owner: layout.UserRoot, Group: layout.GroupRoot, Mode: 0o644,
			Why: "starts arcproxyd when localconfig.json changes"},
		Item{Path: SysusersFile, Type: TypeFile, Data: []byte(Sysusers()), Owner: layout.UserRoot, Group: layout.GroupRoot, Mode: 0o644,
			Why: "the service users for systemd-sysusers"},
	)
	run, err := runDir()
	if err != nil {
		return nil, err
	}
	items = append(items, run)
	slices.SortStableFunc(items, func(a, b Item) int { return strings.Compare(a.Path, b.Path) })
	return items, nil
}

// runDir is HIMDS's run directory as agent/daemon checks it: himdsd's
// ReadWritePaths names it, so it must exist before HIMDS first starts.
func runDir() (Item, error) {
	for _, d := range daemon.HIMDSDirs(layout.New("/"), "") {
		if d.Path == layout.RunDir {
			return Item{Path: d.Path, Type: TypeDir, Owner: d.Owner.User, Group: d.Owner.Group, Mode: d.Mode,
				Why: "HIMDS's run directory (agent/daemon.HIMDSDirs): himdsd.service's ReadWritePaths needs it"}, nil
		}
	}
	return Item{}, fmt.Errorf("agent/daemon.HIMDSDirs no longer names %s: update internal/debpkg", layout.RunDir)
}

// serviceUsers are the system users and groups of the arcagent package:
// the non-root service identities of agent/layout, and the groups the
// layout's rows name.
func serviceUsers() (users []sysUser, groups []string) {
	seen := map[string]bool{layout.UserRoot: true}
	for _, s := range layout.Services() {
		if seen[s.User] {
			continue
		}
		seen[s.User] = true
		users = append(users, sysUser{Name: s.User, Group: s.User, Comment: "arcagent " + s.Holds})
	}
	gseen := map[string]bool{layout.GroupRoot: true}
	for _, u := range users {
		gseen[u.Group] = true
	}
	for _, e := range layout.Entries() {
		if !gseen[e.Group] {
			gseen[e.Group] = true
			groups = append(groups, e.Group)
		}
	}
	return users, groups
}

type sysUser struct {
	Name, Group, Comment, Home string
}

// Sysusers is the sysusers.d(5) file of the arcagent package.
func Sysusers() string {
	users, groups := serviceUsers()
	return sysusersText("arcagent", users, groups)
}

func sysusersText(pkg string, users []sysUser, groups []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# System users of the %s package (generated by internal/debpkg).\n", pkg)
	for _, u := range users {
		home := u.Home
		if home == "" {
			home = "/"
		}
		fmt.Fprintf(&b, "u %s - %q %s /usr/sbin/nologin\n", u.Name, u.Comment, home)
	}
	for _, g := range groups {
		fmt.Fprintf(&b, "g %s -\n", g)
	}
	return b.String()
}

// readFile reads a source file of an item, with a message that says what
// to build first.
func readFile(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s (build the binaries with `make deb`, or give -bin and -units): %w", p, err)
	}
	return b, nil
}
