package signing

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseEnvelope feeds untrusted envelope bytes through parsing and full
// envelope verification against a fixed trust store. It must never panic,
// and anything it accepts must be signed by the trusted key for an allowed
// publisher.
func FuzzParseEnvelope(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.envelope)
	f.Add(fx.envelope[:len(fx.envelope)/2])
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AAAA"}]}`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":[]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AAAA"}]} {}`))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		_, payload, err := ParseEnvelope(data, PayloadType)
		if err == nil {
			_, _ = ParseStatement(payload)
		} else if !errors.Is(err, ErrMalformedEnvelope) {
			t.Fatalf("unexpected error class: %v", err)
		}
		st, k, err := VerifyEnvelope(ctx, data, fx.store.Keys, Expectation{})
		if err == nil {
			if k.Name != "contoso" || !k.AllowsPublisher(st.Predicate.Publisher) {
				t.Fatalf("accepted a statement from %q for %q", k.Name, st.Predicate.Publisher)
			}
		}
	})
}

// FuzzParseStatement fuzzes the in-toto statement parser directly.
func FuzzParseStatement(f *testing.F) {
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"A.B-1.zip","digest":{"sha256":"` + strings.Repeat("a", 64) + `"}}],"predicateType":"https://arcagent.dev/extension-package/v1","predicate":{"publisher":"A","type":"B","version":"1","size":3}}`))
	f.Add([]byte(`{"_type":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseStatement(data)
		if err == nil && (len(st.Subject) != 1 || st.Subject[0].Name != st.Package().FileName() || len(st.SHA256()) != 64) {
			t.Fatalf("accepted an inconsistent statement: %+v", st)
		}
	})
}

// FuzzParseHandlerManifest fuzzes HandlerManifest.json parsing.
func FuzzParseHandlerManifest(f *testing.F) {
	f.Add([]byte(testManifest))
	for _, p := range []string{"../examples/extensions/status-reporter/HandlerManifest.json", "../examples/extensions/script-runner/HandlerManifest.json"} {
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
			if !errors.Is(err, ErrBadHandlerManifest) {
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
	f.Add(makeZip(f, []zipEntry{{name: "a/b.txt", body: []byte("hi")}, {name: "l", mode: 0o777 | os.ModeSymlink, body: []byte("a/b.txt")}}))
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
		} else if !errors.Is(err, ErrUnsafeArchive) && !strings.Contains(err.Error(), "create") {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}
