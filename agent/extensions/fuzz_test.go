package extensions

import (
	"bytes"
	"context"
	"errors"
	"github.com/arcagent/arcagent/internal/testutil"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseHandlerManifest fuzzes HandlerManifest.json parsing.
func FuzzParseHandlerManifest(f *testing.F) {
	f.Add([]byte(testManifest))
	for _, p := range []string{"../../examples/extensions/status-reporter/HandlerManifest.json", "../../examples/extensions/script-runner/HandlerManifest.json"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`[{"version":"1.0","handlerManifest":{}}]`))
	f.Add([]byte(`[{"version":1.0,"handlerManifest":null}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		hm, err := ParseHandlerManifest(data)
		if err != nil {
			if !errors.Is(err, CodeBadHandlerManifest) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		for name, c := range hm.Commands() {
			if strings.TrimSpace(c) == "" || strings.ContainsAny(c, "\n\r\x00") {
				t.Fatalf("accepted bad %s %q", name, c)
			}
		}
		_ = hm.CheckCommandFiles(func(string) (bool, bool) { return true, true })
	})
}

// FuzzExtract extracts arbitrary bytes as a zip with small limits. Whatever
// happens, nothing may appear outside the target directory and every link
// in it must resolve inside it.
func FuzzExtract(f *testing.F) {
	for name, data := range hostileCorpus(f) {
		if name == "zip-bomb" || name == "many-tiny-entries" {
			continue
		}
		f.Add(data)
	}
	f.Add(testutil.Zip(f, []testutil.ZipEntry{{Name: "a/b.txt", Body: []byte("hi")}, {Name: "l", Mode: 0o777 | os.ModeSymlink, Body: []byte("a/b.txt")}}))
	if fx := newFixture(f); fx != nil {
		if data, err := os.ReadFile(fx.pkgPath); err == nil {
			f.Add(data)
		}
	}
	lim := Limits{MaxEntries: 64, MaxFileSize: 1 << 20, MaxTotalSize: 2 << 20, MaxDepth: 8}
	f.Fuzz(func(t *testing.T, data []byte) {
		top := t.TempDir()
		dir := filepath.Join(top, "target")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		recs, err := ExtractReader(context.Background(), bytes.NewReader(data), int64(len(data)), dir, lim)
		ents, _ := os.ReadDir(top)
		if len(ents) != 1 || ents[0].Name() != "target" {
			t.Fatalf("wrote outside the target: %v", ents)
		}
		realDir, _ := filepath.EvalSymlinks(dir)
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, _ error) error {
			if d != nil && d.Type()&os.ModeSymlink != 0 {
				if r, err := filepath.EvalSymlinks(p); err == nil && r != realDir && !strings.HasPrefix(r, realDir+string(filepath.Separator)) {
					t.Fatalf("link %s resolves outside the tree to %s", p, r)
				}
			}
			if d != nil && d.Type()&(os.ModeDevice|os.ModeNamedPipe|os.ModeSocket|os.ModeSetuid|os.ModeSetgid) != 0 {
				t.Fatalf("special file %s extracted", p)
			}
			return nil
		})
		if err == nil {
			for _, r := range recs {
				if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(r.Path))); err != nil {
					t.Fatalf("recorded %s not on disk", r.Path)
				}
			}
		} else if !errors.Is(err, CodeUnsafeArchive) && !strings.Contains(err.Error(), "create") {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}
