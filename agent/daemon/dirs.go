package daemon

import (
	"errors"
	"io/fs"
	"log/slog"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

// Dir is a directory a service relies on, with the owner and mode it
// must have.
type Dir struct {
	Path  string
	Owner atomicfile.Owner
	Mode  fs.FileMode
	// Create makes a missing directory; otherwise a missing one is left
	// alone (nothing is in it to protect yet).
	Create bool
}

// HIMDSDirs are the directories HIMDS relies on under l, with the owners
// and modes agent/layout declares: tokens/ (or tokensDir when set),
// certs/, run/ and log/.
func HIMDSDirs(l layout.Layout, tokensDir string) []Dir {
	if tokensDir == "" {
		tokensDir = l.TokensDir()
	}
	himds := atomicfile.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS}
	entry := func(id string) (atomicfile.Owner, fs.FileMode) {
		e, ok := layout.Lookup(id)
		if !ok {
			panic("layout has no entry " + id)
		}
		return atomicfile.Owner{User: e.Owner, Group: e.Group}, e.Mode
	}
	tokOwner, tokMode := entry("tokens-dir")
	certOwner, certMode := entry("certs-dir")
	logOwner, logMode := entry("log-dir")
	return []Dir{
		{Path: tokensDir, Owner: tokOwner, Mode: tokMode, Create: true},
		{Path: l.CertsDir(), Owner: certOwner, Mode: certMode},
		// layout.RunDir: himds:himds 0750 (not an audited entry).
		{Path: l.RunDir(), Owner: himds, Mode: 0o750, Create: true},
		{Path: l.LogDir(), Owner: logOwner, Mode: logMode, Create: true},
	}
}

// CheckDirs checks the owner and mode of each directory and repairs what
// it can: as root every owner and mode, otherwise the mode of a directory
// the process owns. A directory it cannot repair, or that is not a
// directory at all (a symlink, a file), is an error that names the fix.
// Every repair is logged.
func CheckDirs(dirs []Dir, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	for _, d := range dirs {
		if err := checkDir(d, log); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
