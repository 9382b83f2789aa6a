package releases

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/arcagent/arcagent/signing"
)

// maxCatalog bounds a catalog envelope.
const maxCatalog = 16 << 20

// CatalogOptions configure a CatalogSource.
type CatalogOptions struct {
	// Location is a file path or an https:// URL of the DSSE envelope.
	Location string
	// Name is the catalog name expected (trust entries list it with
	// `arcagent trust add … --catalog NAME`).
	Name string
	// Threshold is how many distinct trusted keys must have signed (default 1).
	Threshold int
	// Trust holds the keys; StateDir keeps the last trusted version (the
	// trust directory) for rollback protection.
	Trust    *signing.TrustStore
	StateDir string
	// Now is the clock (zero: time.Now()).
	Now time.Time
	// HTTPClient fetches an https:// location (nil: a client with a timeout).
	HTTPClient *http.Client
	// NoPersist verifies without recording the catalog's version (a dry run).
	NoPersist bool
}

// CatalogSource lists the releases of a signed catalog. The catalog is
// verified once, when opened: signatures (threshold), name, expiry (a
// frozen catalog is refused) and version (a rollback is refused).
type CatalogSource struct {
	name    string
	catalog *signing.Catalog
}

// OpenCatalog fetches and verifies a signed catalog.
func OpenCatalog(ctx context.Context, o CatalogOptions) (*CatalogSource, error) {
	where := "catalog " + o.Location
	if o.Location == "" {
		return nil, newErr(CodeBadSource, "catalog", nil, "no catalog location: use --catalog FILE or --catalog https://…")
	}
	if o.Name == "" {
		return nil, newErr(CodeBadSource, where, nil, "no catalog name: use --catalog-name NAME (the name its signing keys are trusted for)")
	}
	env, err := fetchCatalog(ctx, o)
	if err != nil {
		return nil, err
	}
	c, err := signing.VerifyCatalog(ctx, env, signing.CatalogOptions{Name: o.Name, Threshold: o.Threshold, Trust: o.Trust, StateDir: o.StateDir, Now: o.Now, NoPersist: o.NoPersist})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return &CatalogSource{name: where, catalog: c}, nil
}

func fetchCatalog(ctx context.Context, o CatalogOptions) ([]byte, error) {
	where := "catalog " + o.Location
	if strings.Contains(o.Location, "://") {
		u, err := url.Parse(o.Location)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, newErr(CodeBadSource, where, err, "a catalog URL must be https://")
		}
		hc := o.HTTPClient
		if hc == nil {
			hc = &http.Client{Timeout: 60 * time.Second}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.Location, nil)
		if err != nil {
			return nil, newErr(CodeBadSource, where, err, "bad catalog URL")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, newErr(CodeUnreachable, where, err, "cannot fetch the catalog")
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNotFound:
			return nil, newErr(CodeNotFound, where, nil, "not found (404): check the URL")
		case resp.StatusCode != http.StatusOK:
			return nil, newErr(CodeRefused, where, nil, "the server answered %s", resp.Status)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxCatalog+1))
		if err != nil {
			return nil, newErr(CodeUnreachable, where, err, "reading the catalog failed")
		}
		if len(data) > maxCatalog {
			return nil, newErr(CodeRefused, where, nil, "the catalog is larger than %d MiB", maxCatalog>>20)
		}
		return data, nil
	}
	f, err := os.Open(o.Location)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, newErr(CodeNotFound, where, nil, "no such file")
	}
	if err != nil {
		return nil, newErr(CodeBadSource, where, err, "cannot read the catalog")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCatalog+1))
	if err != nil || len(data) > maxCatalog {
		return nil, newErr(CodeBadSource, where, err, "cannot read the catalog (at most %d MiB)", maxCatalog>>20)
	}
	return data, nil
}

// String names the source: "catalog LOCATION".
func (s *CatalogSource) String() string { return s.name }

// Catalog is the verified catalog.
func (s *CatalogSource) Catalog() *signing.Catalog { return s.catalog }

// Releases returns the catalog entries of product. An entry is a
// pre-release when its version has a pre-release suffix or its annotation
// "prerelease" is "true".
func (s *CatalogSource) Releases(_ context.Context, product string) ([]Release, error) {
	var out []Release
	for _, e := range s.catalog.Entries {
		if ProductName(e.Name) != product {
			continue
		}
		r := Release{Version: e.Version, URL: e.URL, Prerelease: e.Annotations["prerelease"] == "true"}
		if e.Published != nil {
			r.Published = *e.Published
		}
		out = append(out, r)
	}
	if out == nil {
		return nil, newErr(CodeUnknownProduct, s.name, nil, "catalog %q version %d lists no releases of %q", s.catalog.Name, s.catalog.Version, product)
	}
	return out, nil
}
