package extensions

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/arcagent/arcagent/signing"
)

const testManifest = `[{
  "version": 1.0,
  "handlerManifest": {
    "installCommand": "bin/handler.sh install",
    "uninstallCommand": "bin/handler.sh uninstall",
    "updateCommand": "bin/handler.sh update",
    "enableCommand": "bin/handler.sh enable",
    "disableCommand": "bin/handler.sh disable",
    "rebootAfterInstall": false,
    "reportHeartbeat": false,
    "updateMode": "UpdateWithInstall"
  }
}]`

var testPkg = signing.Package{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0"}

type testKey struct {
	signer signature.Signer
	pubPEM []byte
}

func newTestKey(t testing.TB, alg signing.Algorithm) testKey {
	t.Helper()
	kp, err := signing.GenerateKey(alg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signing.ParseSigner(kp.PrivatePEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{signer: s, pubPEM: kp.PublicPEM}
}

// trustOpts lets tests run unprivileged: t.TempDir is owned by the caller.
func trustOpts() []signing.TrustOption {
	if os.Geteuid() == 0 {
		return nil
	}
	return []signing.TrustOption{signing.AllowNonRootOwner(nil)}
}

// writeExtension writes a minimal extension directory.
func writeExtension(t testing.TB, dir string) {
	t.Helper()
	files := map[string]struct {
		body string
		mode os.FileMode
	}{
		"HandlerManifest.json": {testManifest, 0o644},
		"bin/handler.sh":       {"#!/bin/sh\necho \"$1\"\n", 0o755},
		"README.txt":           {"status reporter\n", 0o600},
	}
	for name, f := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
}

// fixture is a built and signed package with a trust store trusting its key.
type fixture struct {
	dir      string
	pkgPath  string
	envelope []byte
	key      testKey
	store    *signing.TrustStore
	trustDir string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	src := filepath.Join(root, "src")
	writeExtension(t, src)
	out := filepath.Join(root, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := BuildPackage(ctx, BuildOptions{Dir: src, Package: testPkg, OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	key := newTestKey(t, signing.AlgECDSAP256)
	env, _, err := SignPackage(ctx, res.Path, testPkg, key.signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(res.Path+signing.SignatureSuffix, env, 0o644); err != nil {
		t.Fatal(err)
	}
	trustDir := filepath.Join(root, "trust")
	if _, err := signing.AddTrustedKey(ctx, trustDir, signing.AddKeyOptions{Name: "contoso", PublicKeyPEM: key.pubPEM, Publishers: []string{"Contoso.Monitoring"}}, trustOpts()...); err != nil {
		t.Fatal(err)
	}
	store, err := signing.LoadTrustStore(trustDir, trustOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{dir: root, pkgPath: res.Path, envelope: env, key: key, store: store, trustDir: trustDir}
}
