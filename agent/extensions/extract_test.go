package extensions

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/testutil"
)

// hostileCorpus returns archives that must all be refused.
func hostileCorpus(t testing.TB) map[string][]byte {
	t.Helper()
	body := []byte("pwned\n")
	link := func(name, target string) testutil.ZipEntry {
		return testutil.ZipEntry{Name: name, Mode: fs.ModeSymlink | 0o777, Body: []byte(target)}
	}
	c := map[string][]byte{
		"zip-slip":              testutil.Zip(t, []testutil.ZipEntry{{Name: "ok.txt", Body: body}, {Name: "../../evil.txt", Body: body}}),
		"zip-slip-nested":       testutil.Zip(t, []testutil.ZipEntry{{Name: "a/../../evil.txt", Body: body}}),
		"zip-slip-backslash":    testutil.Zip(t, []testutil.ZipEntry{{Name: `..\..\evil.txt`, Body: body}}),
		"absolute-path":         testutil.Zip(t, []testutil.ZipEntry{{Name: "/tmp/arcagent-hostile-evil.txt", Body: body}}),
		"windows-drive":         testutil.Zip(t, []testutil.ZipEntry{{Name: "C:/evil.txt", Body: body}}),
		"dot-component":         testutil.Zip(t, []testutil.ZipEntry{{Name: "./a/evil.txt", Body: body}}),
		"symlink-escape":        testutil.Zip(t, []testutil.ZipEntry{link("up", "../../../../etc")}),
		"symlink-absolute":      testutil.Zip(t, []testutil.ZipEntry{link("passwd", "/etc/passwd")}),
		"symlink-then-write":    testutil.Zip(t, []testutil.ZipEntry{{Name: "sub/", Mode: fs.ModeDir | 0o755}, link("ln", "sub"), {Name: "ln/evil.txt", Body: body}}),
		"write-through-outlink": testutil.Zip(t, []testutil.ZipEntry{link("ln", "/tmp"), {Name: "ln/arcagent-hostile-evil.txt", Body: body}}),
		"symlink-chain":         testutil.Zip(t, []testutil.ZipEntry{link("l2", "."), link("l1", "l2/..")}),
		"symlink-deep-chain":    testutil.Zip(t, []testutil.ZipEntry{{Name: "a/b/", Mode: fs.ModeDir | 0o755}, link("a/b/c", "../.."), link("x", "a/b/c/..")}),
		"char-device":           testutil.Zip(t, []testutil.ZipEntry{{Name: "null", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666}}),
		"block-device":          testutil.Zip(t, []testutil.ZipEntry{{Name: "sda", Mode: fs.ModeDevice | 0o660}}),
		"named-pipe":            testutil.Zip(t, []testutil.ZipEntry{{Name: "fifo", Mode: fs.ModeNamedPipe | 0o644}}),
		"socket":                testutil.Zip(t, []testutil.ZipEntry{{Name: "sock", Mode: fs.ModeSocket | 0o644}}),
		"duplicate":             testutil.Zip(t, []testutil.ZipEntry{{Name: "a.txt", Body: body}, {Name: "a.txt", Body: body}}),
		"case-duplicate":        testutil.Zip(t, []testutil.ZipEntry{{Name: "A.txt", Body: body}, {Name: "a.txt", Body: body}}),
		"file-then-dir":         testutil.Zip(t, []testutil.ZipEntry{{Name: "a", Body: body}, {Name: "a/b.txt", Body: body}}),
		"nul-in-name":           testutil.Zip(t, []testutil.ZipEntry{{Name: "a\x00.txt", Body: body}}),
		"not-a-zip":             []byte("PK\x03\x04 this is not a zip archive at all"),
		"zip-bomb":              zipBomb(t, 16<<20),
		"lying-size":            lyingSize(t),
		"encrypted":             encryptedEntry(t),
		"many-tiny-entries":     manyEntries(t, 100_000),
	}
	c["overlapping-entries"], _ = overlappingZip(t, 50, 64<<10)
	return c
}

