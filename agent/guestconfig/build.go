package guestconfig

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/saferead"
	"github.com/arcagent/arcagent/signing"
)

// BuildOptions says what BuildPackage builds.
type BuildOptions struct {
	// Dir holds guestconfig.yaml at its root and the files its resources
	// refer to (file source, exec validateFile/enforceFile).
	Dir string
	// Publisher names the package with the document's name and version:
	// <Publisher>.<Name>-<Version>.zip.
	Publisher string
	// OutDir is where the zip is written ("" = current directory).
	OutDir string
	// Parameters are sample values for parameters without a default, used
	// only to validate the document.
	Parameters map[string]string
}

// BuildResult describes a built configuration package.
type BuildResult struct {
	Path      string          `json:"path"`
	Package   signing.Package `json:"package"`
	SHA256    string          `json:"sha256"`
	Size      int64           `json:"size"`
	Files     int             `json:"files"`
	Resources int             `json:"resources"`
}

// BuildPackage validates Dir's guestconfig.yaml (Parse, then Compile with
// the defaults as a signed package would be, so exec resources and
// package files are checked) and writes <Publisher>.<Name>-<Version>.zip
// reproducibly: regular files only, sorted names, fixed times, mode 0644,
// deflate. Symbolic links and special files are refused, ".git" skipped.
// The archive is read back through ReadPackage before it is written
// (atomically), so what is built is what a machine will load.
func BuildPackage(ctx context.Context, o BuildOptions) (*BuildResult, error) {
	docBytes, err := saferead.File(filepath.Join(o.Dir, DocumentFile), MaxDocument)
	if err != nil {
		return nil, pkgErr(err, "read %s of %s", DocumentFile, o.Dir)
	}
	doc, err := Parse(DocumentFile, docBytes)
	if err != nil {
		return nil, err
	}
	p := signing.Package{Publisher: o.Publisher, Type: doc.Name, Version: doc.Version}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	outDir := o.OutDir
	if outDir == "" {
		outDir = "."
	}
	out := filepath.Join(outDir, p.FileName())
	outAbs, _ := filepath.Abs(out)

	files := map[string][]byte{}
	var names []string
	var total int64
	err = filepath.WalkDir(o.Dir, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(o.Dir, fp)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if abs, _ := filepath.Abs(fp); abs == outAbs || abs == outAbs+signing.SignatureSuffix {
			return nil
		}
		if !d.Type().IsRegular() {
			return pkgErr(nil, "%s is a %s: configuration packages hold regular files only (copy the target in)", rel, fileType(d.Type()))
		}
		b, err := saferead.File(fp, packageLimits.MaxFileSize)
		if err != nil {
			return pkgErr(err, "read %s", rel)
		}
		if total += int64(len(b)); total > packageLimits.MaxTotalSize {
			return pkgErr(nil, "%s holds more than %d bytes: configuration packages are small", o.Dir, packageLimits.MaxTotalSize)
		}
		if len(names) >= packageLimits.MaxEntries {
			return pkgErr(nil, "%s holds more than %d files", o.Dir, packageLimits.MaxEntries)
		}
		files[rel] = b
		names = append(names, rel)
		return nil
	})
	if err != nil {
		if _, coded := errcode.CodeOf(err); coded {
			return nil, err
		}
		return nil, pkgErr(err, "read %s", o.Dir)
	}
	// The document that is zipped is the one that was validated.
	files[DocumentFile] = docBytes
	pkgFiles := map[string][]byte{}
	for n, b := range files {
		if n != DocumentFile {
			pkgFiles[n] = b
		}
	}
	c, err := Compile(doc, o.Parameters, CompileContext{Signed: true, Files: pkgFiles})
	if err != nil {
		return nil, fmt.Errorf("%w (pass sample values for parameters without a default with --parameters)", err)
	}
	sort.Strings(names)

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		hdr := &zip.FileHeader{Name: n, Method: zip.Deflate, Modified: extensions.BuildEpoch}
		hdr.SetMode(0o644)
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return nil, pkgErr(err, "build the archive")
		}
		if _, err := w.Write(files[n]); err != nil {
			return nil, pkgErr(err, "build the archive")
		}
	}
	if err := zw.Close(); err != nil {
		return nil, pkgErr(err, "build the archive")
	}
	if buf.Len() > MaxPackage {
		return nil, pkgErr(nil, "the package would be %d bytes, more than %d", buf.Len(), MaxPackage)
	}
	if _, err := ReadPackage(ctx, buf.Bytes()); err != nil {
		return nil, fmt.Errorf("the built archive does not read back: %w", err)
	}
	if err := atomicfile.WriteFile(out, buf.Bytes(), atomicfile.WriteOptions{Mode: 0o644}); err != nil {
		return nil, pkgErr(err, "write %s", out)
	}
	h := sha256.Sum256(buf.Bytes())
	return &BuildResult{Path: out, Package: p, SHA256: hex.EncodeToString(h[:]), Size: int64(buf.Len()), Files: len(names), Resources: len(c.Resources)}, nil
}

// SignPackage signs the configuration package at path as p (a guest
// configuration signature, never an extension's) after checking it is
// one: it reads as a package and its document's name and version are p's
// type and version.
func SignPackage(ctx context.Context, path string, p signing.Package, signer signature.Signer) ([]byte, *signing.Statement, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	f, err := saferead.OpenFile(path)
	if err != nil {
		return nil, nil, pkgErr(err, "read configuration package")
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxPackage+1))
	f.Close()
	if err != nil {
		return nil, nil, pkgErr(err, "read configuration package %s", path)
	}
	if len(data) > MaxPackage {
		return nil, nil, pkgErr(nil, "%s is larger than %d bytes: not a configuration package", path, MaxPackage)
	}
	pkg, err := ReadPackage(ctx, data)
	if err != nil {
		return nil, nil, err
	}
	if pkg.Doc.Name != p.Type || pkg.Doc.Version != p.Version {
		return nil, nil, pkgErr(nil, "the package's %s is %s %s but it would be signed as %s: rebuild it with `arcagent guestconfig build` or sign it under its own name", DocumentFile, pkg.Doc.Name, pkg.Doc.Version, p.Name())
	}
	// Sign exactly the bytes that were checked.
	tmp, err := os.CreateTemp("", "arcagent-gc-sign-*.zip")
	if err != nil {
		return nil, nil, pkgErr(err, "sign %s", path)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, nil, pkgErr(err, "sign %s", path)
	}
	if err := tmp.Close(); err != nil {
		return nil, nil, pkgErr(err, "sign %s", path)
	}
	env, st, err := signing.SignPackageKind(ctx, signing.KindGuestConfig, tmp.Name(), p, signer)
	if err != nil {
		return nil, nil, err
	}
	return env, st, nil
}
