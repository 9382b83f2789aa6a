package signing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"

	"github.com/arcagent/arcagent/internal/saferead"
)

// SignatureSuffix is appended to a package path to name its envelope.
const SignatureSuffix = ".sig.json"

// hashBufSize is the read size while hashing: large enough to run SHA-256
// at full speed, small and fixed so memory does not grow with the package.
const hashBufSize = 1 << 20

// Expectation is what the caller asked for. Empty fields accept whatever the
// statement says (the signer must still be allowed for its publisher).
type Expectation struct {
	// Kind is the kind of package asked for; "" is an extension. It is
	// always checked: a guest configuration package never verifies as an
	// extension, nor the other way round.
	Kind      Kind
	Publisher string
	Type      string
	Version   string
}

// IsZero reports whether nothing is expected.
func (e Expectation) IsZero() bool { return e == Expectation{} }

// VerifyOptions says what to verify and against which keys.
type VerifyOptions struct {
	// Package is the path of the zip.
	Package string
	// Envelope is the DSSE envelope; nil reads Package+".sig.json".
	Envelope []byte
	// Trust is the trust store; its entries' publisher lists apply.
	Trust *TrustStore
	// Key, when set, is used instead of Trust: a single key the caller trusts
	// for any publisher (`package verify --key PUB`).
	Key crypto.PublicKey
	// Expect is the requested publisher, type and version.
	Expect Expectation
	// Logger receives debug records (nil: discard). Secrets are never logged.
	Logger *slog.Logger
	// Copy, when set, receives the package bytes as they are hashed, so a
	// caller (the installer) can keep exactly the bytes that were verified
	// without reading the file a second time.
	Copy io.Writer
}

// Result is a successful verification.
type Result struct {
	Statement *Statement `json:"statement"`
	Package   Package    `json:"package"`
	Signer    string     `json:"signer"` // trust entry name ("--key" for a key given directly)
	KeyID     string     `json:"keyId"`
	SHA256    string     `json:"sha256"`
	Size      int64      `json:"size"`
}

// VerifyPackage verifies a package and its envelope, failing closed in the
// order of docs/signing.md: (1) the envelope is signed by a trusted key,
// (2) that key's entry allows the statement's publisher, (3) the statement's
// publisher/type/version equal opts.Expect, (4) the size and sha256 of the
// bytes on disk equal the subject. The package is read once, in fixed-size
// chunks: memory does not depend on its size.
func VerifyPackage(ctx context.Context, opts VerifyOptions) (*Result, error) {
	env := opts.Envelope
	if env == nil {
		var err error
		if env, err = ReadEnvelopeFile(opts.Package + SignatureSuffix); err != nil {
			return nil, err
		}
	}
	keys, err := verificationKeys(opts)
	if err != nil {
		return nil, err
	}
	st, signer, err := VerifyEnvelope(ctx, env, keys, opts.Expect)
	if err != nil {
		return nil, err
	}
	logger(opts.Logger).Debug("envelope verified", "signer", signer.Name, "package", st.Package().Name())
	sum, size, err := checkFile(ctx, opts.Package, st, opts.Copy)
	if err != nil {
		return nil, err
	}
	return &Result{Statement: st, Package: st.Package(), Signer: signer.Name, KeyID: signer.KeyID, SHA256: sum, Size: size}, nil
}

func verificationKeys(opts VerifyOptions) ([]*TrustedKey, error) {
	if opts.Key != nil {
		k, err := DirectKey(opts.Key)
		if err != nil {
			return nil, err
		}
		return []*TrustedKey{k}, nil
	}
	if opts.Trust == nil {
		return nil, fail(CodeNoTrustedKeys, nil, "no trust store and no key given")
	}
	return opts.Trust.Keys, nil
}

// DirectKey wraps a public key the caller trusts for every publisher (the
// `--key PUB` case) as a trust entry named "--key".
func DirectKey(pub crypto.PublicKey) (*TrustedKey, error) {
	v, err := NewVerifier(pub)
	if err != nil {
		return nil, err
	}
	id, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	alg, _ := checkAlgorithm(pub)
	return &TrustedKey{Name: "--key", Algorithm: alg, KeyID: id, pub: pub, verifier: v, anyPublisher: true}, nil
}

