package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/errcode"
)

// Error codes of published package bytes (ARC0690–ARC0699).
const (
	CodePackageFiles errcode.Code = "ARC0690" // a package published before its bytes moved into the database cannot be copied from packages/
)

func init() {
	errcode.Register(errcode.Info{Code: CodePackageFiles, Exit: errcode.ExitFailed, Title: "a published package's files in the data directory are missing or damaged",
		Remedy: "restore DIR/packages/<sha256>.zip and <sha256>.sig.json of the packages named from a backup of the data directory (or a copy on another replica) and run the command again; their bytes must match the digest they were published with"})
}

// ImportPackageFiles copies into the database the bytes and envelopes of
// the packages whose bytes are only in dataDir's packages/ directory
// (published by a server that kept them in files), each in one
// transaction after checking its size and digest. It returns how many it
// copied; the error (CodePackageFiles) names every package it could not
// copy. A package copied already, also concurrently by another replica,
// is skipped. The files are left in place.
func ImportPackageFiles(ctx context.Context, st store.Store, dataDir string) (int, error) {
	ps, err := st.PackagesWithoutBlob(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, p := range ps {
		added, err := importPackageFile(ctx, st, dataDir, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("package %s.%s-%s (sha256 %s): %w", p.Publisher, p.Type, p.Version, p.SHA256, err))
			continue
		}
		if added {
			n++
		}
	}
	if err := errors.Join(errs...); err != nil {
		return n, errcode.Wrap(CodePackageFiles, err, "copy %d published packages from %s into the database", len(errs), PackagesDir)
	}
	return n, nil
}

func importPackageFile(ctx context.Context, st store.PackageBlobs, dataDir string, p store.Package) (bool, error) {
	ef, err := os.Open(packageFile(dataDir, p.SHA256, true))
	if err != nil {
		return false, err
	}
	env, err := io.ReadAll(io.LimitReader(ef, maxEnvelope+1))
	ef.Close()
	if err != nil {
		return false, err
	}
	if len(env) > maxEnvelope {
		return false, fmt.Errorf("the signature file is larger than %d bytes", maxEnvelope)
	}
	f, err := os.Open(packageFile(dataDir, p.SHA256, false))
	if err != nil {
		return false, err
	}
	defer f.Close()
	// AddPackageBlob reads at most Size+1 bytes and checks the digest.
	return st.AddPackageBlob(ctx, p.SHA256, p.Size, env, io.LimitReader(f, p.Size+1))
}
