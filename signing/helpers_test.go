package signing

import (
	"archive/zip"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/arcagent/arcagent/internal/testutil"
	"github.com/sigstore/sigstore/pkg/signature"
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

var testPkg = Package{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0"}

type testKey struct {
	signer signature.Signer
	pubPEM []byte
}

func newTestKey(t testing.TB, alg Algorithm) testKey {
	t.Helper()
	kp, err := GenerateKey(alg, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSigner(kp.PrivatePEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{signer: s, pubPEM: kp.PublicPEM}
}

// trustOpts lets tests run unprivileged: t.TempDir is owned by the caller.
func trustOpts() []TrustOption {
	if os.Geteuid() == 0 {
		return nil
	}
	return []TrustOption{AllowNonRootOwner(nil)}
}

// fixture is a built and signed package with a trust store trusting its key.
type fixture struct {
	dir      string
	pkgPath  string
	envelope []byte
	key      testKey
	store    *TrustStore
	trustDir string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	// A package as package build makes it; signing signs any bytes, so the
	// zip is written directly (building belongs to agent/extensions).
	pkgPath := filepath.Join(root, testPkg.FileName())
	zipBytes := testutil.Zip(t, []testutil.ZipEntry{
		{Name: "HandlerManifest.json", Body: []byte(testManifest), Method: zip.Deflate},
		{Name: "bin/handler.sh", Mode: 0o755, Body: []byte("#!/bin/sh\necho \"$1\"\n"), Method: zip.Deflate},
	})
	if err := os.WriteFile(pkgPath, zipBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	key := newTestKey(t, AlgECDSAP256)
	env, _, err := SignPackage(ctx, pkgPath, testPkg, key.signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pkgPath+SignatureSuffix, env, 0o644); err != nil {
		t.Fatal(err)
	}
	trustDir := filepath.Join(root, "trust")
	if _, err := AddTrustedKey(ctx, trustDir, AddKeyOptions{Name: "contoso", PublicKeyPEM: key.pubPEM, Publishers: []string{"Contoso.Monitoring"}}, trustOpts()...); err != nil {
		t.Fatal(err)
	}
	store, err := LoadTrustStore(trustDir, trustOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{dir: root, pkgPath: pkgPath, envelope: env, key: key, store: store, trustDir: trustDir}
}
