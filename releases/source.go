// Package releases answers "is this version current, supported, or out of
// support?" for the agent and each extension (docs/releases.md).
//
// A Source lists the releases of a product: GitHubSource reads GitHub (or
// GitHub Enterprise) releases through go-github with an on-disk ETag cache
// and an offline mode; CatalogSource reads a signed catalog verified by
// package signing (threshold, rollback and freeze refused). Versions are
// compared with Masterminds/semver, four-part agent builds folded onto
// semver (ParseVersion). A Policy says which versions are current, behind
// or unsupported (Currency, the data of the audit's currency rules, which
// package audit/releasefacts turns into audit facts); and Check streams a
// fleet inventory (JSON or CSV) through the policy to the currency writers,
// which write through package reports (table, JSON, CSV, Markdown, SARIF,
// JUnit, HTML). This package does not import the audit engine.
package releases

import (
	"context"
	"strings"
	"time"
)

// AgentProduct is the product name of the agent itself. Extensions are
// named PUBLISHER.TYPE (e.g. "Contoso.Monitoring.StatusReporter"), as in
// package file names and catalogs.
const AgentProduct = "arcagent"

// Release is one published release of a product.
type Release struct {
	Version    string    `json:"version"`              // as published, e.g. "v1.2.0" or "1.28.02260.736"
	Published  time.Time `json:"published,omitzero"`   // zero when the source does not say
	Prerelease bool      `json:"prerelease,omitempty"` // marked pre-release by the source (or a semver pre-release)
	URL        string    `json:"url,omitempty"`        // where to download or read about it
}

// Source lists the releases of products.
type Source interface {
	// String names the source in messages, e.g. "GitHub api.github.com" or
	// "catalog releases.sig.json".
	String() string
	// Releases returns every non-draft release of product, pre-releases
	// included (marked). A product the source does not know yields an
	// error with code CodeUnknownProduct.
	Releases(ctx context.Context, product string) ([]Release, error)
}

// StaticSource is a Source over release lists at hand (tests, and callers
// that read releases from elsewhere). Err, when set, answers every product
// not in ByProduct; otherwise such a product is unknown.
type StaticSource struct {
	Name      string // "" is "static source"
	ByProduct map[string][]Release
	Err       error
}

// String names the source.
func (s *StaticSource) String() string {
	if s.Name == "" {
		return "static source"
	}
	return s.Name
}

// Releases returns the releases of product.
func (s *StaticSource) Releases(_ context.Context, product string) ([]Release, error) {
	if r, ok := s.ByProduct[product]; ok {
		return r, nil
	}
	if s.Err != nil {
		return nil, s.Err
	}
	return nil, newErr(CodeUnknownProduct, s.String(), nil, "no product %s", product)
}

// ProductName normalises a product name: an extension written
// PUBLISHER/TYPE (as audit facts name it) becomes PUBLISHER.TYPE.
func ProductName(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[:i] + "." + s[i+1:]
	}
	return s
}

// ExtensionProduct is the product name of an installed extension.
func ExtensionProduct(publisher, typ string) string {
	return strings.TrimSpace(publisher) + "." + strings.TrimSpace(typ)
}
