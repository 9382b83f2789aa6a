package sealed

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
)

func key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	k := key(t)
	secret := []byte(`{"password":"hunter2"}`)
	v, err := Seal(&k.PublicKey, "m1", "ama", secret)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, Prefix) || strings.Contains(v, "hunter2") {
		t.Fatalf("sealed value %q", v)
	}
	got, err := Open(k, "m1", "ama", v)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	v2, _ := Seal(&k.PublicKey, "m1", "ama", secret)
	if v2 == v {
		t.Fatal("two seals of the same plaintext are equal: no fresh encapsulation")
	}
}

func TestOpenRefuses(t *testing.T) {
	k, other := key(t), key(t)
	v, err := Seal(&k.PublicKey, "m1", "ama", []byte("s"))
	if err != nil {
		t.Fatal(err)
	}
	flip := []byte(v)
	flip[len(flip)-3] ^= 1
	for _, tc := range []struct {
		name, id, ext, value string
		priv                 *ecdsa.PrivateKey
	}{
		{"other machine key", "m1", "ama", v, other},
		{"other machine id", "m2", "ama", v, k},
		{"other extension", "m1", "other", v, k},
		{"changed byte", "m1", "ama", string(flip), k},
		{"no prefix", "m1", "ama", strings.TrimPrefix(v, Prefix), k},
		{"not base64", "m1", "ama", Prefix + "!!!", k},
		{"too short", "m1", "ama", Prefix + "AAAA", k},
		{"empty", "m1", "ama", "", k},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := Open(tc.priv, tc.id, tc.ext, tc.value); err == nil {
				t.Fatalf("Open succeeded: %q", got)
			}
		})
	}
}

func TestSealTooLarge(t *testing.T) {
	k := key(t)
	if _, err := Seal(&k.PublicKey, "m", "n", make([]byte, MaxPlaintext+1)); err == nil {
		t.Fatal("sealed more than MaxPlaintext")
	}
}

func FuzzOpen(f *testing.F) {
	k := key(f)
	v, _ := Seal(&k.PublicKey, "m", "n", []byte("seed"))
	for _, s := range []string{v, "", Prefix, Prefix + "AAAA", "hpke1:" + strings.Repeat("A", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pt, err := Open(k, "m", "n", s)
		if err == nil && s != v && !bytes.Equal(pt, []byte("seed")) {
			t.Fatalf("opened a value Seal never made: %q", pt)
		}
	})
}
