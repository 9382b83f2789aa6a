package controlplane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/internal/tlskex"
)

func testCert(t *testing.T, key crypto.Signer) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// handshake runs a TLS handshake between TLSConfig(cert) and client over
// an in-memory connection and returns the client's error.
func handshake(t *testing.T, cert tls.Certificate, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srv := tls.Server(a, TLSConfig(cert))
	done := make(chan struct{})
	go func() {
		_ = srv.Handshake()
		a.Close()
		close(done)
	}()
	c := tls.Client(b, client)
	err := c.Handshake()
	b.Close()
	<-done
	return c.ConnectionState(), err
}

// In TLS 1.2 the server accepts exactly the ECDHE suites with AEAD ciphers
// for its key type: a client that offers only CBC (or static RSA, or 3DES,
// or RC4) suites is refused, whatever the certificate.
func TestTLS12OnlyAEADSuites(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string]tls.Certificate{"ECDSA": testCert(t, ec), "RSA": testCert(t, rk)}
	aead := func(name string) bool {
		return strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")
	}
	var suites []*tls.CipherSuite
	suites = append(suites, tls.CipherSuites()...)
	suites = append(suites, tls.InsecureCipherSuites()...)
	for kind, cert := range certs {
		for _, s := range suites {
			if !supports12(s) {
				continue
			}
			want := strings.HasPrefix(s.Name, "TLS_ECDHE_"+kind+"_") && aead(s.Name)
			t.Run(kind+"/"+s.Name, func(t *testing.T) {
				st, err := handshake(t, cert, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{s.ID}})
				if got := err == nil; got != want {
					t.Fatalf("handshake err = %v, want accepted=%v", err, want)
				}
				if err == nil && st.CipherSuite != s.ID {
					t.Errorf("negotiated %s, want %s", tls.CipherSuiteName(st.CipherSuite), s.Name)
				}
			})
		}
	}
	// A client offering only CBC suites (what an old or hardened-wrong
	// stack may send) gets no connection.
	cbc := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA}
	for kind, cert := range certs {
		if _, err := handshake(t, cert, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: cbc}); err == nil {
			t.Errorf("%s: a CBC-only TLS 1.2 client was accepted", kind)
		}
	}
	// TLS 1.3 is unaffected (all its suites are AEAD).
	st, err := handshake(t, certs["ECDSA"], &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil || st.Version != tls.VersionTLS13 {
		t.Errorf("TLS 1.3: %v (version %x)", err, st.Version)
	}
}

func supports12(s *tls.CipherSuite) bool {
	return slices.Contains(s.SupportedVersions, tls.VersionTLS12)
}

// The server negotiates the agent's key exchange (tlskex.Preferred, the
// P-256 hybrid) without a HelloRetryRequest, and a browser's or Go's
// default (X25519MLKEM768) too: both post-quantum hybrids.
func TestTLSKeyExchanges(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := testCert(t, ec)
	for _, c := range []struct {
		name  string
		prefs []tls.CurveID
		want  tls.CurveID
	}{
		{"agent", tlskex.Preferred, tls.SecP256r1MLKEM768},
		{"Go's defaults", nil, tls.X25519MLKEM768},
	} {
		st, err := handshake(t, cert, &tls.Config{InsecureSkipVerify: true, CurvePreferences: c.prefs})
		if err != nil || st.CurveID != c.want || st.HelloRetryRequest {
			t.Errorf("%s: %v, negotiated %v (retry %v), want %v", c.name, err, st.CurveID, st.HelloRetryRequest, c.want)
		}
	}
}
