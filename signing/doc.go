// Package signing holds arcagent's signing primitives: key generation and
// loading (ECDSA P-256 and Ed25519 PEM keys through sigstore's
// cryptoutils), DSSE envelopes whose payload is an in-toto Statement v1,
// the trust store of publisher keys, fail-closed streaming verification in
// the order of docs/signing.md, and threshold-signed catalogs with rollback
// and freeze protection. Extension packages themselves (build, extraction,
// install records, HandlerManifest.json) live in agent/extensions.
//
// Every error is an *errcode.Error with a stable code (ARC0100–ARC0199)
// and an exit status for the CLI. Callers tell errors apart by their code,
// errcode.Is(err, CodeCatalogRollback), never by their text.
package signing
