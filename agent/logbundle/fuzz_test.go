package logbundle

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzRedact: a known secret never survives redaction (unless it is made of
// the redactor's own marker characters), no PEM armour survives,
// and a JSON document stays JSON.
func FuzzRedact(f *testing.F) {
	for _, s := range []struct{ data, secret string }{
		{"level=INFO msg=ok", "NotInTheText1"},
		{"token=KnownSecretValue42 and KnownSecretValue42", "KnownSecretValue42"},
		{"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----\n", "MHcCAQEEIabcdefgh"},
		{"Q0FCRA==\n-----END PRIVATE KEY-----\ntail", "Q0FCRA==Q0FCRA=="},
		{`{"protectedSettings": {"password": "ExtPassw0rd!", "n": [1, {"x": "}"}]}}`, "ExtPassw0rd!"},
		{`{"apiToken":"arcp_abcdef","nested":{"proxy":"http://u:SecretPw99@h:1"}}`, "SecretPw99"},
		{"Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "eyJhbGciOiJFUzI1NiJ9"},
		{"onboarding-token: arcob_T25ib2FyZA\npassword = 'hunter2hunter2'", "hunter2hunter2"},
		{`{"a": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n"}`, "AAAAAAAAAAAAAAAAAAAA"},
	} {
		f.Add([]byte(s.data), []byte(s.secret))
	}
	f.Fuzz(func(t *testing.T, data, secret []byte) {
		var r Redactor
		r.AddSecret(secret)
		s := bytes.TrimSpace(secret)
		withSecret := append(append(bytes.Clone(data), ' '), s...)
		out, _ := r.Redact(withSecret)
		if len(s) >= minSecret && !bytes.ContainsAny(s, `[]"'@`) && bytes.Contains(out, s) {
			t.Fatalf("the secret %q survived: %q", s, out)
		}
		if bytes.Contains(out, []byte("-----BEGIN ")) || bytes.Contains(out, []byte("-----END ")) {
			t.Fatalf("PEM armour survived: %q", out)
		}
		if json.Valid(data) {
			jout, _ := r.RedactJSON(data)
			if !json.Valid(jout) {
				t.Fatalf("RedactJSON(%q) = %q, not JSON", data, jout)
			}
		}
	})
}
