package guestconfig

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/arcagent/arcagent/internal/testutil"
	"github.com/arcagent/arcagent/signing"
)

const pkgDoc = `apiVersion: arcagent.dev/guestconfig/v1
name: Marker
version: 1.2.0
parameters:
  - name: content
    default: ok
resources:
  - id: marker-file
    file:
      path: /etc/marker
      source: files/marker
  - id: marker-exec
    exec:
      validateFile: scripts/validate.sh
      enforce: exit 100
`

var testGCPkg = signing.Package{Publisher: "Contoso.Baseline", Type: "Marker", Version: "1.2.0"}

func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func pkgSource(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	writeTree(t, dir, map[string]string{
		DocumentFile:          pkgDoc,
		"files/marker":        "ok\n",
		"scripts/validate.sh": "exit 100\n",
		".git/config":         "skipped",
	})
	return dir
}

type gcKey struct {
	signer signature.Signer
	pub    []byte
}

func newGCKey(t testing.TB) gcKey {
	t.Helper()
	kp, err := signing.GenerateKey(signing.AlgECDSAP256, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signing.ParseSigner(kp.PrivatePEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	return gcKey{signer: s, pub: kp.PublicPEM}
}

func trustStore(t testing.TB, pub []byte, publishers ...string) *signing.TrustStore {
	t.Helper()
	var opts []signing.TrustOption
	if os.Geteuid() != 0 {
		opts = append(opts, signing.AllowNonRootOwner(nil))
	}
	dir := filepath.Join(t.TempDir(), "trust")
	if _, err := signing.AddTrustedKey(context.Background(), dir, signing.AddKeyOptions{Name: "k", PublicKeyPEM: pub, Publishers: publishers}, opts...); err != nil {
		t.Fatal(err)
	}
	s, err := signing.LoadTrustStore(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBuildPackageDeterministic(t *testing.T) {
	ctx := context.Background()
	src := pkgSource(t)
	out1, out2 := t.TempDir(), t.TempDir()
	r1, err := BuildPackage(ctx, BuildOptions{Dir: src, Publisher: testGCPkg.Publisher, OutDir: out1})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(r1.Path) != "Contoso.Baseline.Marker-1.2.0.zip" || r1.Files != 3 || r1.Resources != 2 {
		t.Fatalf("result %+v", r1)
	}
	// Touching the sources' times changes nothing.
	if err := os.Chtimes(filepath.Join(src, "files/marker"), time.Unix(1e9, 0), time.Unix(1e9, 0)); err != nil {
		t.Fatal(err)
	}
	r2, err := BuildPackage(ctx, BuildOptions{Dir: src, Publisher: testGCPkg.Publisher, OutDir: out2})
	if err != nil {
		t.Fatal(err)
	}
	if r1.SHA256 != r2.SHA256 {
		t.Fatal("two builds of the same tree differ")
	}
	b, _ := os.ReadFile(r1.Path)
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, " "); got != "files/marker guestconfig.yaml scripts/validate.sh" {
		t.Fatalf("entries %s", got)
	}
}

func TestBuildPackageRefuses(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		pub   string
		want  string
	}{
		{"no document", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, DocumentFile)) }, "Contoso", "read guestconfig.yaml"},
		{"bad publisher", func(t *testing.T, dir string) {}, "not a publisher!", "publisher"},
		{"symlink", func(t *testing.T, dir string) {
			if err := os.Symlink("/etc/shadow", filepath.Join(dir, "files/link")); err != nil {
				t.Fatal(err)
			}
		}, "Contoso", "symbolic link"},
		{"missing source", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "files/marker")) }, "Contoso", "not a file of the package"},
		{"required parameter", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{DocumentFile: strings.Replace(pkgDoc, "    default: ok\n", "", 1)})
		}, "Contoso", "--parameters"},
		{"bad document", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{DocumentFile: pkgDoc + "  - id: x\n    nosuch: {}\n"})
		}, "Contoso", "guestconfig.yaml:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := pkgSource(t)
			tc.setup(t, src)
			out := t.TempDir()
			_, err := BuildPackage(ctx, BuildOptions{Dir: src, Publisher: tc.pub, OutDir: out})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Fatalf("a refused build left %v", ents)
			}
		})
	}
}

// signedFixture builds the package and signs it with a key trusted for its
// publisher.
type signedFixture struct {
	path  string
	key   gcKey
	trust *signing.TrustStore
}