func zipBomb(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "zeros", Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := 0; i < n/len(chunk); i++ {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lyingSize declares 100 bytes for an entry that inflates to 4 MiB.
func lyingSize(t testing.TB) []byte {
	t.Helper()
	data := make([]byte, 4<<20)
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	fw.Write(data)
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "small.txt", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(data), CompressedSize64: uint64(comp.Len()), UncompressedSize64: 100}
	w, err := zw.CreateRaw(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(comp.Bytes())
	zw.Close()
	return buf.Bytes()
}

func encryptedEntry(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "secret.txt", Method: zip.Store, Flags: 0x1, CompressedSize64: 4, UncompressedSize64: 4, CRC32: crc32.ChecksumIEEE([]byte("abcd"))}
	w, err := zw.CreateRaw(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("abcd"))
	zw.Close()
	return buf.Bytes()
}

func manyEntries(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < n; i++ {
		if _, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("f/%06d", i), Method: zip.Store}); err != nil {
			t.Fatal(err)
		}
	}
	zw.Close()
	return buf.Bytes()
}

// listTree returns every path under dir, relative and sorted.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestExtractRefusesHostileArchives(t *testing.T) {
	ctx := context.Background()
	outside := []string{"/tmp/arcagent-hostile-evil.txt", "/etc/arcagent-hostile-evil.txt"}
	for name, data := range hostileCorpus(t) {
		t.Run(name, func(t *testing.T) {
			work := filepath.Join(t.TempDir(), "a", "b", "work")
			if err := os.MkdirAll(work, 0o755); err != nil {
				t.Fatal(err)
			}
			zipPath := filepath.Join(work, "pkg.zip")
			if err := os.WriteFile(zipPath, data, 0o644); err != nil {
				t.Fatal(err)
			}
			top := filepath.Dir(filepath.Dir(work))
			before := listTree(t, top)
			dest := filepath.Join(work, "target")
			_, err := Extract(ctx, zipPath, dest, Limits{})
			if !errors.Is(err, CodeUnsafeArchive) {
				t.Fatalf("err = %v, want CodeUnsafeArchive", err)
			}
			t.Logf("refused: %v", err)
			if after := listTree(t, top); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("tree changed:\nbefore %v\nafter  %v", before, after)
			}
			for _, p := range outside {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("%s was written", p)
				}
			}
		})
	}
}

func TestExtractLimits(t *testing.T) {
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<12) // 64 KiB, compresses well
	tests := []struct {
		name string
		lim  Limits
		ents []testutil.ZipEntry
		ok   bool
	}{
		{"within limits", Limits{MaxEntries: 3, MaxFileSize: 64 << 10, MaxTotalSize: 128 << 10}, []testutil.ZipEntry{{Name: "a", Body: big, Method: zip.Deflate}, {Name: "b", Body: big}}, true},
		{"too many entries", Limits{MaxEntries: 1}, []testutil.ZipEntry{{Name: "a"}, {Name: "b"}}, false},
		{"file over per-file limit", Limits{MaxFileSize: 1000}, []testutil.ZipEntry{{Name: "a", Body: big}}, false},
		{"total over limit", Limits{MaxTotalSize: 100 << 10}, []testutil.ZipEntry{{Name: "a", Body: big}, {Name: "b", Body: big}}, false},
		{"ratio over limit", Limits{MaxRatio: 10, RatioFloor: 1 << 10}, []testutil.ZipEntry{{Name: "a", Body: big, Method: zip.Deflate}}, false},
		{"deep path", Limits{MaxDepth: 3}, []testutil.ZipEntry{{Name: "a/b/c/d"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := testutil.Zip(t, tc.ents)
			dir := t.TempDir()
			_, err := ExtractReader(ctx, bytes.NewReader(data), int64(len(data)), dir, tc.lim)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok && !errors.Is(err, CodeUnsafeArchive) {
				t.Fatalf("err = %v, want CodeUnsafeArchive", err)
			}
		})
	}
}

