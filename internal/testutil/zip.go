package testutil

import (
	"archive/zip"
	"bytes"
	"os"
	"testing"
)

// ZipEntry is one entry of a hand-made archive. Mode 0 is 0644.
type ZipEntry struct {
	Name   string
	Mode   os.FileMode
	Body   []byte
	Method uint16 // zip.Store or zip.Deflate
}

// Zip builds an archive of entries in memory, for tests of package signing
// and extraction that need archives the builder would never make.
func Zip(t testing.TB, entries []ZipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.Name, Method: e.Method}
		if e.Mode == 0 {
			e.Mode = 0o644
		}
		h.SetMode(e.Mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
