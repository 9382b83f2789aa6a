package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/arcagent/arcagent/agent/layout"
)

// fileClass groups layout entries for the privilege rules.
var fileClass = map[string]string{
	"bin-dir": "binary", "binary": "binary", "state-dir": "state",
	"localconfig": "config", "agentconfig": "config", "proxy-credentials": "proxy",
	"certs-dir": "certs", "machine-key": "certs",
	"tokens-dir": "tokens", "token-key": "tokens",
	"trust-dir": "trust", "trust-file": "trust",
	"log-dir": "logs", "guestconfig-dir": "guestconfig", "extension-dir": "extensions",
	"extension-records": "extensions", "ext-settings-cert": "extensions", "ext-settings-key": "extensions",
	"extmgr-dir": "extensions", "ext-downloads-dir": "extensions", "extension-logs-dir": "extensions",
	"unit-himdsd": "units", "unit-extd": "units", "unit-gcad": "units", "unit-arcproxyd": "units",
}

func (c *collector) collectFiles() {
	ff := &c.facts.Files
	ff.Available = true
	ff.Entries = []FileFact{}
	if c.acctErr != nil {
		ff.Available, ff.Error = false, true
		ff.Reason = "owners and groups cannot be named: the target's users and groups cannot be read: " + c.acctErr.Error()
	}
	entries := layout.Entries()
	for _, e := range entries {
		wantKind := "file"
		if e.Kind == layout.KindDir || e.ID == "extension-dir" {
			wantKind = "dir"
		}
		if e.Kind != layout.KindGlob {
			ff.Entries = append(ff.Entries, c.fileFact(e, e.Path, wantKind, e.Mode))
			continue
		}
		if _, err := path.Match(path.Base(e.Path), ""); err != nil {
			c.errorf("files", e.Path, "bad pattern: %v", err)
			continue
		}
		for _, prod := range c.glob(e.Path) {
			if strings.Contains(path.Base(prod), ".lock") || claimedElsewhere(entries, e, prod) {
				continue
			}
			fi, err := c.root.Lstat(prod)
			kind, mode := wantKind, e.Mode
			if err == nil {
				// A directory inside a file glob (or a file inside a
				// directory glob) is judged by the same owner and the
				// matching mode: execute bits follow read bits for dirs.
				if fi.IsDir() && wantKind == "file" {
					kind, mode = "dir", dirMode(e.Mode)
				} else if fi.Mode().IsRegular() && wantKind == "dir" {
					kind, mode = "file", e.Mode&^0o111
				}
			}
			ff.Entries = append(ff.Entries, c.fileFact(e, prod, kind, mode))
		}
	}
}

// claimedElsewhere reports whether a match prod of glob entry e is named
// by another, more specific entry (an exact path, or a glob of the same
// directory whose pattern is not a bare "*"): that entry judges it, so
// that <ExtensionsDir>/*.prv is a settings key, not an extension tree.
func claimedElsewhere(entries []layout.Entry, e layout.Entry, prod string) bool {
	for _, o := range entries {
		if o.ID == e.ID {
			continue
		}
		if o.Kind != layout.KindGlob {
			if o.Path == prod {
				return true
			}
			continue
		}
		pat := path.Base(o.Path)
		if path.Dir(o.Path) != path.Dir(e.Path) || pat == "*" || pat == path.Base(e.Path) {
			continue
		}
		if ok, _ := path.Match(pat, path.Base(prod)); ok {
			return true
		}
	}
	return false
}

func dirMode(m fs.FileMode) fs.FileMode {
	for _, p := range [][2]fs.FileMode{{0o400, 0o100}, {0o040, 0o010}, {0o004, 0o001}} {
		if m&p[0] != 0 {
			m |= p[1]
		}
	}
	return m
}

func (c *collector) fileFact(e layout.Entry, prod, wantKind string, want fs.FileMode) FileFact {
	f := FileFact{ID: e.ID, Class: fileClass[e.ID], Path: layout.Rel(prod), WantKind: wantKind,
		WantOwner: e.Owner, WantGroup: e.Group, WantMode: fmt.Sprintf("%04o", want), ExtraBits: "0", UID: -1, GID: -1}
	fi, err := c.root.Lstat(prod)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			f.Error = err.Error()
			c.errorf("files", prod, "cannot inspect: %v", err)
		}
		return f
	}
	f.Exists = true
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		f.Kind = "symlink"
	case fi.IsDir():
		f.Kind = "dir"
	case fi.Mode().IsRegular():
		f.Kind = "file"
	default:
		f.Kind = "other"
	}
	perm := fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	f.Mode = fmt.Sprintf("%04o", unixMode(perm))
	f.ExtraBits = fmt.Sprintf("%o", unixMode(perm)&^unixMode(want))
	if uid, gid, ok := fileIDs(fi); ok {
		f.UID, f.GID = uid, gid
		f.Owner, f.Group = c.acct.userName(f.UID), c.acct.groupName(f.GID)
	}
	return f
}

// unixMode converts Go's mode bits to the classic octal form.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}
