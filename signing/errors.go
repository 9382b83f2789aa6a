package signing

import (
	"fmt"
	"time"

	"github.com/arcagent/arcagent/errcode"
)

// Error codes registered by this package. Never renumber them: scripts and
// the documentation in docs/signing.md depend on them.
const (
	CodeBadSignature        errcode.Code = "ARC0100" // no trusted key signed the envelope
	CodePublisherNotAllowed errcode.Code = "ARC0101" // the signing key may not sign for this publisher
	CodeStatementMismatch   errcode.Code = "ARC0102" // statement names another package than requested
	CodeDigestMismatch      errcode.Code = "ARC0103" // size or sha256 of the bytes differ from the subject
	CodeMalformedEnvelope   errcode.Code = "ARC0104" // envelope or statement cannot be parsed
	CodeTrustInsecure       errcode.Code = "ARC0106" // trust store writable by others or not owned by root
	CodeTrustCorrupt        errcode.Code = "ARC0107" // trust store cannot be read or parsed
	CodeTrustKeyUnknown     errcode.Code = "ARC0108" // no trust entry of that name / name taken
	CodeBadKey              errcode.Code = "ARC0109" // key file unreadable, wrong type or algorithm
	CodeKeyPassword         errcode.Code = "ARC0110" // encrypted key without (or with a wrong) passphrase
	CodeBadPackageName      errcode.Code = "ARC0112" // publisher, type or version not acceptable
	CodeCatalogRollback     errcode.Code = "ARC0113" // catalog older than the last trusted one
	CodeCatalogExpired      errcode.Code = "ARC0114" // catalog past its expiry (freeze)
	CodeCatalogThreshold    errcode.Code = "ARC0115" // too few trusted catalog signatures
	CodeCatalogMalformed    errcode.Code = "ARC0116" // catalog document invalid
	CodeNoTrustedKeys       errcode.Code = "ARC0120" // trust store empty for the purpose
	CodeFileAccess          errcode.Code = "ARC0121" // a named input file cannot be read
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeBadSignature, Exit: errcode.ExitFindings, Title: "signature not made by a trusted key",
			Remedy: "check that the package was signed with the publisher's key and that the key is trusted (`arcagent trust list`); add it with `arcagent trust add` only after checking its fingerprint with the publisher"},
		{Code: CodePublisherNotAllowed, Exit: errcode.ExitFindings, Title: "key not allowed for this publisher",
			Remedy: "a trusted key signed a package of a publisher it is not trusted for; if that is intended, re-add the key with `arcagent trust add NAME --key PUB --publisher P …` listing every publisher"},
		{Code: CodeStatementMismatch, Exit: errcode.ExitFindings, Title: "signed statement does not match the requested package",
			Remedy: "the signature is for another publisher, type, version or file name; fetch the package that was asked for, or correct --publisher/--type/--version"},
		{Code: CodeDigestMismatch, Exit: errcode.ExitFindings, Title: "package bytes differ from the signed digest",
			Remedy: "the file was changed or truncated after signing; download it again and do not install this copy"},
		{Code: CodeMalformedEnvelope, Exit: errcode.ExitFindings, Title: "signature envelope is malformed",
			Remedy: "the .sig.json file is not a DSSE envelope with an arcagent in-toto statement; fetch it again or re-sign with `arcagent package sign`"},
		{Code: CodeTrustInsecure, Exit: errcode.ExitFailed, Title: "trust store is not protected",
			Remedy: "make the trust directory and every file in it owned by root and not writable by group or others: `chown -R root:root DIR && chmod 0755 DIR && chmod 0644 DIR/*`"},
		{Code: CodeTrustCorrupt, Exit: errcode.ExitFailed, Title: "trust store cannot be read",
			Remedy: "run as root, or fix or remove the named file and add the key again with `arcagent trust add`"},
		{Code: CodeTrustKeyUnknown, Exit: errcode.ExitUsage, Title: "no such trust entry, or the name is taken",
			Remedy: "run `arcagent trust list` to see the entries; remove an entry first to replace it"},
		{Code: CodeBadKey, Exit: errcode.ExitUsage, Title: "key file not usable",
			Remedy: "give a PEM file made by `arcagent package keygen` (ECDSA P-256 or Ed25519): the .pub file to verify and trust, the .key file to sign"},
		{Code: CodeKeyPassword, Exit: errcode.ExitUsage, Title: "private key passphrase missing or wrong",
			Remedy: "set ARCAGENT_KEY_PASSWORD to the passphrase the key was generated with"},
		{Code: CodeBadPackageName, Exit: errcode.ExitUsage, Title: "invalid publisher, type or version",
			Remedy: "publisher: letters, digits and dots (Contoso.Monitoring); type: letters, digits and _ (StatusReporter); version: 1 to 4 dot-separated numbers (1.0.0)"},
		{Code: CodeCatalogRollback, Exit: errcode.ExitFindings, Title: "catalog rollback refused",
			Remedy: "the catalog is older than one already trusted; fetch the current catalog from its publisher. Never delete the catalog state to get past this"},
		{Code: CodeCatalogExpired, Exit: errcode.ExitFindings, Title: "catalog expired (freeze) refused",
			Remedy: "the catalog is past its expiry; the publisher must re-sign a fresh one, or your clock is wrong (check `date -u`)"},
		{Code: CodeCatalogThreshold, Exit: errcode.ExitFindings, Title: "catalog signature threshold not met",
			Remedy: "too few trusted catalog keys signed it; add the missing signatures, or trust the right keys with `arcagent trust add NAME --key PUB --catalog NAME`"},
		{Code: CodeCatalogMalformed, Exit: errcode.ExitFindings, Title: "catalog document invalid",
			Remedy: "the catalog is not a valid arcagent catalog (name, version, expires, entries); fetch it again"},
		{Code: CodeNoTrustedKeys, Exit: errcode.ExitFindings, Title: "no trusted key",
			Remedy: "add the publisher's public key with `arcagent trust add NAME --key PUB --publisher P`, or verify with --key PUB"},
		{Code: CodeFileAccess, Exit: errcode.ExitUsage, Title: "input file cannot be read",
			Remedy: "check the path and its permissions"},
	} {
		errcode.Register(i)
	}
}

