// Package sealed encrypts protected extension settings to a machine's
// public key with HPKE (RFC 9180, crypto/hpke): DHKEM(P-256) +
// HKDF-SHA256 + AES-128-GCM, single shot. The control plane seals; only
// the machine, holding the private key, can open. The HPKE info binds the
// ciphertext to one machine and one extension name, so a sealed value
// copied to another machine's or another extension's assignment does not
// open.
//
// A sealed value is the string "hpke1:" followed by the standard base64 of
// the encapsulated key concatenated with the ciphertext.
package sealed

import (
	"crypto/ecdsa"
	"crypto/hpke"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Prefix starts every sealed value; it names the suite.
const Prefix = "hpke1:"

// MaxPlaintext bounds what may be sealed (and so what Open accepts).
const MaxPlaintext = 64 << 10

// overhead is the P-256 encapsulated key (65 bytes) plus the GCM tag (16).
const overhead = 65 + 16

func info(machineID, name string) []byte {
	return []byte("arcagent/protected-settings/v1\x00" + machineID + "\x00" + name)
}

func suite() (hpke.KDF, hpke.AEAD) { return hpke.HKDFSHA256(), hpke.AES128GCM() }

// Seal encrypts plaintext for the machine whose public key is pub, bound to
// machineID and the extension name.
func Seal(pub *ecdsa.PublicKey, machineID, name string, plaintext []byte) (string, error) {
	if len(plaintext) > MaxPlaintext {
		return "", fmt.Errorf("protected settings are %d bytes, more than the %d allowed", len(plaintext), MaxPlaintext)
	}
	epub, err := pub.ECDH()
	if err != nil {
		return "", fmt.Errorf("use the machine key for HPKE: %w", err)
	}
	pk, err := hpke.NewDHKEMPublicKey(epub)
	if err != nil {
		return "", fmt.Errorf("use the machine key for HPKE: %w", err)
	}
	kdf, aead := suite()
	ct, err := hpke.Seal(pk, kdf, aead, info(machineID, name), plaintext)
	if err != nil {
		return "", fmt.Errorf("seal protected settings: %w", err)
	}
	return Prefix + base64.StdEncoding.EncodeToString(ct), nil
}

// ErrMalformed is returned for a value that is not a sealed value.
var ErrMalformed = errors.New("not a sealed value (want hpke1:BASE64)")

// Open decrypts a value made by Seal for this machine and extension name.
// Any change to the value, the machine id or the name fails.
func Open(priv *ecdsa.PrivateKey, machineID, name, value string) ([]byte, error) {
	b64, ok := strings.CutPrefix(value, Prefix)
	if !ok || len(b64) > base64.StdEncoding.EncodedLen(MaxPlaintext+overhead) {
		return nil, ErrMalformed
	}
	ct, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(ct) < overhead {
		return nil, ErrMalformed
	}
	epriv, err := priv.ECDH()
	if err != nil {
		return nil, fmt.Errorf("use the machine key for HPKE: %w", err)
	}
	sk, err := hpke.NewDHKEMPrivateKey(epriv)
	if err != nil {
		return nil, fmt.Errorf("use the machine key for HPKE: %w", err)
	}
	kdf, aead := suite()
	pt, err := hpke.Open(sk, kdf, aead, info(machineID, name), ct)
	if err != nil {
		return nil, fmt.Errorf("open protected settings (sealed to another machine or extension, or changed): %w", err)
	}
	return pt, nil
}