// VerifyEnvelope runs steps 1–3 of the verification on an envelope alone:
// signature by one of keys, publisher allowed for that key, statement equal
// to expect. It returns the statement and the key that vouched for it. The
// audit engine uses it (through VerifyInstalled) without the package file.
func VerifyEnvelope(ctx context.Context, envelope []byte, keys []*TrustedKey, expect Expectation) (*Statement, *TrustedKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	env, payload, err := ParseEnvelope(envelope, PayloadType)
	if err != nil {
		return nil, nil, err
	}
	if len(keys) == 0 {
		return nil, nil, fail(CodeNoTrustedKeys, nil, "the trust store holds no keys, so nothing can be verified")
	}
	var signers []*TrustedKey
	for _, k := range keys {
		if signedBy(env, payload, k) {
			signers = append(signers, k)
		}
	}
	if len(signers) == 0 {
		return nil, nil, fail(CodeBadSignature, nil, "the envelope is not signed by any of the %d trusted key(s), or the signature is invalid", len(keys))
	}
	st, err := ParseStatement(payload)
	if err != nil {
		return nil, nil, err
	}
	pub := st.Predicate.Publisher
	var signer *TrustedKey
	for _, k := range signers {
		if k.anyPublisher || k.AllowsPublisher(pub) {
			signer = k
			break
		}
	}
	if signer == nil {
		names := make([]string, 0, len(signers))
		for _, k := range signers {
			names = append(names, fmt.Sprintf("%q (may sign for %s)", k.Name, strings.Join(k.Publishers, ", ")))
		}
		return nil, nil, fail(CodePublisherNotAllowed, nil, "signed by trusted key %s, which is not allowed to sign for publisher %q", strings.Join(names, ", "), pub)
	}
	got := st.Package()
	var diffs []string
	if want := expect.Kind.predicateType(); st.PredicateType != want {
		diffs = append(diffs, fmt.Sprintf("a %s package, not a %s package", st.Kind(), kindName(expect.Kind)))
	}
	if expect.Publisher != "" && !strings.EqualFold(expect.Publisher, got.Publisher) {
		diffs = append(diffs, fmt.Sprintf("publisher %q, not %q", got.Publisher, expect.Publisher))
	}
	if expect.Type != "" && !strings.EqualFold(expect.Type, got.Type) {
		diffs = append(diffs, fmt.Sprintf("type %q, not %q", got.Type, expect.Type))
	}
	if expect.Version != "" && expect.Version != got.Version {
		diffs = append(diffs, fmt.Sprintf("version %q, not %q", got.Version, expect.Version))
	}
	if len(diffs) > 0 {
		return nil, nil, fail(CodeStatementMismatch, nil, "the signed statement is for %s: %s", got.Name(), strings.Join(diffs, "; "))
	}
	return st, signer, nil
}

// signedBy reports whether one of the envelope's signatures is a valid
// signature by k over the DSSE pre-authentication encoding of its payload.
// The signatures' keyid fields are not looked at: a keyid is an
// unauthenticated hint (the DSSE specification says so), and trust comes
// only from the signature verifying with a trusted key.
func signedBy(env *Envelope, payload []byte, k *TrustedKey) bool {
	if k == nil || k.verifier == nil {
		return false
	}
	pae := preAuthEncoding(env.PayloadType, payload)
	for _, s := range env.Signatures {
		sig, err := b64(s.Sig)
		if err != nil {
			continue
		}
		if k.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(pae)) == nil {
			return true
		}
	}
	return false
}

// preAuthEncoding is DSSE's PAE: "DSSEv1" SP LEN(type) SP type SP LEN(body)
// SP body, lengths in ASCII decimal.
func preAuthEncoding(payloadType string, body []byte) []byte {
	return fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(body), body)
}

