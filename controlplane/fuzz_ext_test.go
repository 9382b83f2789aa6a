package controlplane

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/internal/sealed"
	"github.com/arcagent/arcagent/signing"
)

func fuzzZip(tb testing.TB, files map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for n, b := range files {
		w, err := zw.Create(n)
		if err != nil {
			tb.Fatal(err)
		}
		w.Write([]byte(b))
	}
	zw.Close()
	return buf.Bytes()
}

// fuzzEnvelope is a well-formed envelope whose statement names data as
// the package of p.
func fuzzEnvelope(p signing.Package, data []byte) []byte {
	sum := sha256.Sum256(data)
	payload, _ := json.Marshal(signing.NewStatement(p, hex.EncodeToString(sum[:]), int64(len(data))))
	env, _ := json.Marshal(signing.Envelope{PayloadType: signing.PayloadType, Payload: base64.StdEncoding.EncodeToString(payload), Signatures: []signing.EnvelopeSignature{{KeyID: "k", Sig: "c2ln"}}})
	return env
}

func checkAPIError(t *testing.T, err error) {
	t.Helper()
	var ae *apiError
	if err != nil && !errors.As(err, &ae) {
		t.Fatalf("non-API error %T: %v", err, err)
	}
	if ae != nil && (ae.msg == "" || apiv1.HTTPStatus(ae.code) >= 500) {
		t.Fatalf("bad API error %+v", ae)
	}
}

// FuzzPublishRequest feeds publish bodies (asZip false) or package bytes
// under a matching statement (asZip true, so the zip check is reached) to
// the publish decoder and validator: no panic, only API errors, and an
// accepted request's digest and size are those of its bytes.
func FuzzPublishRequest(f *testing.F) {
	p := signing.Package{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0"}
	good := fuzzZip(f, map[string]string{"HandlerManifest.json": `[{"version":1.0,"handlerManifest":{"installCommand":"a"}}]`, "bin/a": "#!/bin/sh\n"})
	body, _ := json.Marshal(apiv1.PublishPackageRequest{Package: good, Envelope: fuzzEnvelope(p, good)})
	f.Add(false, body)
	f.Add(true, good)
	f.Add(true, fuzzZip(f, map[string]string{"HandlerManifest.json": `[]`}))
	f.Add(true, fuzzZip(f, map[string]string{"HandlerManifest.json": "\xef\xbb\xbf[{\"handlerManifest\":1}]"}))
	f.Add(true, fuzzZip(f, map[string]string{"../HandlerManifest.json": `[{"handlerManifest":{}}]`}))
	f.Add(true, []byte("PK\x05\x06"+strings.Repeat("\x00", 18)))
	f.Add(false, []byte(`{"package":"UEsDBA==","envelope":"not an object"}`))
	f.Add(false, []byte(`{"package":"","envelope":{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"eA=="}]}}`))
	f.Add(false, []byte(`{"package":null,"envelope":null}`))
	f.Fuzz(func(t *testing.T, asZip bool, data []byte) {
		var req apiv1.PublishPackageRequest
		if asZip {
			req = apiv1.PublishPackageRequest{Package: data, Envelope: fuzzEnvelope(p, data)}
		} else if err := DecodeStrict(bytes.NewReader(data), maxPublishBody, &req); err != nil {
			checkAPIError(t, err)
			return
		}
		pub, err := validatePublish(&req)
		checkAPIError(t, err)
		if err != nil {
			return
		}
		sum := sha256.Sum256(req.Package)
		if pub.sha256 != hex.EncodeToString(sum[:]) || pub.size != int64(len(req.Package)) || pub.pkg.Validate() != nil {
			t.Fatalf("accepted %+v for %d bytes with sha256 %x", pub, len(req.Package), sum)
		}
	})
}

// FuzzSetExtensionRequest feeds names and bodies to the assignment
// decoder and validator: no panic, only API errors, and what is accepted
// is within its limits (protected settings a compact JSON object).
func FuzzSetExtensionRequest(f *testing.F) {
	for _, s := range []struct{ name, body string }{
		{"monitor", `{"publisher":"Contoso.Monitoring","type":"StatusReporter","version":"1.0.0","settings":{"interval":30},"protectedSettings":{"password":"x"}}`},
		{"a", `{"publisher":"P","type":"T","version":"1","protectedSettings":null}`},
		{"a", `{"publisher":"P","type":"T","version":"1","protectedSettings":{}}`},
		{"a", `{"publisher":"P","type":"T","version":"1","protectedSettings":"secret"}`},
		{"a", `{"publisher":"P","type":"T","version":"1","protectedSettings":[1,2]}`},
		{"a", `{"publisher":"P","type":"T","version":"1","protectedSettings":{"a":1,"a":2}}`},
		{"a", `{"publisher":"P","type":"T","version":"1","settings":{"a":{"b":[1,{"c":null}]}}}`},
		{"-bad", `{"publisher":"P","type":"T","version":"1"}`},
		{"a", `{"publisher":"P..Q","type":"T","version":"1.2.3.4.5"}`},
		{"a", `{"Publisher":"P","type":"T","version":"1"}`},
	} {
		f.Add(s.name, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		var req apiv1.SetExtensionRequest
		if err := DecodeStrict(bytes.NewReader(data), maxExtensionBody, &req); err != nil {
			checkAPIError(t, err)
			return
		}
		v, err := validateSetExtension(name, &req)
		checkAPIError(t, err)
		if err != nil {
			return
		}
		if v.pkg.Validate() != nil || checkName("name", name, 64) != nil {
			t.Fatalf("accepted name %q package %+v", name, v.pkg)
		}
		if v.protected != nil {
			var obj map[string]any
			if len(v.protected) > sealed.MaxPlaintext || json.Unmarshal(v.protected, &obj) != nil || obj == nil {
				t.Fatalf("accepted protected settings %q", v.protected)
			}
			var c bytes.Buffer
			json.Compact(&c, v.protected)
			if !bytes.Equal(c.Bytes(), v.protected) {
				t.Fatalf("protected settings not compact: %q", v.protected)
			}
		}
		if b, _ := json.Marshal(v.settings); len(b) > MaxSettings {
			t.Fatalf("accepted %d bytes of settings", len(b))
		}
	})
}