func newSignedFixture(t *testing.T) signedFixture {
	t.Helper()
	ctx := context.Background()
	res, err := BuildPackage(ctx, BuildOptions{Dir: pkgSource(t), Publisher: testGCPkg.Publisher, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	key := newGCKey(t)
	env, st, err := SignPackage(ctx, res.Path, testGCPkg, key.signer)
	if err != nil {
		t.Fatal(err)
	}
	if st.Kind() != signing.KindGuestConfig {
		t.Fatalf("signed as %s", st.Kind())
	}
	if err := os.WriteFile(res.Path+signing.SignatureSuffix, env, 0o644); err != nil {
		t.Fatal(err)
	}
	return signedFixture{path: res.Path, key: key, trust: trustStore(t, key.pub, testGCPkg.Publisher)}
}

func expectGC(p signing.Package) signing.Expectation {
	return signing.Expectation{Publisher: p.Publisher, Type: p.Type, Version: p.Version}
}

func TestLoadPackageEndToEnd(t *testing.T) {
	ctx := context.Background()
	f := newSignedFixture(t)
	p, err := LoadPackage(ctx, LoadOptions{Path: f.path, Trust: f.trust, Expect: expectGC(testGCPkg)})
	if err != nil {
		t.Fatal(err)
	}
	if p.Verified == nil || p.Doc.Name != "Marker" || string(p.Files["files/marker"]) != "ok\n" {
		t.Fatalf("loaded %+v", p)
	}
	c, err := p.Compile(nil)
	if err != nil {
		t.Fatalf("a verified package's exec resource did not compile: %v", err)
	}
	root := testRoot(t, nil, nil)
	env, err := NewEnv(root, EnvOptions{BackupDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	rep := Evaluate(ctx, env, c, EvalOptions{Mode: ApplyAndAutoCorrect})
	if rep.Compliance != Compliant {
		t.Fatalf("report %+v", rep)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/marker")); string(b) != "ok\n" {
		t.Fatalf("marker %q", b)
	}

	// The same bytes read without verification may not run scripts.
	data, _ := os.ReadFile(f.path)
	up, err := ReadPackage(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Compile(nil); err == nil || !strings.Contains(err.Error(), "signature verified") {
		t.Fatalf("unverified exec compiled: %v", err)
	}
}

// resign writes data as PKG (named after p) with an envelope of kind k by
// signer, bypassing SignPackage's checks, as an attacker or a mistake would.
func resign(t *testing.T, data []byte, k signing.Kind, p signing.Package, signer signature.Signer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), p.FileName())
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	env, _, err := signing.SignPackageKind(context.Background(), k, path, p, signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+signing.SignatureSuffix, env, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// bomb is a zip whose one entry inflates to n zero bytes.
func bomb(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(DocumentFile)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := 0; i < n; i += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLoadPackageRefuses(t *testing.T) {
	ctx := context.Background()
	f := newSignedFixture(t)
	good, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	other := newGCKey(t)
	v2 := testGCPkg
	v2.Version = "2.0.0"
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (string, *signing.TrustStore, signing.Expectation)
		want  string
	}{
		{"tampered byte", func(t *testing.T) (string, *signing.TrustStore, signing.Expectation) {
			b := bytes.Clone(good)
			b[len(b)/2] ^= 1
			path := filepath.Join(t.TempDir(), testGCPkg.FileName())
			os.WriteFile(path, b, 0o644)
			env, _ := os.ReadFile(f.path + signing.SignatureSuffix)
			os.WriteFile(path+signing.SignatureSuffix, env, 0o644)
			return path, f.trust, expectGC(testGCPkg)
		}, "sha256"},
		{"unsigned", func(t *testing.T) (string, *signing.TrustStore, signing.Expectation) {
			path := filepath.Join(t.TempDir(), testGCPkg.FileName())
			os.WriteFile(path, good, 0o644)
			return path, f.trust, expectGC(testGCPkg)
		}, "signature"},
		{"extension signature", func(t *testing.T) (string, *signing.TrustStore, signing.Expectation) {
			return resign(t, good, signing.KindExtension, testGCPkg, f.key.signer), f.trust, expectGC(testGCPkg)
		}, "not a guestconfig package"},
		{"untrusted key", func(t *testing.T) (string, *signing.TrustStore, signing.Expectation) {
			return resign(t, good, signing.KindGuestConfig, testGCPkg, other.signer), f.trust, expectGC(testGCPkg)
		}, "trusted"},
		{"key not allowed for the publisher", func(t *testing.T) (string, *signing.TrustStore, signing.Expectation) {
			return f.path, trustStore(t, f.key.pub, "Fabrikam.Baseline"), expectGC(testGCPkg)
		}, "Contoso.Baseline"},
		{"document and signature disagree", func(t *testing.T) (string, *signing.TrustStore, signing.Expectation) {
			return resign(t, good, signing.KindGuestConfig, v2, f.key.signer), f.trust, expectGC(v2)
		}, "is Marker 1.2.0, but it is signed as Contoso.Baseline.Marker-2.0.0"},
		{"symlink in the zip", func(t *testing.T) (string, *signing.TrustStore, signing.Expectation) {
			z := testutil.Zip(t, []testutil.ZipEntry{
				{Name: DocumentFile, Body: []byte(pkgDoc)},
				{Name: "files/marker", Mode: os.ModeSymlink | 0o777, Body: []byte("../guestconfig.yaml")},
			})
			return resign(t, z, signing.KindGuestConfig, testGCPkg, f.key.signer), f.trust, expectGC(testGCPkg)
		}, "symbolic link"},
		{"zip bomb", func(t *testing.T) (string, *signing.TrustStore, signing.Expectation) {
			return resign(t, bomb(t, 64<<20), signing.KindGuestConfig, testGCPkg, f.key.signer), f.trust, expectGC(testGCPkg)
		}, "archive refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, trust, expect := tc.setup(t)
			p, err := LoadPackage(ctx, LoadOptions{Path: path, Trust: trust, Expect: expect})
			if err == nil {
				t.Fatalf("loaded %+v", p)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSignPackageRefuses(t *testing.T) {
	ctx := context.Background()
	f := newSignedFixture(t)
	v2 := testGCPkg
	v2.Version = "2.0.0"
	if _, _, err := SignPackage(ctx, f.path, v2, f.key.signer); err == nil || !strings.Contains(err.Error(), "would be signed as") {
		t.Fatalf("mismatched name signed: %v", err)
	}
	ext := filepath.Join(t.TempDir(), "x.zip")
	os.WriteFile(ext, testutil.Zip(t, []testutil.ZipEntry{{Name: "HandlerManifest.json", Body: []byte("[]")}}), 0o644)
	if _, _, err := SignPackage(ctx, ext, testGCPkg, f.key.signer); err == nil || !strings.Contains(err.Error(), "not a configuration package") {
		t.Fatalf("an extension zip was signed as a configuration package: %v", err)
	}
}
