package signing

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// In-toto and DSSE identifiers used by package signatures.
const (
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// StatementType is the in-toto Statement v1 type URI.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateType identifies arcagent's extension-package predicate.
	PredicateType = "https://arcagent.dev/extension-package/v1"
	// GuestConfigPredicateType identifies a guest configuration package's
	// predicate: the same fields, another type, so that a signature over an
	// extension can never be presented as one over a configuration package
	// (or the other way round).
	GuestConfigPredicateType = "https://arcagent.dev/guestconfig-package/v1"
)

// Kind is what a signed package is: an extension or a guest configuration
// package. It is bound into the signature through the predicate type.
type Kind string

// The two kinds of signed package.
const (
	KindExtension   Kind = "extension"
	KindGuestConfig Kind = "guestconfig"
)

// ParseKind accepts "extension" and "guestconfig" ("" is extension).
func ParseKind(s string) (Kind, error) {
	switch Kind(s) {
	case "", KindExtension:
		return KindExtension, nil
	case KindGuestConfig:
		return KindGuestConfig, nil
	}
	return "", fail(CodeBadPackageName, nil, "package kind %q: use extension or guestconfig", s)
}

func (k Kind) predicateType() string {
	if k == KindGuestConfig {
		return GuestConfigPredicateType
	}
	return PredicateType
}

// Limits on untrusted signature input.
const (
	maxEnvelopeSize = 1 << 20
	maxSignatures   = 32
)

// Package identifies an extension package: publisher, type and version.
type Package struct {
	Publisher string `json:"publisher"`
	Type      string `json:"type"`
	Version   string `json:"version"`
}

