package releases

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/signing"
)

// testCatalog is a trust store with one catalog key, and a signer.
type testCatalog struct {
	trustDir string
	signer   signature.Signer
	store    *signing.TrustStore
}

func newTestCatalog(t testing.TB, name string) *testCatalog {
	t.Helper()
	kp, err := signing.GenerateKey(signing.AlgEd25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signing.ParseSigner(kp.PrivatePEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "trust")
	var opts []signing.TrustOption
	if os.Geteuid() != 0 {
		opts = append(opts, signing.AllowNonRootOwner(nil))
	}
	if _, err := signing.AddTrustedKey(context.Background(), dir, signing.AddKeyOptions{Name: "rel1", PublicKeyPEM: kp.PublicPEM, Catalogs: []string{name}}, opts...); err != nil {
		t.Fatal(err)
	}
	store, err := signing.LoadTrustStore(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &testCatalog{trustDir: dir, signer: s, store: store}
}

// write signs a catalog and writes it to a file in dir.
func (tc *testCatalog) write(t testing.TB, dir string, c *signing.Catalog) string {
	t.Helper()
	env, err := signing.SignCatalog(c, tc.signer)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, c.Name+".sig.json")
	if err := os.WriteFile(p, env, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (tc *testCatalog) options(loc, name string) CatalogOptions {
	return CatalogOptions{Location: loc, Name: name, Trust: tc.store, StateDir: tc.trustDir}
}

func catalogOf(version int64, expires time.Time) *signing.Catalog {
	pub := func(s string) *time.Time { d := day(s); return &d }
	return &signing.Catalog{Name: "releases", Version: version, Expires: expires, Entries: []signing.CatalogEntry{
		{Name: "arcagent", Version: "1.28.02260.736", Published: pub("2025-09-01")},
		{Name: "arcagent", Version: "1.29.02300.1", Published: pub("2026-02-01")},
		{Name: "arcagent", Version: "1.30.0.0-rc.1", Published: pub("2026-05-01"), Annotations: map[string]string{"prerelease": "true"}},
		{Name: "Contoso.Monitoring.StatusReporter", Version: "1.0.0", URL: "https://example.com/sr-1.0.0.zip"},
	}}
}

func TestCatalogSource(t *testing.T) {
	tc := newTestCatalog(t, "releases")
	dir := t.TempDir()
	future := time.Now().Add(30 * 24 * time.Hour)
	p := tc.write(t, dir, catalogOf(2, future))
	ctx := context.Background()
	s, err := OpenCatalog(ctx, tc.options(p, "releases"))
	if err != nil {
		t.Fatal(err)
	}
	rels, err := s.Releases(ctx, AgentProduct)
	if err != nil || len(rels) != 3 || !rels[2].Prerelease || rels[0].Published.IsZero() {
		t.Fatalf("agent releases %+v, %v", rels, err)
	}
	// Extension names written PUBLISHER/TYPE match too.
	if rels, err := s.Releases(ctx, ProductName("Contoso.Monitoring/StatusReporter")); err != nil || len(rels) != 1 || rels[0].URL == "" {
		t.Errorf("extension releases %+v, %v", rels, err)
	}
	_, err = s.Releases(ctx, "Contoso.Other.Thing")
	wantCode(t, err, CodeUnknownProduct, `catalog "releases" version 2 lists no releases of "Contoso.Other.Thing"`)
	if !errcode.Is(err, CodeUnknownProduct) {
		t.Errorf("not %s", CodeUnknownProduct)
	}

	// Rollback: an older version after version 2 was trusted is refused,
	// naming the source; the signing code and remedy come through.
	old := filepath.Join(t.TempDir(), "old")
	os.MkdirAll(old, 0o755)
	po := tc.write(t, old, catalogOf(1, future))
	_, err = OpenCatalog(ctx, tc.options(po, "releases"))
	wantCode(t, err, signing.CodeCatalogRollback, "catalog "+po)
	if !errors.Is(err, signing.CodeCatalogRollback) {
		t.Errorf("not a rollback: %v", err)
	}

	// Freeze: an expired catalog is refused.
	exp := filepath.Join(t.TempDir(), "exp")
	os.MkdirAll(exp, 0o755)
	pe := tc.write(t, exp, catalogOf(3, time.Now().Add(-time.Hour)))
	_, err = OpenCatalog(ctx, tc.options(pe, "releases"))
	wantCode(t, err, signing.CodeCatalogExpired, "catalog "+pe)
	if !errors.Is(err, signing.CodeCatalogExpired) {
		t.Errorf("not expired: %v", err)
	}

	// Another catalog than the one asked for; a missing file; no name.
	_, err = OpenCatalog(ctx, tc.options(p, "extensions"))
	if err == nil {
		t.Error("wrong catalog name accepted")
	}
	_, err = OpenCatalog(ctx, tc.options(filepath.Join(dir, "missing.json"), "releases"))
	wantCode(t, err, CodeNotFound, "missing.json")
	_, err = OpenCatalog(ctx, tc.options(p, ""))
	wantCode(t, err, CodeBadSource, "--catalog-name")
	_, err = OpenCatalog(ctx, tc.options("http://example.com/c.json", "releases"))
	wantCode(t, err, CodeBadSource, "https://")
}

func TestCatalogOverHTTPS(t *testing.T) {
	tc := newTestCatalog(t, "releases")
	env, err := signing.SignCatalog(catalogOf(5, time.Now().Add(time.Hour)), tc.signer)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/releases.sig.json" {
			http.NotFound(w, r)
			return
		}
		w.Write(env)
	}))
	defer srv.Close()
	o := tc.options(srv.URL+"/releases.sig.json", "releases")
	o.HTTPClient = srv.Client()
	s, err := OpenCatalog(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if s.Catalog().Version != 5 || s.String() != "catalog "+o.Location {
		t.Errorf("catalog %d %s", s.Catalog().Version, s)
	}
	o.Location = srv.URL + "/nope.json"
	_, err = OpenCatalog(context.Background(), o)
	wantCode(t, err, CodeNotFound, "404")
	o.HTTPClient = nil // untrusted test certificate: unreachable
	o.Location = srv.URL + "/releases.sig.json"
	_, err = OpenCatalog(context.Background(), o)
	wantCode(t, err, CodeUnreachable, "cannot fetch the catalog")
}