// Error is the error type of this package: an *errcode.Error with a
// stable code, a message worded for the reader and an optional cause
// (one of the typed errors below when there is more to say). Callers match
// on the code: errcode.Is(err, CodeCatalogRollback) or
// errors.Is(err, CodeCatalogRollback). The CLI prints the code, the message
// and the code's remedy, and exits with the code's status.
type Error = errcode.Error

// fail builds the error this package returns: code c, an optional cause
// and a message.
func fail(c errcode.Code, cause error, format string, args ...any) error {
	return &errcode.Error{Code: c, Message: fmt.Sprintf(format, args...), Err: cause}
}

// RollbackError reports a catalog whose version is lower than the last
// trusted one (or equal to it with different content). It is the cause
// of an ARC0113 error.
type RollbackError struct {
	Catalog string
	Trusted int64 // last trusted version
	Offered int64 // version of the refused catalog
	// SameVersion is set when the versions are equal but the content differs.
	SameVersion bool
}

func (e *RollbackError) Error() string {
	if e.SameVersion {
		return fmt.Sprintf("catalog %q version %d was already trusted with different content", e.Catalog, e.Offered)
	}
	return fmt.Sprintf("catalog %q version %d is older than the last trusted version %d (rollback)", e.Catalog, e.Offered, e.Trusted)
}

// ExpiredError reports a catalog past its expiry (a freeze attack or a stale
// mirror). It is the cause of an ARC0114 error.
type ExpiredError struct {
	Catalog string
	Version int64
	Expires time.Time
	Now     time.Time
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("catalog %q version %d expired at %s (now %s): refusing a frozen catalog", e.Catalog, e.Version, e.Expires.UTC().Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339))
}

// ThresholdError reports a catalog signed by fewer trusted keys than required.
type ThresholdError struct {
	Catalog   string
	Threshold int
	Valid     int // distinct trusted keys with a valid signature
	Trusted   int // keys trusted for this catalog
}

func (e *ThresholdError) Error() string {
	return fmt.Sprintf("catalog %q has %d valid signature(s) from trusted keys, %d required (%d key(s) trusted for it)", e.Catalog, e.Valid, e.Threshold, e.Trusted)
}

// TrustError names the trust-store path that is insecure or corrupt.
type TrustError struct {
	Path   string
	Reason string
	Code   errcode.Code // CodeTrustInsecure or CodeTrustCorrupt
}

func (e *TrustError) Error() string { return fmt.Sprintf("%s: %s", e.Path, e.Reason) }