func TestExtractKeepsOnlyExecBitAndInTreeLinks(t *testing.T) {
	data := testutil.Zip(t, []testutil.ZipEntry{
		{Name: "bin/", Mode: fs.ModeDir | 0o777},
		{Name: "bin/run.sh", Mode: fs.ModeSetuid | 0o777, Body: []byte("#!/bin/sh\n")},
		{Name: "data/conf.txt", Mode: 0o666, Body: []byte("x")},
		{Name: "current", Mode: fs.ModeSymlink | 0o777, Body: []byte("data")},
		{Name: "bin/conf", Mode: fs.ModeSymlink | 0o777, Body: []byte("../data/conf.txt")},
		{Name: "top", Mode: fs.ModeSymlink | 0o777, Body: []byte("..")},
	})
	_ = data
	// "top" points at the tree's parent: it must be refused on its own.
	if _, err := ExtractReader(context.Background(), bytes.NewReader(data), int64(len(data)), t.TempDir(), Limits{}); !errors.Is(err, CodeUnsafeArchive) {
		t.Fatalf("link to .. accepted: %v", err)
	}
	data = testutil.Zip(t, []testutil.ZipEntry{
		{Name: "bin/", Mode: fs.ModeDir | 0o777},
		{Name: "bin/run.sh", Mode: fs.ModeSetuid | 0o777, Body: []byte("#!/bin/sh\n")},
		{Name: "data/conf.txt", Mode: 0o666, Body: []byte("x")},
		{Name: "current", Mode: fs.ModeSymlink | 0o777, Body: []byte("data")},
		{Name: "bin/conf", Mode: fs.ModeSymlink | 0o777, Body: []byte("../data/conf.txt")},
	})
	dest := filepath.Join(t.TempDir(), "x")
	zp := dest + ".zip"
	if err := os.WriteFile(zp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	recs, err := Extract(context.Background(), zp, dest, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]fs.FileMode{}
	for _, p := range []string{"bin", "bin/run.sh", "data", "data/conf.txt", "current", "bin/conf"} {
		fi, err := os.Lstat(filepath.Join(dest, p))
		if err != nil {
			t.Fatal(err)
		}
		modes[p] = fi.Mode()
	}
	want := map[string]fs.FileMode{"bin": fs.ModeDir | 0o755, "bin/run.sh": 0o755, "data": fs.ModeDir | 0o755, "data/conf.txt": 0o644}
	for p, m := range want {
		if modes[p] != m {
			t.Errorf("%s mode %v, want %v", p, modes[p], m)
		}
	}
	if modes["current"]&fs.ModeSymlink == 0 || modes["bin/conf"]&fs.ModeSymlink == 0 {
		t.Error("in-tree links not created")
	}
	var paths []string
	for _, r := range recs {
		paths = append(paths, r.Path+":"+r.Type)
	}
	if got := fmt.Sprint(paths); got != "[bin:dir bin/conf:symlink bin/run.sh:file current:symlink data:dir data/conf.txt:file]" {
		t.Fatalf("records %s", got)
	}
}

func TestExtractRefusesExistingDest(t *testing.T) {
	dir := t.TempDir()
	zp := filepath.Join(dir, "p.zip")
	os.WriteFile(zp, testutil.Zip(t, []testutil.ZipEntry{{Name: "a"}}), 0o644)
	if _, err := Extract(context.Background(), zp, dir, Limits{}); !errors.Is(err, CodeAlreadyInstalled) {
		t.Fatalf("err = %v", err)
	}
}

// overlappingZip builds by hand an archive whose n central-directory
// entries all point at one local header and one deflate stream of size
// bytes: each entry alone has a modest ratio, but the archive expands to
// n*size bytes from one stream (the overlapping-entry zip bomb).
func overlappingZip(t testing.TB, n, size int) (archive []byte, entryRatio int64) {
	t.Helper()
	data := make([]byte, size)
	r := uint32(1)
	for i := range data {
		r = r*1103515245 + 12345
		if i%32 == 0 {
			data[i] = byte(r >> 16) // a random byte every 32: ratio well under 200:1
		}
	}
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	fw.Write(data)
	fw.Close()
	crc := crc32.ChecksumIEEE(data)
	le := binary.LittleEndian
	var buf bytes.Buffer
	w := func(v any) { binary.Write(&buf, le, v) }
	// One local header and its data at offset 0.
	w(uint32(0x04034b50))
	w(uint16(20))
	w(uint16(0))
	w(uint16(8))
	w(uint16(0))
	w(uint16(0x21))
	w(crc)
	w(uint32(comp.Len()))
	w(uint32(size))
	w(uint16(1))
	w(uint16(0))
	buf.WriteString("a")
	buf.Write(comp.Bytes())
	cdStart := buf.Len()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%04d", i)
		w(uint32(0x02014b50))
		w(uint16(0x031e))
		w(uint16(20))
		w(uint16(0))
		w(uint16(8))
		w(uint16(0))
		w(uint16(0x21))
		w(crc)
		w(uint32(comp.Len()))
		w(uint32(size))
		w(uint16(len(name)))
		w(uint16(0))
		w(uint16(0))
		w(uint16(0))
		w(uint16(0))
		w(uint32(0o100644 << 16))
		w(uint32(0)) // every entry's local header is the one at offset 0
		buf.WriteString(name)
	}
	cdSize := buf.Len() - cdStart
	w(uint32(0x06054b50))
	w(uint16(0))
	w(uint16(0))
	w(uint16(n))
	w(uint16(n))
	w(uint32(cdSize))
	w(uint32(cdStart))
	w(uint16(0))
	return buf.Bytes(), int64(size / comp.Len())
}

