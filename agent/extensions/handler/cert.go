package handler

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/saferead"
)

// Settings certificate parameters.
const (
	certKeyBits   = 2048 // RSA-2048, as waagent's transport certificate
	certLifetime  = 2 * 365 * 24 * time.Hour
	certRenewal   = 7 * 24 * time.Hour // a certificate this close to expiry is replaced
	certFileLimit = 64 << 10
	certSubject   = "arcagent protected settings"
)

// Cert is the machine-local settings certificate (RSA, self-signed) that
// protected settings are encrypted to, as Azure's handlers expect.
type Cert struct {
	Thumbprint string // uppercase hex SHA-1 of the DER, as Azure names it
	Cert       *x509.Certificate
	Key        *rsa.PrivateKey
}

// CertFile and KeyFile are <dir>/<THUMBPRINT>.crt and .prv.
func (c *Cert) CertFile(dir string) string { return filepath.Join(dir, c.Thumbprint+".crt") }

// KeyFile is <dir>/<THUMBPRINT>.prv: the PKCS#8 PEM private key.
func (c *Cert) KeyFile(dir string) string { return filepath.Join(dir, c.Thumbprint+".prv") }

// Thumbprint is the uppercase hex SHA-1 of a certificate's DER.
func Thumbprint(der []byte) string {
	sum := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// EnsureCert returns the settings certificate kept in dir (the extensions
// directory): the valid <THUMBPRINT>.crt/.prv pair that expires last, or a
// new self-signed RSA-2048 certificate written there when none is valid.
// A pair is valid when both files are regular files (never followed
// through a link), owned by this user and not readable by group or others
// (root:root 0600), parse as PEM, the name is the thumbprint of the
// certificate, the key matches it, and it is not within seven days of its
// expiry. Files are written atomically (.prv first, then .crt), mode 0600,
// owner root:root when running as root. Older pairs are left in place:
// settings files written earlier name them and their handlers still need
// them.
func EnsureCert(dir string) (*Cert, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fail(CodeSettingsCert, err, "create %s", dir)
	}
	if c := loadBestCert(dir, time.Now()); c != nil {
		return c, nil
	}
	c, err := newCert(time.Now())
	if err != nil {
		return nil, fail(CodeSettingsCert, err, "create the settings certificate")
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		return nil, fail(CodeSettingsCert, err, "encode the settings key")
	}
	opts := atomicfile.WriteOptions{Mode: 0o600, Owner: atomicfile.Owner{User: "root", Group: "root"}, Enforce: true}
	if err := atomicfile.WriteFile(c.KeyFile(dir), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), opts); err != nil {
		return nil, fail(CodeSettingsCert, err, "write %s", c.KeyFile(dir))
	}
	if err := atomicfile.WriteFile(c.CertFile(dir), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw}), opts); err != nil {
		return nil, fail(CodeSettingsCert, err, "write %s", c.CertFile(dir))
	}
	return c, nil
}

func newCert(now time.Time) (*Cert, error) {
	key, err := rsa.GenerateKey(rand.Reader, certKeyBits)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: certSubject},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Cert{Thumbprint: Thumbprint(der), Cert: cert, Key: key}, nil
}

// loadBestCert returns the valid pair in dir that expires last, or nil.
func loadBestCert(dir string, now time.Time) *Cert {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.crt"))
	var best *Cert
	for _, m := range matches {
		tp := strings.TrimSuffix(filepath.Base(m), ".crt")
		c, err := LoadCert(dir, tp)
		if err != nil || now.Add(certRenewal).After(c.Cert.NotAfter) || now.Before(c.Cert.NotBefore) {
			continue
		}
		if best == nil || c.Cert.NotAfter.After(best.Cert.NotAfter) {
			best = c
		}
	}
	return best
}

// LoadCert loads the pair <dir>/<thumbprint>.crt/.prv and checks it (see
// EnsureCert; expiry is not checked here).
func LoadCert(dir, thumbprint string) (*Cert, error) {
	if len(thumbprint) != 40 || strings.ToUpper(thumbprint) != thumbprint {
		return nil, fail(CodeSettingsCert, nil, "%q is not a certificate thumbprint (40 uppercase hex digits)", thumbprint)
	}
	if _, err := hex.DecodeString(thumbprint); err != nil {
		return nil, fail(CodeSettingsCert, nil, "%q is not a certificate thumbprint (40 uppercase hex digits)", thumbprint)
	}
	crtPath := filepath.Join(dir, thumbprint+".crt")
	prvPath := filepath.Join(dir, thumbprint+".prv")
	crtPEM, err := readPrivate(crtPath)
	if err != nil {
		return nil, err
	}
	prvPEM, err := readPrivate(prvPath)
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(crtPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fail(CodeSettingsCert, nil, "%s holds no PEM certificate", crtPath)
	}
	if Thumbprint(cb.Bytes) != thumbprint {
		return nil, fail(CodeSettingsCert, nil, "%s is not the certificate its name says", crtPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fail(CodeSettingsCert, err, "parse %s", crtPath)
	}
	kb, _ := pem.Decode(prvPEM)
	if kb == nil {
		return nil, fail(CodeSettingsCert, nil, "%s holds no PEM private key", prvPath)
	}
	var key *rsa.PrivateKey
	switch kb.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err != nil {
			return nil, fail(CodeSettingsCert, err, "parse %s", prvPath)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fail(CodeSettingsCert, nil, "%s is not an RSA key", prvPath)
		}
		key = rk
	case "RSA PRIVATE KEY":
		if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
			return nil, fail(CodeSettingsCert, err, "parse %s", prvPath)
		}
	default:
		return nil, fail(CodeSettingsCert, nil, "%s holds a %q block, not a private key", prvPath, kb.Type)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fail(CodeSettingsCert, nil, "%s does not belong to %s", prvPath, crtPath)
	}
	return &Cert{Thumbprint: thumbprint, Cert: cert, Key: key}, nil
}

// readPrivate reads a certificate or key file: a regular file (a link is
// not followed), owned by this process's user, not readable or writable
// by group or others.
func readPrivate(path string) ([]byte, error) {
	root, err := saferead.Open(filepath.Dir(path))
	if err != nil {
		return nil, fail(CodeSettingsCert, err, "open %s", filepath.Dir(path))
	}
	defer root.Close()
	f, err := root.Open(filepath.Base(path)) // the final component is never followed
	if err != nil {
		return nil, fail(CodeSettingsCert, err, "open %s", path)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fail(CodeSettingsCert, err, "inspect %s", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fail(CodeSettingsCert, nil, "%s has mode %s: others may read it, so it is not used", path, fi.Mode().Perm())
	}
	if err := checkCertOwner(path, fi); err != nil {
		return nil, err
	}
	if fi.Size() > certFileLimit {
		return nil, fail(CodeSettingsCert, nil, "%s is larger than %d bytes", path, certFileLimit)
	}
	data, err := io.ReadAll(io.LimitReader(f, certFileLimit+1))
	if err != nil {
		return nil, fail(CodeSettingsCert, err, "read %s", path)
	}
	if len(data) > certFileLimit {
		return nil, fail(CodeSettingsCert, nil, "%s is larger than %d bytes", path, certFileLimit)
	}
	return data, nil
}
