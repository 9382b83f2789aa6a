package signing

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// FuzzParseEnvelope feeds untrusted envelope bytes through parsing and full
// envelope verification against a fixed trust store. It must never panic,
// and anything it accepts must be signed by the trusted key for an allowed
// publisher.
func FuzzParseEnvelope(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.envelope)
	f.Add(fx.envelope[:len(fx.envelope)/2])
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AAAA"}]}`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":[]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AAAA"}]} {}`))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		_, payload, err := ParseEnvelope(data, PayloadType)
		if err == nil {
			_, _ = ParseStatement(payload)
		} else if !errors.Is(err, ErrMalformedEnvelope) {
			t.Fatalf("unexpected error class: %v", err)
		}
		st, k, err := VerifyEnvelope(ctx, data, fx.store.Keys, Expectation{})
		if err == nil {
			if k.Name != "contoso" || !k.AllowsPublisher(st.Predicate.Publisher) {
				t.Fatalf("accepted a statement from %q for %q", k.Name, st.Predicate.Publisher)
			}
		}
	})
}

// FuzzParseStatement fuzzes the in-toto statement parser directly.
func FuzzParseStatement(f *testing.F) {
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"A.B-1.zip","digest":{"sha256":"` + strings.Repeat("a", 64) + `"}}],"predicateType":"https://arcagent.dev/extension-package/v1","predicate":{"publisher":"A","type":"B","version":"1","size":3}}`))
	f.Add([]byte(`{"_type":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseStatement(data)
		if err == nil && (len(st.Subject) != 1 || st.Subject[0].Name != st.Package().FileName() || len(st.SHA256()) != 64) {
			t.Fatalf("accepted an inconsistent statement: %+v", st)
		}
	})
}
