package signing

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
)

func TestVerifyCatalog(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	type step struct {
		version   int64
		expires   time.Time
		signers   []int // indexes of keys that sign
		name      string
		threshold int
		wantErr   error
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"valid 2 of 3", []step{{version: 1, signers: []int{0, 1}, threshold: 2}}},
		{"valid 3 of 3", []step{{version: 1, signers: []int{0, 1, 2}, threshold: 3}}},
		{"newer accepted", []step{{version: 1, signers: []int{0}}, {version: 2, signers: []int{1}}}},
		{"same version re-fetched", []step{{version: 4, signers: []int{0}}, {version: 4, signers: []int{0}}}},
		{"rollback", []step{{version: 5, signers: []int{0}}, {version: 4, signers: []int{0}, wantErr: CodeCatalogRollback}}},
		{"same version other content", []step{{version: 5, signers: []int{0}}, {version: 5, signers: []int{0}, expires: now.Add(48 * time.Hour), wantErr: CodeCatalogRollback}}},
		{"freeze", []step{{version: 1, signers: []int{0}, expires: now.Add(-time.Second), wantErr: CodeCatalogExpired}}},
		{"threshold not met", []step{{version: 1, signers: []int{0}, threshold: 2, wantErr: CodeCatalogThreshold}}},
		{"threshold over trusted keys", []step{{version: 1, signers: []int{0, 1, 2}, threshold: 4, wantErr: CodeCatalogThreshold}}},
		{"signed by a key not trusted for catalogs", []step{{version: 1, signers: []int{3}, wantErr: CodeCatalogThreshold}}},
		{"other catalog name", []step{{version: 1, signers: []int{0}, name: "agent", wantErr: CodeCatalogMalformed}}},
		{"rollback after refused newer", []step{{version: 3, signers: []int{0}}, {version: 9, signers: []int{0}, expires: now.Add(-time.Hour), wantErr: CodeCatalogExpired}, {version: 2, signers: []int{0}, wantErr: CodeCatalogRollback}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			trustDir := filepath.Join(t.TempDir(), "trust")
			var keys []testKey
			for i := 0; i < 4; i++ {
				k := newTestKey(t, []Algorithm{AlgECDSAP256, AlgEd25519}[i%2])
				keys = append(keys, k)
				opts := AddKeyOptions{Name: "k" + string(rune('0'+i)), PublicKeyPEM: k.pubPEM, Catalogs: []string{"extensions"}}
				if i == 3 {
					opts.Catalogs, opts.Publishers = nil, []string{"Contoso"}
				}
				if _, err := AddTrustedKey(ctx, trustDir, opts, trustOpts()...); err != nil {
					t.Fatal(err)
				}
			}
			store, err := LoadTrustStore(trustDir, trustOpts()...)
			if err != nil {
				t.Fatal(err)
			}
			var last int64
			for i, s := range tc.steps {
				name := s.name
				if name == "" {
					name = "extensions"
				}
				exp := s.expires
				if exp.IsZero() {
					exp = now.Add(24 * time.Hour)
				}
				c := &Catalog{Name: name, Version: s.version, Expires: exp, Entries: []CatalogEntry{{Name: "Contoso.Monitoring.StatusReporter", Version: "1.0.0"}}}
				var signers []signature.Signer
				for _, idx := range s.signers {
					signers = append(signers, keys[idx].signer)
				}
				env, err := SignCatalog(c, signers...)
				if err != nil {
					t.Fatal(err)
				}
				got, err := VerifyCatalog(ctx, env, CatalogOptions{Name: "extensions", Threshold: s.threshold, Trust: store, StateDir: trustDir, Now: now})
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d: err = %v, want %v", i, err, s.wantErr)
				}
				if err == nil {
					if got.Version != s.version {
						t.Fatalf("step %d: version %d", i, got.Version)
					}
					last = s.version
				}
				st, err := LoadCatalogState(trustDir, "extensions")
				if err != nil {
					t.Fatal(err)
				}
				if last == 0 && st != nil || last != 0 && (st == nil || st.Version != last) {
					t.Fatalf("step %d: persisted state %+v, want version %d", i, st, last)
				}
			}
			// The trust store stays acceptable with the catalog state in it.
			if _, err := LoadTrustStore(trustDir, trustOpts()...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCatalogTypedErrors(t *testing.T) {
	// The typed errors are the causes of coded errors: errors.As finds
	// them, and the code says which class the error is.
	var re *RollbackError
	err := fail(CodeCatalogRollback, &RollbackError{Catalog: "x", Trusted: 5, Offered: 4}, "catalog refused")
	if !errors.As(err, &re) || re.Trusted != 5 || !errors.Is(err, CodeCatalogRollback) || errors.Is(err, CodeCatalogExpired) {
		t.Fatal("RollbackError does not match as documented")
	}
	var ee *ExpiredError
	err = fail(CodeCatalogExpired, &ExpiredError{Catalog: "x"}, "catalog refused")
	if !errors.As(err, &ee) || !errors.Is(err, CodeCatalogExpired) || errors.Is(err, CodeCatalogRollback) {
		t.Fatal("ExpiredError does not match as documented")
	}
}

func TestCatalogStateCorruptRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(CatalogStatePath(dir, "extensions"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCatalogState(dir, "extensions"); !errors.Is(err, CodeTrustCorrupt) {
		t.Fatalf("err = %v", err)
	}
}
