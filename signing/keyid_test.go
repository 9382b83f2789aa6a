package signing

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// setKeyIDs rewrites the keyid hint of every signature of an envelope.
func setKeyIDs(t *testing.T, envelope []byte, keyid string) []byte {
	t.Helper()
	var env Envelope
	if err := json.Unmarshal(envelope, &env); err != nil {
		t.Fatal(err)
	}
	for i := range env.Signatures {
		env.Signatures[i].KeyID = keyid
	}
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKeyIDIsAHint: the keyid of a DSSE signature is an unauthenticated
// hint. A valid signature by a trusted key verifies whatever keyid it
// carries, and a keyid naming a trusted key never makes another key's
// signature acceptable.
func TestKeyIDIsAHint(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	other := newTestKey(t, AlgEd25519)
	otherPub, _, err := ParsePublicKey(other.pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	otherID, _ := KeyID(otherPub)
	var orig Envelope
	if err := json.Unmarshal(f.envelope, &orig); err != nil {
		t.Fatal(err)
	}
	expect := Expectation{Publisher: testPkg.Publisher, Type: testPkg.Type, Version: testPkg.Version}
	for _, tc := range []struct{ name, keyid string }{
		{"as signed", orig.Signatures[0].KeyID},
		{"no keyid", ""},
		{"keyid of another key", otherID},
		{"keyid of an SSH-style fingerprint of another key", "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"garbage keyid", "not-a-key-id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := setKeyIDs(t, f.envelope, tc.keyid)
			res, err := VerifyPackage(ctx, VerifyOptions{Package: f.pkgPath, Envelope: env, Trust: f.store, Expect: expect})
			if err != nil {
				t.Fatalf("valid signature with keyid %q refused: %v", tc.keyid, err)
			}
			if res.Signer != "contoso" {
				t.Fatalf("signer %q", res.Signer)
			}
		})
	}
	t.Run("keyid of the trusted key on an untrusted signature", func(t *testing.T) {
		env, _, err := SignPackage(ctx, f.pkgPath, testPkg, other.signer)
		if err != nil {
			t.Fatal(err)
		}
		env = setKeyIDs(t, env, orig.Signatures[0].KeyID)
		_, err = VerifyPackage(ctx, VerifyOptions{Package: f.pkgPath, Envelope: env, Trust: f.store, Expect: expect})
		if !errors.Is(err, CodeBadSignature) {
			t.Fatalf("err = %v, want the untrusted-signer error", err)
		}
	})
}

// TestCatalogKeyIDIsAHint: the same for catalogs, whose threshold counts
// distinct trusted keys with a valid signature, whatever their keyids say.
func TestCatalogKeyIDIsAHint(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	trustDir := filepath.Join(t.TempDir(), "trust")
	k0, k1 := newTestKey(t, AlgECDSAP256), newTestKey(t, AlgEd25519)
	for i, k := range []testKey{k0, k1} {
		if _, err := AddTrustedKey(ctx, trustDir, AddKeyOptions{Name: []string{"k0", "k1"}[i], PublicKeyPEM: k.pubPEM, Catalogs: []string{"extensions"}}, trustOpts()...); err != nil {
			t.Fatal(err)
		}
	}
	store, err := LoadTrustStore(trustDir, trustOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	c := &Catalog{Name: "extensions", Version: 1, Expires: now.Add(24 * time.Hour)}
	env, err := SignCatalog(c, k0.signer, k1.signer)
	if err != nil {
		t.Fatal(err)
	}
	for _, keyid := range []string{"", "someone-else"} {
		_, err := VerifyCatalog(ctx, setKeyIDs(t, env, keyid), CatalogOptions{Name: "extensions", Threshold: 2, Trust: store, StateDir: t.TempDir(), Now: now})
		if err != nil {
			t.Fatalf("keyid %q: %v", keyid, err)
		}
	}
	// Two signatures by one key are one signature, whatever their keyids.
	one, err := SignCatalog(c, k0.signer, k0.signer)
	if err != nil {
		t.Fatal(err)
	}
	var e Envelope
	json.Unmarshal(one, &e)
	e.Signatures[0].KeyID, e.Signatures[1].KeyID = "a", "b"
	one, _ = json.Marshal(e)
	if _, err := VerifyCatalog(ctx, one, CatalogOptions{Name: "extensions", Threshold: 2, Trust: store, StateDir: t.TempDir(), Now: now}); !errors.Is(err, CodeCatalogThreshold) {
		t.Fatalf("one key counted twice: err = %v", err)
	}
}