// checkFile is step 4: size, then sha256 of the bytes, read once. Bytes are
// copied to tee (when not nil) as they are hashed.
func checkFile(ctx context.Context, path string, st *Statement, tee io.Writer) (string, int64, error) {
	// O_NONBLOCK and a check of the opened descriptor: a FIFO or device
	// named as the package is refused without blocking.
	f, err := saferead.OpenFile(path)
	if errors.Is(err, saferead.ErrNotRegular) {
		return "", 0, fail(CodeFileAccess, nil, "%s is not a regular file", path)
	}
	if err != nil {
		return "", 0, fail(CodeFileAccess, err, "open package")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, fail(CodeFileAccess, err, "inspect package")
	}
	want := st.Predicate.Size
	if fi.Size() != want {
		return "", 0, fail(CodeDigestMismatch, nil, "%s is %d bytes, the signed package is %d bytes", filepath.Base(path), fi.Size(), want)
	}
	h := sha256.New()
	var w io.Writer = h
	if tee != nil {
		w = io.MultiWriter(h, tee)
	}
	n, err := copyCtx(ctx, w, io.LimitReader(f, want+1))
	if err != nil {
		return "", 0, fmt.Errorf("read package %s: %w", path, err)
	}
	if n != want {
		return "", 0, fail(CodeDigestMismatch, nil, "%s changed while it was read (%d bytes read, %d signed)", filepath.Base(path), n, want)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if sum != st.SHA256() {
		return "", 0, fail(CodeDigestMismatch, nil, "sha256 of %s is %s, the signed digest is %s", filepath.Base(path), sum, st.SHA256())
	}
	return sum, n, nil
}

// hashBufs holds the read buffers of copyCtx. Hashing is called once per
// installed file by tamper checks, so allocating a buffer per call made an
// audit of many small extensions spend most of its time allocating.
var hashBufs = sync.Pool{New: func() any { b := make([]byte, hashBufSize); return &b }}

// copyCtx copies with a fixed, pooled buffer and stops when ctx is done.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	buf := *bp
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := io.ReadFull(src, buf)
		if m > 0 {
			if _, werr := dst.Write(buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// HashFile returns the hex sha256 and size of a file, streaming. The file
// must be a regular file (a FIFO or device is refused, never blocked on).
func HashFile(ctx context.Context, path string) (string, int64, error) {
	f, err := saferead.OpenFile(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return HashReader(ctx, f)
}

// HashReader returns the hex sha256 and length of what r yields, streaming
// through a pooled buffer and stopping when ctx is done.
func HashReader(ctx context.Context, r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := copyCtx(ctx, h, r)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ReadEnvelopeFile reads a DSSE envelope file of at most 1 MiB (a larger
// file is not an envelope).
func ReadEnvelopeFile(path string) ([]byte, error) {
	env, err := saferead.File(path, maxEnvelopeSize)
	if err != nil {
		return nil, fail(CodeFileAccess, err, "read signature %s", path)
	}
	return env, nil
}

// SignPackage hashes the file at path and returns a DSSE envelope over the
// in-toto statement for p. It signs any file: checking that the file is a
// well-formed extension package is the caller's job (extensions.SignPackage
// does both).
func SignPackage(ctx context.Context, path string, p Package, signer signature.Signer) ([]byte, *Statement, error) {
	return SignPackageKind(ctx, KindExtension, path, p, signer)
}

func kindName(k Kind) string {
	if k == "" {
		return string(KindExtension)
	}
	return string(k)
}

// SignPackageKind is SignPackage for a package of kind k.
func SignPackageKind(ctx context.Context, k Kind, path string, p Package, signer signature.Signer) ([]byte, *Statement, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	sum, size, err := HashFile(ctx, path)
	if err != nil {
		return nil, nil, fail(CodeFileAccess, err, "read package")
	}
	st := NewStatementKind(k, p, sum, size)
	env, err := signStatement(st, signer)
	return env, st, err
}

func signStatement(st *Statement, signers ...signature.Signer) ([]byte, error) {
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	return signPayload(PayloadType, payload, signers...)
}

func signPayload(payloadType string, payload []byte, signers ...signature.Signer) ([]byte, error) {
	ws := dsse.WrapMultiSigner(payloadType, signers...)
	if ws == nil {
		return nil, fail(CodeBadKey, nil, "cannot use the signing key")
	}
	env, err := ws.SignMessage(bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return env, nil
}

// ParsePackageFileName splits "<Publisher>.<Type>-<Version>.zip".
func ParsePackageFileName(name string) (Package, error) {
	base := strings.TrimSuffix(filepath.Base(name), ".zip")
	i := strings.LastIndex(base, "-")
	if i < 0 {
		return Package{}, fail(CodeBadPackageName, nil, "%q is not named <Publisher>.<Type>-<Version>.zip", filepath.Base(name))
	}
	rest := base[:i]
	j := strings.LastIndex(rest, ".")
	if j < 0 {
		return Package{}, fail(CodeBadPackageName, nil, "%q is not named <Publisher>.<Type>-<Version>.zip", filepath.Base(name))
	}
	p := Package{Publisher: rest[:j], Type: rest[j+1:], Version: base[i+1:]}
	if err := p.Validate(); err != nil {
		return Package{}, err
	}
	return p, nil
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
