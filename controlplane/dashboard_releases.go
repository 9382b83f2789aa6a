package controlplane

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/releases"
	"github.com/arcagent/arcagent/signing"
)

// openReleaseCatalog opens and verifies the signed release catalog the
// dashboard classifies agent versions with (the format `arcagent fleet
// currency --catalog` reads), trusting the keys in trustDir (default
// DATA/trust), which also keeps the catalog's last version so that an
// older catalog is refused at the next start.
func openReleaseCatalog(ctx context.Context, o ServeOptions, log *slog.Logger) (releases.Source, error) {
	name := o.ReleaseCatalogName
	if name == "" {
		name = "releases"
	}
	dir := o.ReleaseTrustDir
	if dir == "" {
		dir = filepath.Join(o.DataDir, "trust")
	}
	var opts []signing.TrustOption
	if os.Geteuid() != 0 {
		// arcserver runs as its own user, which owns its data directory.
		opts = append(opts, signing.AllowNonRootOwner(func(msg string) { log.Debug("release trust directory", "note", msg) }))
	}
	trust, err := signing.LoadTrustStore(dir, opts...)
	if err != nil {
		return nil, errcode.Wrap(CodeReleaseCatalog, err, "load the trust directory %s of the release catalog (add its key with `arcagent trust add --trust-dir %s --catalog %s`)", dir, dir, name)
	}
	src, err := releases.OpenCatalog(ctx, releases.CatalogOptions{Location: o.ReleaseCatalog, Name: name, Trust: trust, StateDir: dir})
	if err != nil {
		return nil, errcode.Wrap(CodeReleaseCatalog, err, "open the release catalog %s", o.ReleaseCatalog)
	}
	return src, nil
}
