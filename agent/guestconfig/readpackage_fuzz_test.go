package guestconfig

import (
	"context"
	"os"
	"testing"

	"github.com/arcagent/arcagent/internal/testutil"
)

// FuzzReadPackage feeds ReadPackage arbitrary bytes: it never panics, and
// what it accepts has a parsed document, bounded files, and compiles (or
// not) without panicking and without running exec resources unsigned.
func FuzzReadPackage(f *testing.F) {
	dir := f.TempDir()
	src := pkgSource(f)
	res, err := BuildPackage(context.Background(), BuildOptions{Dir: src, Publisher: "Contoso", OutDir: dir})
	if err != nil {
		f.Fatal(err)
	}
	built, err := os.ReadFile(res.Path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(built)
	f.Add(built[:len(built)/2])
	f.Add([]byte{})
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	f.Add(testutil.Zip(f, []testutil.ZipEntry{{Name: "other.yaml", Body: []byte(pkgDoc)}}))
	f.Add(testutil.Zip(f, []testutil.ZipEntry{{Name: DocumentFile, Body: []byte("apiVersion: [")}}))
	f.Add(testutil.Zip(f, []testutil.ZipEntry{{Name: "../" + DocumentFile, Body: []byte(pkgDoc)}}))
	f.Add(testutil.Zip(f, []testutil.ZipEntry{{Name: DocumentFile, Body: []byte(pkgDoc)}, {Name: DocumentFile, Body: []byte(pkgDoc)}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ReadPackage(context.Background(), data)
		if err != nil {
			return
		}
		if p.Doc == nil || p.Verified != nil {
			t.Fatalf("accepted without a document or marked verified: %+v", p)
		}
		if _, ok := p.Files[DocumentFile]; ok {
			t.Fatal("the document is also listed as a package file")
		}
		for name, b := range p.Files {
			if int64(len(b)) > packageLimits.MaxFileSize {
				t.Fatalf("%s holds %d bytes", name, len(b))
			}
		}
		c, err := p.Compile(nil)
		if err != nil {
			return
		}
		for _, r := range c.Resources {
			if _, ok := r.Resource.(*execResource); ok {
				t.Fatal("an exec resource compiled from an unverified package")
			}
		}
	})
}
