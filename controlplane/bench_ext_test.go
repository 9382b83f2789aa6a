package controlplane

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/signing"
)

// benchCall runs one request through the whole handler (no TLS) and
// fails unless it answers want.
func benchCall(b *testing.B, fs *fuzzServer, method, path, auth string, body any, want int) []byte {
	var rd *bytes.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	} else {
		rd = bytes.NewReader(nil)
	}
	r := httptest.NewRequest(method, path, rd)
	r.Header.Set("Authorization", "Bearer "+auth)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	fs.s.Handler().ServeHTTP(w, r)
	if w.Code != want {
		b.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
	}
	return w.Body.Bytes()
}

func benchPublish(b *testing.B, fs *fuzzServer, p signing.Package) {
	zb := fuzzZip(b, map[string]string{"HandlerManifest.json": `[{"version":1.0,"handlerManifest":{"installCommand":"a"}}]`, "v": p.Version})
	benchCall(b, fs, http.MethodPost, "/v1/packages", fs.owner, apiv1.PublishPackageRequest{Package: zb, Envelope: fuzzEnvelope(p, zb)}, http.StatusCreated)
}

// BenchmarkSetExtension is one assignment with protected settings that
// change every time (so each one seals with HPKE and writes the desired
// state in a transaction).
func BenchmarkSetExtension(b *testing.B) {
	fs := newFuzzServer(b)
	p := signing.Package{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0"}
	benchPublish(b, fs, p)
	path := "/v1/machines/" + fs.machine + "/extensions/monitor"
	req := func(i int) apiv1.SetExtensionRequest {
		return apiv1.SetExtensionRequest{Publisher: p.Publisher, Type: p.Type, Version: p.Version, Settings: map[string]any{"interval": 30},
			ProtectedSettings: json.RawMessage(fmt.Sprintf(`{"password":"secret-%d"}`, i))}
	}
	benchCall(b, fs, http.MethodPut, path, fs.owner, req(0), http.StatusCreated)
	b.ReportAllocs()
	for i := 1; b.Loop(); i++ {
		benchCall(b, fs, http.MethodPut, path, fs.owner, req(i), http.StatusOK)
	}
}

// BenchmarkListExtensions50 lists a machine with 50 assigned and 50
// reported extensions.
func BenchmarkListExtensions50(b *testing.B) {
	fs := newFuzzServer(b)
	st := apiv1.MachineStatus{}
	for v := 0; v < 50; v++ {
		p := signing.Package{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: fmt.Sprintf("1.0.%d", v)}
		benchPublish(b, fs, p)
		name := fmt.Sprintf("ext%02d", v)
		benchCall(b, fs, http.MethodPut, "/v1/machines/"+fs.machine+"/extensions/"+name, fs.owner, apiv1.SetExtensionRequest{Publisher: p.Publisher, Type: p.Type, Version: p.Version}, http.StatusCreated)
		st.Extensions = append(st.Extensions, apiv1.ExtensionStatus{Name: name, Publisher: p.Publisher, Type: p.Type, Version: p.Version, State: apiv1.ExtensionSucceeded, Message: "enabled"})
	}
	a, err := cloud.SignAssertion(fs.mach.Key, fs.machine, fs.audience, time.Now(), time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	benchCall(b, fs, http.MethodPut, "/v1/machines/"+fs.machine+"/status", a, st, http.StatusNoContent)
	b.ReportAllocs()
	for b.Loop() {
		out := benchCall(b, fs, http.MethodGet, "/v1/machines/"+fs.machine+"/extensions", fs.owner, nil, http.StatusOK)
		if !bytes.Contains(out, []byte(`"ext49"`)) {
			b.Fatal("ext49 missing")
		}
	}
}
