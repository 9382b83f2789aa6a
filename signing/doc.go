// Package signing holds arcagent's extension-package supply chain: key
// generation and loading (ECDSA P-256 and Ed25519 PEM keys through
// sigstore's cryptoutils), reproducible package builds with
// HandlerManifest.json validation, DSSE envelopes whose payload is an
// in-toto Statement v1, the trust store of publisher keys, fail-closed
// streaming verification in the order of DESIGN.md §7, safe extraction with
// an install record for later tamper checks, and threshold-signed catalogs
// with rollback and freeze protection.
//
// Every error a caller may need to tell apart is a sentinel (ErrUntrustedSigner,
// ErrCatalogRollback, …) reachable with errors.Is, wrapped in an
// *errcode.Error that carries a stable code (ARC0100–ARC0199) and an exit
// status for the CLI.
package signing
