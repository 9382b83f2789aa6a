package extensions

import (
	"archive/zip"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// changingReader serves an archive whose link target reads "ok" while the
// extractor plans (its first two reads of those bytes) and ".." afterwards,
// as a file changed under the extractor would.
type changingReader struct {
	b     []byte
	off   int64 // offset of the link target bytes
	reads atomic.Int32
}

func (f *changingReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(f.b)) {
		return 0, os.ErrClosed
	}
	n := copy(p, f.b[off:])
	if off <= f.off && f.off < off+int64(n) && f.reads.Add(1) > 2 {
		copy(p[f.off-off:], "..")
	}
	if n < len(p) {
		return n, os.ErrClosed
	}
	return n, nil
}

// The link is made from the target checked during planning: a second read
// of the archive can never smuggle in a target that leaves the tree.
func TestLinkTargetIsReadOnce(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "l", Method: zip.Store}
	h.SetMode(fs.ModeSymlink | 0o777)
	// CRC32 0 makes archive/zip skip the checksum, so a change goes unseen.
	w, err := zw.CreateRaw(&zip.FileHeader{Name: h.Name, Method: zip.Store, ExternalAttrs: h.ExternalAttrs, CreatorVersion: h.CreatorVersion,
		CompressedSize64: 2, UncompressedSize64: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("ok"))
	w2, _ := zw.Create("ok")
	_, _ = w2.Write([]byte("x"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	off := int64(bytes.Index(b, []byte("lok")) + 1)
	if off <= 0 {
		t.Fatal("no link data in the archive")
	}
	tree := filepath.Join(t.TempDir(), "tree")
	if err := os.Mkdir(tree, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := ExtractReader(context.Background(), &changingReader{b: b, off: off}, int64(len(b)), tree, Limits{}); err != nil {
		// Refusing the archive is safe too; what must never happen is a
		// link to anything but the target that was checked.
		t.Logf("extraction refused: %v", err)
		if _, err := os.Lstat(filepath.Join(tree, "l")); err == nil {
			t.Error("a refused extraction left the link behind")
		}
		return
	}
	tgt, err := os.Readlink(filepath.Join(tree, "l"))
	if err != nil || tgt != "ok" {
		t.Errorf("link l -> %q (%v), but the checked target was \"ok\"", tgt, err)
	}
}
