package proxy

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/layout"
)

// TestTransportResumesTLS: a connection opened after the idle ones were
// closed (as every heartbeat's is, 5 minutes after the last) resumes the
// TLS session instead of a full handshake.
func TestTransportResumesTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	l := layout.New(t.TempDir())
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.MkdirAll(filepath.Dir(l.ServerCA()), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.ServerCA(), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err := Transport(l, config.NewSettings(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: tr}
	for i, want := range []bool{false, true, true} {
		res, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.TLS == nil || res.TLS.DidResume != want {
			t.Fatalf("connection %d: resumed %v, want %v", i, res.TLS != nil && res.TLS.DidResume, want)
		}
		tr.CloseIdleConnections()
	}
}
