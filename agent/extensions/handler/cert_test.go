//go:build !windows

package handler

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

func TestEnsureCert(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "waagent")
	c1, err := EnsureCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9A-F]{40}$`).MatchString(c1.Thumbprint) || c1.Thumbprint != Thumbprint(c1.Cert.Raw) {
		t.Errorf("thumbprint %q", c1.Thumbprint)
	}
	if c1.Key.N.BitLen() < 2048 {
		t.Errorf("RSA key of %d bits", c1.Key.N.BitLen())
	}
	for _, p := range []string{c1.CertFile(dir), c1.KeyFile(dir)} {
		if got := mode(t, p); got != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, got)
		}
	}
	prv, _ := os.ReadFile(c1.KeyFile(dir))
	if b, _ := pem.Decode(prv); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf(".prv is not a PKCS#8 PEM key")
	} else if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
		t.Error(err)
	}
	c2, err := EnsureCert(dir)
	if err != nil || c2.Thumbprint != c1.Thumbprint {
		t.Fatalf("second EnsureCert: %v, thumbprint %s want %s (reuse)", err, c2.Thumbprint, c1.Thumbprint)
	}
}

func TestEnsureCertReplacesUnusable(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, dir string, c *Cert)
	}{
		{"corrupt certificate", func(t *testing.T, dir string, c *Cert) {
			writeTest(t, c.CertFile(dir), "not a certificate", 0o600)
		}},
		{"key missing", func(t *testing.T, dir string, c *Cert) {
			if err := os.Remove(c.KeyFile(dir)); err != nil {
				t.Fatal(err)
			}
		}},
		{"key readable by others", func(t *testing.T, dir string, c *Cert) {
			if err := os.Chmod(c.KeyFile(dir), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"wrong key", func(t *testing.T, dir string, c *Cert) {
			other, err := newCert(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			der, _ := x509.MarshalPKCS8PrivateKey(other.Key)
			writeTest(t, c.KeyFile(dir), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), 0o600)
		}},
		{"files are links to a valid pair elsewhere", func(t *testing.T, dir string, c *Cert) {
			elsewhere := t.TempDir()
			for _, p := range []string{c.CertFile(dir), c.KeyFile(dir)} {
				q := filepath.Join(elsewhere, filepath.Base(p))
				if err := os.Rename(p, q); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(q, p); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c1, err := EnsureCert(dir)
			if err != nil {
				t.Fatal(err)
			}
			tt.spoil(t, dir, c1)
			c2, err := EnsureCert(dir)
			if err != nil {
				t.Fatal(err)
			}
			if c2.Thumbprint == c1.Thumbprint {
				t.Fatalf("the unusable certificate %s was used", c1.Thumbprint)
			}
			if _, err := LoadCert(dir, c2.Thumbprint); err != nil {
				t.Errorf("the new pair does not load: %v", err)
			}
		})
	}
}

func TestEnsureCertRenewsExpiring(t *testing.T) {
	dir := t.TempDir()
	old, err := newCert(time.Now().Add(-certLifetime + 24*time.Hour)) // expires in a day
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(old.Key)
	writeTest(t, old.KeyFile(dir), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), 0o600)
	writeTest(t, old.CertFile(dir), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: old.Cert.Raw})), 0o600)
	if _, err := LoadCert(dir, old.Thumbprint); err != nil {
		t.Fatalf("the old pair does not load: %v", err)
	}
	c, err := EnsureCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Thumbprint == old.Thumbprint {
		t.Fatal("a certificate expiring within a day was kept")
	}
	if _, err := os.Stat(old.CertFile(dir)); err != nil {
		t.Errorf("the old pair was removed (settings written earlier name it): %v", err)
	}
}

func writeTest(t *testing.T, p, content string, m os.FileMode) {
	t.Helper()
	_ = os.Remove(p)
	if err := os.WriteFile(p, []byte(content), m); err != nil {
		t.Fatal(err)
	}
}