var (
	publisherRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9]+(\.[A-Za-z0-9]+)*$`) })
	typeRE      = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_]+$`) })
	versionRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{1,9}){0,3}$`) })
)

// Validate checks the three parts. Publishers are dot-separated words
// (Contoso.Monitoring), types are one word (StatusReporter), versions are
// one to four dot-separated numbers (1.0.0): so "<P>.<T>-<V>" is unambiguous.
func (p Package) Validate() error {
	switch {
	case len(p.Publisher) > 128 || !publisherRE().MatchString(p.Publisher):
		return fail(CodeBadPackageName, nil, "publisher %q: use letters and digits separated by dots", p.Publisher)
	case len(p.Type) > 64 || !typeRE().MatchString(p.Type):
		return fail(CodeBadPackageName, nil, "type %q: use letters, digits and _", p.Type)
	case !versionRE().MatchString(p.Version):
		return fail(CodeBadPackageName, nil, "version %q: use 1 to 4 dot-separated numbers", p.Version)
	}
	return nil
}

// Name is "<Publisher>.<Type>-<Version>", the install directory name.
func (p Package) Name() string { return p.Publisher + "." + p.Type + "-" + p.Version }

// FileName is "<Publisher>.<Type>-<Version>.zip".
func (p Package) FileName() string { return p.Name() + ".zip" }

func (p Package) String() string { return p.Name() }

// Statement is an in-toto Statement v1 about one package file.
type Statement struct {
	Type          string    `json:"_type"`
	Subject       []Subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     Predicate `json:"predicate"`
}

// Subject is an in-toto ResourceDescriptor: the package file name and digest.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Predicate is arcagent's extension-package predicate.
type Predicate struct {
	Publisher string `json:"publisher"`
	Type      string `json:"type"`
	Version   string `json:"version"`
	// Size is the package size in bytes, checked before hashing.
	Size int64 `json:"size"`
}

// Package returns the publisher, type and version the statement is about.
func (s *Statement) Package() Package {
	return Package{Publisher: s.Predicate.Publisher, Type: s.Predicate.Type, Version: s.Predicate.Version}
}

// SHA256 returns the subject's hex sha256 digest.
func (s *Statement) SHA256() string { return s.Subject[0].Digest["sha256"] }

// Kind is the kind of package the statement is about.
func (s *Statement) Kind() Kind {
	if s.PredicateType == GuestConfigPredicateType {
		return KindGuestConfig
	}
	return KindExtension
}

// NewStatement builds the statement for an extension package file.
func NewStatement(p Package, sha256Hex string, size int64) *Statement {
	return NewStatementKind(KindExtension, p, sha256Hex, size)
}

// NewStatementKind builds the statement for a package file of kind k.
func NewStatementKind(k Kind, p Package, sha256Hex string, size int64) *Statement {
	return &Statement{
		Type:          StatementType,
		Subject:       []Subject{{Name: p.FileName(), Digest: map[string]string{"sha256": sha256Hex}}},
		PredicateType: k.predicateType(),
		Predicate:     Predicate{Publisher: p.Publisher, Type: p.Type, Version: p.Version, Size: size},
	}
}

// ParseStatement parses and checks a statement: in-toto v1, arcagent
// predicate, exactly one subject whose name is the package file name of the
// predicate, a well-formed sha256 and a non-negative size.
func ParseStatement(data []byte) (*Statement, error) {
	var s Statement
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return nil, fail(CodeMalformedEnvelope, err, "statement is not valid JSON")
	}
	if dec.More() {
		return nil, fail(CodeMalformedEnvelope, nil, "statement has trailing data")
	}
	if s.Type != StatementType {
		return nil, fail(CodeMalformedEnvelope, nil, "statement _type is %q, want %q", s.Type, StatementType)
	}
	if s.PredicateType != PredicateType && s.PredicateType != GuestConfigPredicateType {
		return nil, fail(CodeMalformedEnvelope, nil, "predicateType is %q, want %q or %q", s.PredicateType, PredicateType, GuestConfigPredicateType)
	}
	if len(s.Subject) != 1 {
		return nil, fail(CodeMalformedEnvelope, nil, "statement has %d subjects, want exactly 1", len(s.Subject))
	}
	p := s.Package()
	if err := p.Validate(); err != nil {
		return nil, fail(CodeMalformedEnvelope, err, "statement predicate")
	}
	if s.Subject[0].Name != p.FileName() {
		return nil, fail(CodeMalformedEnvelope, nil, "subject name %q does not match the predicate (%s)", s.Subject[0].Name, p.FileName())
	}
	d := s.Subject[0].Digest["sha256"]
	if b, err := hex.DecodeString(d); err != nil || len(b) != 32 || strings.ToLower(d) != d {
		return nil, fail(CodeMalformedEnvelope, nil, "subject has no valid lowercase hex sha256 digest")
	}
	if s.Predicate.Size < 0 {
		return nil, fail(CodeMalformedEnvelope, nil, "predicate size is negative")
	}
	return &s, nil
}

// Envelope is a DSSE envelope (https://github.com/secure-systems-lab/dsse).
type Envelope struct {
	PayloadType string              `json:"payloadType"`
	Payload     string              `json:"payload"`
	Signatures  []EnvelopeSignature `json:"signatures"`
}

// EnvelopeSignature is one signature of an envelope.
type EnvelopeSignature struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   string `json:"sig"`
}

// ParseEnvelope parses untrusted envelope bytes with limits: at most 1 MiB,
// one JSON object, the expected payload type, a base64 payload and 1 to 32
// base64 signatures. It checks form only; signatures are checked by the
// verifiers.
func ParseEnvelope(data []byte, payloadType string) (*Envelope, []byte, error) {
	if len(data) > maxEnvelopeSize {
		return nil, nil, fail(CodeMalformedEnvelope, nil, "envelope is larger than %d bytes", maxEnvelopeSize)
	}
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&env); err != nil {
		return nil, nil, fail(CodeMalformedEnvelope, err, "envelope is not valid JSON (truncated?)")
	}
	if dec.More() {
		return nil, nil, fail(CodeMalformedEnvelope, nil, "envelope has trailing data")
	}
	if env.PayloadType != payloadType {
		return nil, nil, fail(CodeMalformedEnvelope, nil, "payloadType is %q, want %q", env.PayloadType, payloadType)
	}
	payload, err := b64(env.Payload)
	if err != nil || len(payload) == 0 {
		return nil, nil, fail(CodeMalformedEnvelope, err, "payload is empty or not base64")
	}
	if len(env.Signatures) == 0 || len(env.Signatures) > maxSignatures {
		return nil, nil, fail(CodeMalformedEnvelope, nil, "envelope has %d signatures, want 1 to %d", len(env.Signatures), maxSignatures)
	}
	for i, s := range env.Signatures {
		if b, err := b64(s.Sig); err != nil || len(b) == 0 {
			return nil, nil, fail(CodeMalformedEnvelope, err, "signature %d is empty or not base64", i)
		}
	}
	return &env, payload, nil
}

// b64 decodes standard or URL-safe base64, as DSSE allows.
func b64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		var err2 error
		b, err2 = base64.URLEncoding.DecodeString(s)
		if err2 != nil {
			return nil, fmt.Errorf("invalid base64: %w", err)
		}
	}
	return b, nil
}
