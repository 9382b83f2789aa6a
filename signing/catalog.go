package signing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/arcagent/arcagent/internal/atomicfile"
)

// CatalogPayloadType is the DSSE payload type of a signed catalog.
const CatalogPayloadType = "application/vnd.arcagent.catalog+json"

// Catalog is a signed list of releases (agent or extension versions).
type Catalog struct {
	Name    string         `json:"name"`    // which catalog ("agent", "extensions", …)
	Version int64          `json:"version"` // strictly increasing with every publication
	Expires time.Time      `json:"expires"` // refused after this instant (freeze protection)
	Entries []CatalogEntry `json:"entries"`
}

// CatalogEntry is one release in a catalog.
type CatalogEntry struct {
	Name        string            `json:"name"`    // e.g. "arcagent" or "Contoso.Monitoring.StatusReporter"
	Version     string            `json:"version"` // e.g. "1.2.0"
	URL         string            `json:"url,omitempty"`
	SHA256      string            `json:"sha256,omitempty"`
	Size        int64             `json:"size,omitempty"`
	Published   *time.Time        `json:"published,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ParseCatalog parses and checks a catalog document.
func ParseCatalog(data []byte) (*Catalog, error) {
	var c Catalog
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fail(CodeCatalogMalformed, err, "catalog is not valid JSON")
	}
	if dec.More() {
		return nil, fail(CodeCatalogMalformed, nil, "catalog has trailing data")
	}
	switch {
	case !catalogNameRE().MatchString(c.Name):
		return nil, fail(CodeCatalogMalformed, nil, "catalog name %q is not valid", c.Name)
	case c.Version <= 0:
		return nil, fail(CodeCatalogMalformed, nil, "catalog version must be a positive integer")
	case c.Expires.IsZero():
		return nil, fail(CodeCatalogMalformed, nil, "catalog has no expires time")
	}
	for i, e := range c.Entries {
		if e.Name == "" || e.Version == "" {
			return nil, fail(CodeCatalogMalformed, nil, "catalog entry %d has no name or version", i)
		}
		if e.SHA256 != "" {
			if b, err := hex.DecodeString(e.SHA256); err != nil || len(b) != 32 {
				return nil, fail(CodeCatalogMalformed, nil, "catalog entry %d (%s) has an invalid sha256", i, e.Name)
			}
		}
	}
	return &c, nil
}

// SignCatalog returns a DSSE envelope over c signed by every signer.
func SignCatalog(c *Catalog, signers ...signature.Signer) ([]byte, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if _, err := ParseCatalog(payload); err != nil {
		return nil, err
	}
	return signPayload(CatalogPayloadType, payload, signers...)
}

// CatalogOptions says how to verify a catalog.
type CatalogOptions struct {
	Name      string      // expected catalog name (required)
	Threshold int         // distinct trusted keys that must sign (default 1)
	Trust     *TrustStore // keys whose entry lists Name under catalogs
	StateDir  string      // where the last trusted version is kept (the trust directory)
	Now       time.Time   // zero: time.Now()
	// NoPersist verifies without recording the version (a dry run).
	NoPersist bool
}

// CatalogState is the last trusted version of a catalog, persisted in
// <StateDir>/catalog-<name>.state.json.
type CatalogState struct {
	Name       string    `json:"name"`
	Version    int64     `json:"version"`
	SHA256     string    `json:"sha256"` // of the catalog payload
	Expires    time.Time `json:"expires"`
	VerifiedAt time.Time `json:"verifiedAt"`
}

// CatalogStatePath is the state file of catalog name.
func CatalogStatePath(stateDir, name string) string {
	return filepath.Join(stateDir, "catalog-"+name+".state.json")
}

// LoadCatalogState returns the persisted state of catalog name, or nil.
// The file is read inside stateDir without following a link, without
// blocking on a FIFO and within the trust-file size limit.
func LoadCatalogState(stateDir, name string) (*CatalogState, error) {
	p := CatalogStatePath(stateDir, name)
	data, err := readInDir(stateDir, filepath.Base(p), maxTrustFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, trustErr(CodeTrustCorrupt, p, "cannot read catalog state: "+err.Error())
	}
	var st CatalogState
	if err := json.Unmarshal(data, &st); err != nil || st.Name != name {
		return nil, trustErr(CodeTrustCorrupt, p, "catalog state is corrupt; it must not be deleted to get past a rollback check")
	}
	return &st, nil
}

// VerifyCatalog verifies a catalog envelope: at least Threshold distinct
// keys trusted for the catalog signed it (keyids are hints, see signedBy),
// it is the catalog asked for, it has not expired (*ExpiredError), and its
// version is not lower than the last trusted one (*RollbackError). The
// version is then persisted atomically, under a lock.
func VerifyCatalog(ctx context.Context, envelope []byte, o CatalogOptions) (*Catalog, error) {
	if !catalogNameRE().MatchString(o.Name) {
		return nil, fail(CodeCatalogMalformed, nil, "catalog name %q is not valid", o.Name)
	}
	threshold := o.Threshold
	if threshold <= 0 {
		threshold = 1
	}
	env, payload, err := ParseEnvelope(envelope, CatalogPayloadType)
	if err != nil {
		return nil, err
	}
	var keys []*TrustedKey
	seen := map[string]bool{}
	if o.Trust != nil {
		for _, k := range o.Trust.ForCatalog(o.Name) {
			if !seen[k.KeyID] {
				seen[k.KeyID] = true
				keys = append(keys, k)
			}
		}
	}
	if len(keys) < threshold {
		return nil, fail(CodeCatalogThreshold, &ThresholdError{Catalog: o.Name, Threshold: threshold, Trusted: len(keys)}, "cannot verify the catalog")
	}
	// Count distinct trusted keys with a valid signature; keyids are hints
	// and are not looked at (see signedBy).
	valid := 0
	for _, k := range keys {
		if signedBy(env, payload, k) {
			valid++
		}
	}
	if valid < threshold {
		return nil, fail(CodeCatalogThreshold, &ThresholdError{Catalog: o.Name, Threshold: threshold, Valid: valid, Trusted: len(keys)}, "catalog refused")
	}
	c, err := ParseCatalog(payload)
	if err != nil {
		return nil, err
	}
	if c.Name != o.Name {
		return nil, fail(CodeCatalogMalformed, nil, "the signed catalog is %q, not the %q catalog asked for", c.Name, o.Name)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if !now.Before(c.Expires) {
		return nil, fail(CodeCatalogExpired, &ExpiredError{Catalog: c.Name, Version: c.Version, Expires: c.Expires, Now: now}, "catalog refused")
	}
	sum := sha256.Sum256(payload)
	digest := hex.EncodeToString(sum[:])
	if o.StateDir == "" {
		return nil, fmt.Errorf("no catalog state directory given: rollback protection needs one")
	}
	if err := os.MkdirAll(o.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", o.StateDir, err)
	}
	statePath := CatalogStatePath(o.StateDir, c.Name)
	lock, err := atomicfile.LockFile(ctx, statePath)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	prev, err := LoadCatalogState(o.StateDir, c.Name)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		if c.Version < prev.Version {
			return nil, fail(CodeCatalogRollback, &RollbackError{Catalog: c.Name, Trusted: prev.Version, Offered: c.Version}, "catalog refused")
		}
		if c.Version == prev.Version && digest != prev.SHA256 {
			return nil, fail(CodeCatalogRollback, &RollbackError{Catalog: c.Name, Trusted: prev.Version, Offered: c.Version, SameVersion: true}, "catalog refused")
		}
		if c.Version == prev.Version {
			return c, nil
		}
	}
	if o.NoPersist {
		return c, nil
	}
	st := CatalogState{Name: c.Name, Version: c.Version, SHA256: digest, Expires: c.Expires.UTC(), VerifiedAt: now.UTC().Truncate(time.Second)}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(statePath, append(data, '\n'), atomicfile.WriteOptions{Mode: 0o644, Owner: rootOwner}); err != nil {
		return nil, fmt.Errorf("record the trusted catalog version: %w", err)
	}
	return c, nil
}
