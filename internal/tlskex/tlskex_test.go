package tlskex

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// server is an HTTPS test server whose handler echoes the negotiated key
// exchange and the body; hellos counts ClientHellos.
func server(t *testing.T, cfg *tls.Config) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hellos atomic.Int32
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.TLS.CurveID.String()+" "+string(b))
	}))
	ts.TLS = cfg
	ts.StartTLS()
	t.Cleanup(ts.Close)
	base := ts.TLS.Clone()
	ts.TLS.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		hellos.Add(1)
		return base, nil
	}
	return ts, &hellos
}

func client(ts *httptest.Server) *http.Client {
	base := ts.Client().Transport.(*http.Transport).Clone()
	base.DisableKeepAlives = true // a handshake per request
	return &http.Client{Transport: Wrap(base)}
}

func TestTransport(t *testing.T) {
	cases := []struct {
		name       string
		cfg        *tls.Config
		want       string // negotiated key exchange
		hellos     int32  // ClientHellos of the first request
		nextHellos int32  // of the second
	}{
		{"server with Go's defaults", &tls.Config{}, "SecP256r1MLKEM768", 1, 1},
		{"server without the P-256 hybrid", &tls.Config{CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519}}, "X25519MLKEM768", 2, 1},
		{"TLS 1.2 server", &tls.Config{MaxVersion: tls.VersionTLS12}, "X25519", 2, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts, hellos := server(t, c.cfg)
			hc := client(ts)
			for i, want := range []int32{c.hellos, c.nextHellos} {
				hellos.Store(0)
				resp, err := hc.Post(ts.URL, "text/plain", strings.NewReader("body"))
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if got := string(b); got != c.want+" body" {
					t.Fatalf("request %d: server saw %q, want %q", i, got, c.want+" body")
				}
				if n := hellos.Load(); n != want {
					t.Fatalf("request %d: %d ClientHellos, want %d", i, n, want)
				}
			}
		})
	}
}

// A body that cannot be replayed is not sent twice: the refusal is the
// error.
func TestTransportUnreplayableBody(t *testing.T) {
	ts, hellos := server(t, &tls.Config{CurvePreferences: []tls.CurveID{tls.X25519}})
	req, _ := http.NewRequest(http.MethodPost, ts.URL, io.NopCloser(strings.NewReader("body")))
	req.GetBody = nil
	_, err := client(ts).Do(req)
	if err == nil || !strings.Contains(err.Error(), "remote error") {
		t.Fatalf("want the server's refusal, got %v", err)
	}
	if n := hellos.Load(); n != 1 {
		t.Fatalf("%d ClientHellos, want 1", n)
	}
}

// A handshake that fails on this side (an untrusted server certificate)
// is not a refusal of the offer: no second attempt.
func TestTransportLocalFailureNoRetry(t *testing.T) {
	ts, hellos := server(t, &tls.Config{})
	hc := &http.Client{Transport: Wrap(&http.Transport{TLSClientConfig: &tls.Config{}})}
	if _, err := hc.Get(ts.URL); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("want a certificate error, got %v", err)
	}
	if n := hellos.Load(); n != 1 {
		t.Fatalf("%d ClientHellos, want 1", n)
	}
}

func TestWrapLeavesBase(t *testing.T) {
	base := &http.Transport{TLSClientConfig: &tls.Config{}}
	tr := Wrap(base)
	if base.TLSClientConfig.CurvePreferences != nil {
		t.Fatal("Wrap changed the fallback's key exchanges")
	}
	if got := tr.pq.TLSClientConfig.CurvePreferences; len(got) != 1 || got[0] != tls.SecP256r1MLKEM768 {
		t.Fatalf("first attempt offers %v", got)
	}
}
