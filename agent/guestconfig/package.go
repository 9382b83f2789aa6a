package guestconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/signing"
)

// DocumentFile is the configuration document at the root of every package.
const DocumentFile = "guestconfig.yaml"

// MaxPackage bounds a configuration package zip.
const MaxPackage = 16 << 20

// packageLimits bound the archive: configuration packages are small.
var packageLimits = extensions.Limits{MaxEntries: 1000, MaxFileSize: 4 << 20, MaxTotalSize: 32 << 20, MaxRatio: 200, RatioFloor: 1 << 20}

// Package is a loaded configuration package: its document, its other
// files, and (when it came through LoadPackage) what vouched for it.
type Package struct {
	Doc   *Document
	Files map[string][]byte
	// Verified is the signature verification; nil for a document that was
	// not loaded from a signed package (the built-in baseline, a local
	// file): such a document may not hold exec resources.
	Verified *signing.Result
}

// LoadOptions says which package to load and how to verify it.
type LoadOptions struct {
	// Path is the package zip; Envelope its DSSE envelope (nil: read
	// Path+".sig.json").
	Path     string
	Envelope []byte
	// Trust is the machine's trust store: the signer must be allowed for
	// the package's publisher.
	Trust *signing.TrustStore
	// Expect is what was assigned (publisher, name as Type, version); the
	// kind is always guestconfig.
	Expect signing.Expectation
}

func pkgErr(err error, format string, args ...any) error {
	return errcode.Wrap(CodePackage, err, format, args...)
}

// LoadPackage verifies a configuration package and reads it: the signature
// must verify against the trust store for the package's publisher and be a
// guest configuration signature (never an extension's), the bytes must
// match the signed digest and size, and the archive must pass the
// extraction rules. The document is parsed from exactly the bytes that
// were verified; its name and version must be the signed ones.
func LoadPackage(ctx context.Context, o LoadOptions) (*Package, error) {
	fi, err := os.Stat(o.Path)
	if err != nil {
		return nil, pkgErr(err, "read configuration package")
	}
	if !fi.Mode().IsRegular() || fi.Size() > MaxPackage {
		return nil, pkgErr(nil, "%s is not a regular file of at most %d bytes", o.Path, MaxPackage)
	}
	if o.Trust == nil {
		return nil, pkgErr(nil, "no trust store: a configuration package is only loaded after its signature verified")
	}
	o.Expect.Kind = signing.KindGuestConfig
	var buf bytes.Buffer
	res, err := signing.VerifyPackage(ctx, signing.VerifyOptions{Package: o.Path, Envelope: o.Envelope, Trust: o.Trust, Expect: o.Expect, Copy: &buf})
	if err != nil {
		return nil, pkgErr(err, "configuration package %s refused", fi.Name())
	}
	p, err := ReadPackage(ctx, buf.Bytes())
	if err != nil {
		return nil, err
	}
	if sp := res.Package; p.Doc.Name != sp.Type || p.Doc.Version != sp.Version {
		return nil, pkgErr(nil, "the package's %s is %s %s, but it is signed as %s", DocumentFile, p.Doc.Name, p.Doc.Version, sp.Name())
	}
	p.Verified = res
	return p, nil
}

// ReadPackage reads a configuration package zip from memory without
// verifying it (LoadPackage verifies first; `guestconfig check` and
// the tests read unsigned ones). The result's Verified is nil.
func ReadPackage(ctx context.Context, data []byte) (*Package, error) {
	files, err := extensions.ReadFiles(ctx, bytes.NewReader(data), int64(len(data)), packageLimits)
	if err != nil {
		return nil, pkgErr(err, "configuration package archive refused")
	}
	doc, ok := files[DocumentFile]
	if !ok {
		return nil, pkgErr(nil, "the package has no %s at its root: it is not a configuration package", DocumentFile)
	}
	d, err := Parse(DocumentFile, doc.Data)
	if err != nil {
		return nil, err
	}
	p := &Package{Doc: d, Files: map[string][]byte{}}
	for name, f := range files {
		if name != DocumentFile {
			p.Files[name] = f.Data
		}
	}
	return p, nil
}

// Compile compiles the package's document with an assignment's parameter
// values. Exec resources compile only when the package was verified.
func (p *Package) Compile(params map[string]string) (*Compiled, error) {
	if p == nil || p.Doc == nil {
		return nil, errors.New("no configuration document")
	}
	c, err := Compile(p.Doc, params, CompileContext{Signed: p.Verified != nil, Files: p.Files})
	if err != nil {
		return nil, fmt.Errorf("configuration %s %s: %w", p.Doc.Name, p.Doc.Version, err)
	}
	return c, nil
}
