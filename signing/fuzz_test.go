package signing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/arcagent/arcagent/errcode"
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
		} else if !errors.Is(err, CodeMalformedEnvelope) {
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

// catalogFuzzSetup is a trust store with two catalog keys, a state
// directory whose last trusted "extensions" catalog is version 5, and seed
// envelopes: valid, expired, rollback, same version with other content,
// bad signatures, an untrusted signer, another catalog's name, a keyid
// naming nobody, truncated.
func catalogFuzzSetup(f testing.TB) (store *TrustStore, stateDir string, now time.Time, seeds map[string][]byte) {
	ctx := context.Background()
	now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	trustDir := f.TempDir()
	k0, k1, untrusted := newTestKey(f, AlgECDSAP256), newTestKey(f, AlgEd25519), newTestKey(f, AlgECDSAP256)
	for i, k := range []testKey{k0, k1} {
		if _, err := AddTrustedKey(ctx, trustDir, AddKeyOptions{Name: []string{"k0", "k1"}[i], PublicKeyPEM: k.pubPEM, Catalogs: []string{"extensions"}}, trustOpts()...); err != nil {
			f.Fatal(err)
		}
	}
	store, err := LoadTrustStore(trustDir, trustOpts()...)
	if err != nil {
		f.Fatal(err)
	}
	sha := strings.Repeat("ab", 32)
	cat := func(name string, version int64, expires time.Time) *Catalog {
		return &Catalog{Name: name, Version: version, Expires: expires, Entries: []CatalogEntry{{Name: "Contoso.Monitoring.StatusReporter", Version: "1.0.0", SHA256: sha, Size: 1702}}}
	}
	sign := func(c *Catalog, keys ...testKey) []byte {
		var s []signature.Signer
		for _, k := range keys {
			s = append(s, k.signer)
		}
		env, err := SignCatalog(c, s...)
		if err != nil {
			f.Fatal(err)
		}
		return env
	}
	stateDir = f.TempDir()
	v5 := sign(cat("extensions", 5, now.Add(24*time.Hour)), k0)
	if _, err := VerifyCatalog(ctx, v5, CatalogOptions{Name: "extensions", Trust: store, StateDir: stateDir, Now: now}); err != nil {
		f.Fatal(err)
	}
	badSig := bytes.Clone(sign(cat("extensions", 6, now.Add(time.Hour)), k0))
	if i := bytes.Index(badSig, []byte(`"sig":"`)); i >= 0 {
		badSig[i+8] ^= 0x01
	}
	seeds = map[string][]byte{
		"valid":                 sign(cat("extensions", 6, now.Add(time.Hour)), k0, k1),
		"valid-same-version":    v5,
		"expired":               sign(cat("extensions", 7, now.Add(-time.Second)), k0),
		"rollback":              sign(cat("extensions", 2, now.Add(time.Hour)), k0),
		"same-version-other":    sign(cat("extensions", 5, now.Add(48*time.Hour)), k0),
		"bad-signature":         badSig,
		"untrusted-signer":      sign(cat("extensions", 8, now.Add(time.Hour)), untrusted),
		"other-catalog":         sign(cat("agent", 9, now.Add(time.Hour)), k0),
		"truncated":             v5[:len(v5)/2],
		"not-json":              []byte("catalog"),
		"empty-signatures":      []byte(`{"payloadType":"application/vnd.arcagent.catalog+json","payload":"e30=","signatures":[]}`),
		"payload-not-a-catalog": []byte(`{"payloadType":"application/vnd.arcagent.catalog+json","payload":"e30=","signatures":[{"sig":"AAAA"}]}`),
	}
	var e Envelope
	if err := json.Unmarshal(seeds["valid"], &e); err == nil {
		e.Signatures[0].KeyID = "nobody"
		seeds["keyid-of-nobody"], _ = json.Marshal(e)
	}
	return store, stateDir, now, seeds
}

// FuzzVerifyCatalog feeds downloaded catalog envelopes through the whole
// verification. It must never panic, never change the recorded state of a
// dry run, and accept only a catalog signed by a trusted catalog key, of
// the name asked for, not expired, and not older than the last trusted one.
func FuzzVerifyCatalog(f *testing.F) {
	store, stateDir, now, seeds := catalogFuzzSetup(f)
	for _, s := range seeds {
		f.Add(s)
	}
	before, err := LoadCatalogState(stateDir, "extensions")
	if err != nil || before == nil {
		f.Fatalf("state: %v", err)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := VerifyCatalog(ctx, data, CatalogOptions{Name: "extensions", Trust: store, StateDir: stateDir, Now: now, NoPersist: true})
		if after, _ := LoadCatalogState(stateDir, "extensions"); after == nil || *after != *before {
			t.Fatalf("a dry run changed the catalog state: %+v", after)
		}
		if err != nil {
			var ce *errcode.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		env, payload, perr := ParseEnvelope(data, CatalogPayloadType)
		if perr != nil {
			t.Fatalf("accepted an envelope that does not parse: %v", perr)
		}
		signed := false
		for _, k := range store.ForCatalog("extensions") {
			signed = signed || signedBy(env, payload, k)
		}
		switch {
		case !signed:
			t.Fatal("accepted a catalog no trusted key signed")
		case c.Name != "extensions":
			t.Fatalf("accepted catalog %q", c.Name)
		case !now.Before(c.Expires):
			t.Fatalf("accepted a catalog expired at %s", c.Expires)
		case c.Version < before.Version:
			t.Fatalf("accepted version %d after %d (rollback)", c.Version, before.Version)
		}
	})
}

// FuzzParseCatalog fuzzes the catalog document parser directly.
func FuzzParseCatalog(f *testing.F) {
	_, _, _, seeds := catalogFuzzSetup(f)
	for _, s := range seeds {
		if _, payload, err := ParseEnvelope(s, CatalogPayloadType); err == nil {
			f.Add(payload)
		}
	}
	f.Add([]byte(`{"name":"extensions","version":1,"expires":"2030-01-01T00:00:00Z","entries":[],"extra":1}`))
	f.Add([]byte(`{"name":"extensions","version":-1,"expires":"2030-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCatalog(data)
		if err != nil {
			return
		}
		if c.Version <= 0 || c.Expires.IsZero() || !catalogNameRE().MatchString(c.Name) {
			t.Fatalf("accepted an invalid catalog: %+v", c)
		}
		for _, e := range c.Entries {
			if e.Name == "" || e.Version == "" {
				t.Fatalf("accepted an entry without name or version: %+v", e)
			}
		}
	})
}

// TestCatalogFuzzSeeds checks that each seed of FuzzVerifyCatalog reaches
// the verdict it was made for, so the corpus covers every refusal.
func TestCatalogFuzzSeeds(t *testing.T) {
	store, stateDir, now, seeds := catalogFuzzSetup(t)
	want := map[string]error{
		"valid": nil, "valid-same-version": nil, "keyid-of-nobody": nil,
		"expired": CodeCatalogExpired, "rollback": CodeCatalogRollback, "same-version-other": CodeCatalogRollback,
		"bad-signature": CodeCatalogThreshold, "untrusted-signer": CodeCatalogThreshold, "other-catalog": CodeCatalogMalformed,
		"truncated": CodeMalformedEnvelope, "not-json": CodeMalformedEnvelope, "empty-signatures": CodeMalformedEnvelope,
		"payload-not-a-catalog": CodeCatalogThreshold,
	}
	if len(want) != len(seeds) {
		t.Fatalf("%d seeds, %d expectations", len(seeds), len(want))
	}
	for name, data := range seeds {
		_, err := VerifyCatalog(context.Background(), data, CatalogOptions{Name: "extensions", Trust: store, StateDir: stateDir, Now: now, NoPersist: true})
		if w := want[name]; (w == nil) != (err == nil) || (w != nil && !errors.Is(err, w)) {
			t.Errorf("seed %s: err = %v, want %v", name, err, w)
		}
	}
}
