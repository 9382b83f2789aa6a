package extensions

import (
	"archive/zip"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/saferead"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/arcagent/arcagent/signing"
)

// BuildEpoch is the timestamp of every entry of a built package, so that
// the same input always gives the same bytes.
var BuildEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// BuildOptions says what to package.
type BuildOptions struct {
	Dir     string          // extension directory with HandlerManifest.json at its root
	Package signing.Package // publisher, type, version
	OutDir  string          // where <P>.<T>-<V>.zip is written ("" = current directory)
}

// BuildResult describes a built package.
type BuildResult struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Files  int    `json:"files"`
}

type buildEntry struct {
	rel  string // slash-separated
	abs  string
	dir  bool
	exec bool
}

// BuildPackage validates HandlerManifest.json and writes the package zip
// reproducibly: entries sorted by name, fixed timestamps, modes reduced to
// 0755/0644, deflate. Symbolic links and special files in Dir are refused;
// ".git" directories are skipped. The zip is written atomically.
func BuildPackage(ctx context.Context, o BuildOptions) (*BuildResult, error) {
	if err := o.Package.Validate(); err != nil {
		return nil, err
	}
	outDir := o.OutDir
	if outDir == "" {
		outDir = "."
	}
	out := filepath.Join(outDir, o.Package.FileName())
	outAbs, _ := filepath.Abs(out)
	var entries []buildEntry
	err := filepath.WalkDir(o.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(o.Dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if abs, _ := filepath.Abs(p); abs == outAbs || abs == outAbs+signing.SignatureSuffix {
			return nil
		}
		if isRuntimePath(rel) {
			return fail(CodeBadHandlerManifest, nil, "%s is written at run time by the extension manager or the extension (%s); remove it from %s", rel, strings.Join(RuntimePaths, ", "), o.Dir)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			return fail(CodeBadHandlerManifest, nil, "%s is a symbolic link: packages hold regular files only (copy the target in)", rel)
		case info.IsDir():
			entries = append(entries, buildEntry{rel: rel + "/", abs: p, dir: true})
		case info.Mode().IsRegular():
			entries = append(entries, buildEntry{rel: rel, abs: p, exec: info.Mode().Perm()&0o111 != 0})
		default:
			return fail(CodeBadHandlerManifest, nil, "%s is not a regular file (device, pipe or socket)", rel)
		}
		return nil
	})
	if err != nil {
		var ce interface{ Remedy() string }
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, fail(signing.CodeFileAccess, err, "read %s", o.Dir)
	}
	byName := map[string]buildEntry{}
	for _, e := range entries {
		byName[e.rel] = e
	}
	mfEntry, ok := byName[HandlerManifestName]
	if !ok {
		return nil, fail(CodeBadHandlerManifest, nil, "%s has no %s at its root", o.Dir, HandlerManifestName)
	}
	data, err := saferead.File(mfEntry.abs, maxHandlerManifest)
	if err != nil {
		return nil, fail(CodeBadHandlerManifest, err, "read %s", HandlerManifestName)
	}
	hm, err := ParseHandlerManifest(data)
	if err != nil {
		return nil, err
	}
	if err := hm.CheckCommandFiles(func(p string) (bool, bool) {
		e, ok := byName[p]
		return ok && !e.dir, e.exec
	}); err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b buildEntry) int { return cmp.Compare(a.rel, b.rel) })

	h := sha256.New()
	var size int64
	err = atomicfile.Write(out, atomicfile.WriteOptions{Mode: 0o644, Output: true}, func(w io.Writer) error {
		cw := &countWriter{w: io.MultiWriter(w, h)}
		zw := zip.NewWriter(cw)
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := addBuildEntry(zw, e); err != nil {
				return err
			}
		}
		if err := zw.Close(); err != nil {
			return err
		}
		size = cw.n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("write package %s: %w", out, err)
	}
	files := 0
	for _, e := range entries {
		if !e.dir {
			files++
		}
	}
	return &BuildResult{Path: out, SHA256: hex.EncodeToString(h.Sum(nil)), Size: size, Files: files}, nil
}

func addBuildEntry(zw *zip.Writer, e buildEntry) error {
	hdr := &zip.FileHeader{Name: e.rel, Modified: BuildEpoch}
	switch {
	case e.dir:
		hdr.Method = zip.Store
		hdr.SetMode(fs.ModeDir | 0o755)
	case e.exec:
		hdr.Method = zip.Deflate
		hdr.SetMode(0o755)
	default:
		hdr.Method = zip.Deflate
		hdr.SetMode(0o644)
	}
	w, err := zw.CreateHeader(hdr)
	if err != nil || e.dir {
		return err
	}
	// The walk saw a regular file; one swapped for a FIFO since is
	// refused, not blocked on.
	f, err := saferead.OpenFile(e.abs)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("add %s: %w", e.rel, err)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// SignPackage checks that the zip at path is an extension package (a valid
// HandlerManifest.json at its root whose commands name files of the zip)
// and only then signs it with signing.SignPackage.
func SignPackage(ctx context.Context, path string, p signing.Package, signer signature.Signer) ([]byte, *signing.Statement, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	if _, err := ReadPackageManifest(path); err != nil {
		return nil, nil, err
	}
	return signing.SignPackage(ctx, path, p, signer)
}
