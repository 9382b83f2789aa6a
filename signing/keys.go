package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/arcagent/arcagent/internal/saferead"
)

// Algorithm names a key algorithm.
type Algorithm string

// Supported algorithms. ECDSA P-256 (with SHA-256) is the default.
const (
	AlgECDSAP256 Algorithm = "ecdsa-p256"
	AlgEd25519   Algorithm = "ed25519"
)

// PasswordEnv is the environment variable holding the private-key passphrase.
const PasswordEnv = "ARCAGENT_KEY_PASSWORD"

// maxKeyFile bounds the size of a key file we read.
const maxKeyFile = 64 << 10

// ParseAlgorithm accepts "ecdsa-p256" (also "ecdsa", "p256", "") and "ed25519".
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "ecdsa", "ecdsa-p256", "p256", "p-256":
		return AlgECDSAP256, nil
	case "ed25519":
		return AlgEd25519, nil
	}
	return "", fail(CodeBadKey, nil, "unknown key algorithm %q: use ecdsa-p256 or ed25519", s)
}

// KeyPair is a freshly generated key pair, PEM encoded.
type KeyPair struct {
	Algorithm  Algorithm
	PrivatePEM []byte // PKCS#8, or sigstore-encrypted when a passphrase was given
	PublicPEM  []byte // PKIX
	KeyID      string // see KeyID
	Encrypted  bool
}

// GenerateKey makes a new key pair. A non-empty password encrypts the
// private key (scrypt + secretbox, sigstore's "ENCRYPTED SIGSTORE PRIVATE
// KEY" format, also readable by cosign).
func GenerateKey(alg Algorithm, password []byte) (*KeyPair, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case AlgECDSAP256, "":
		alg = AlgECDSAP256
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgEd25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fail(CodeBadKey, nil, "unknown key algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	kp := &KeyPair{Algorithm: alg, PublicPEM: pubPEM}
	if len(password) == 0 {
		kp.PrivatePEM, err = cryptoutils.MarshalPrivateKeyToPEM(priv)
	} else {
		var der []byte
		der, err = cryptoutils.MarshalPrivateKeyToEncryptedDER(priv, cryptoutils.StaticPasswordFunc(password))
		kp.PrivatePEM = cryptoutils.PEMEncode(cryptoutils.EncryptedSigstorePrivateKeyPEMType, der)
		kp.Encrypted = true
	}
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	kp.KeyID, err = KeyID(priv.Public())
	if err != nil {
		return nil, err
	}
	return kp, nil
}

// KeyID is the stable identifier of a public key: "sha256:" followed by the
// hex SHA-256 of its PKIX DER encoding.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return "", fail(CodeBadKey, err, "encode public key")
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// checkAlgorithm accepts ECDSA P-256 and Ed25519 public keys only.
func checkAlgorithm(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fail(CodeBadKey, nil, "ECDSA key on curve %s: only P-256 is accepted", k.Curve.Params().Name)
		}
		return AlgECDSAP256, nil
	case ed25519.PublicKey:
		return AlgEd25519, nil
	}
	return "", fail(CodeBadKey, nil, "key type %T is not accepted: use ECDSA P-256 or Ed25519", pub)
}

// ParsePublicKey parses a PEM public key and checks its algorithm.
func ParsePublicKey(pemBytes []byte) (crypto.PublicKey, Algorithm, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, "", fail(CodeBadKey, err, "not a PEM public key")
	}
	alg, err := checkAlgorithm(pub)
	if err != nil {
		return nil, "", err
	}
	return pub, alg, nil
}

// LoadPublicKeyFile reads a PEM public key file. The path is one the user
// named, so a link is followed; a FIFO or device is refused without
// blocking or reading (saferead.File).
func LoadPublicKeyFile(path string) (crypto.PublicKey, Algorithm, error) {
	data, err := saferead.File(path, maxKeyFile)
	if err != nil {
		return nil, "", fail(CodeBadKey, err, "read public key %s", path)
	}
	pub, alg, err := ParsePublicKey(data)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return pub, alg, nil
}

// NewVerifier returns a sigstore verifier for an accepted public key.
func NewVerifier(pub crypto.PublicKey) (signature.Verifier, error) {
	if _, err := checkAlgorithm(pub); err != nil {
		return nil, err
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fail(CodeBadKey, err, "load verifier")
	}
	return v, nil
}

// LoadSigner reads a PEM private key. An encrypted key is decrypted with
// password; a nil password for an encrypted key fails with CodeKeyPassword.
// The password is never logged or kept. Like LoadPublicKeyFile, it follows
// a link the user named and refuses anything but a regular file.
func LoadSigner(path string, password []byte) (signature.Signer, error) {
	data, err := saferead.File(path, maxKeyFile)
	if err != nil {
		return nil, fail(CodeBadKey, err, "read private key %s", path)
	}
	return ParseSigner(data, password)
}

// ParseSigner is LoadSigner for PEM bytes.
func ParseSigner(pemBytes []byte, password []byte) (signature.Signer, error) {
	encrypted := strings.Contains(string(pemBytes), "ENCRYPTED")
	if encrypted && len(password) == 0 {
		return nil, fail(CodeKeyPassword, nil, "the private key is encrypted and %s is not set", PasswordEnv)
	}
	var pf cryptoutils.PassFunc
	if len(password) > 0 {
		pf = cryptoutils.StaticPasswordFunc(password)
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, pf)
	if err != nil {
		if encrypted {
			return nil, fail(CodeKeyPassword, nil, "cannot decrypt the private key: wrong passphrase in %s", PasswordEnv)
		}
		return nil, fail(CodeBadKey, err, "not a PEM private key")
	}
	cs, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fail(CodeBadKey, nil, "key type %T cannot sign", priv)
	}
	if _, err := checkAlgorithm(cs.Public()); err != nil {
		return nil, err
	}
	s, err := signature.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		return nil, fail(CodeBadKey, err, "load signer")
	}
	return s, nil
}

// PasswordFromEnv returns the passphrase in ARCAGENT_KEY_PASSWORD, or nil.
func PasswordFromEnv() []byte {
	if p := os.Getenv(PasswordEnv); p != "" {
		return []byte(p)
	}
	return nil
}