func TestExtractRefusesOverlappingEntries(t *testing.T) {
	const n, size = 600, 900 << 10
	archive, ratio := overlappingZip(t, n, size)
	lim := DefaultLimits()
	if ratio >= lim.MaxRatio {
		t.Fatalf("test archive: entry ratio %d:1 is not under the limit; the test would not isolate the overlap", ratio)
	}
	if int64(n*size) > lim.MaxTotalSize {
		t.Fatal("test archive: total over the limit; the test would not isolate the overlap")
	}
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil || len(zr.File) != n {
		t.Fatalf("the hand-made archive does not parse as %d entries: %v", n, err)
	}
	dir := t.TempDir()
	_, err = ExtractReader(context.Background(), bytes.NewReader(archive), int64(len(archive)), dir, lim)
	var ce *errcode.Error
	if !errors.As(err, &ce) || ce.Code != CodeUnsafeArchive || !strings.Contains(err.Error(), "overlap") {
		t.Fatalf("%d KB archive expanding to %d MB: err = %v, want ARC0105 naming the overlap", len(archive)>>10, n*size>>20, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("wrote %d entries before refusing", len(ents))
	}
}

// TestExtractRefusesEntryPastEnd: an entry whose declared compressed size
// runs past the end of the file would make the archive look less compressed
// than it is on disk; it is refused.
func TestExtractRefusesEntryPastEnd(t *testing.T) {
	archive, _ := overlappingZip(t, 1, 64<<10)
	// Declare a compressed size far larger than the file in the central
	// directory (offset 20 of the record that follows the local entry).
	cd := bytes.LastIndex(archive, []byte("PK\x01\x02"))
	binary.LittleEndian.PutUint32(archive[cd+20:], 1<<30)
	_, err := ExtractReader(context.Background(), bytes.NewReader(archive), int64(len(archive)), t.TempDir(), DefaultLimits())
	if !errors.Is(err, CodeUnsafeArchive) {
		t.Fatalf("err = %v, want an unsafe archive", err)
	}
}
