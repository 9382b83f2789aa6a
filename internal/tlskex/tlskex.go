// Package tlskex holds the agent's TLS key-exchange policy for its HTTPS
// traffic: offer only the hybrid post-quantum SecP256r1MLKEM768 (ML-KEM-768
// with ECDH on P-256, both NIST-approved), and fall back to Go's default
// key exchanges, which put X25519MLKEM768 first, for a server that refuses
// it.
//
// Both hybrids protect recorded traffic against a future quantum computer.
// The P-256 one costs the control plane less per handshake: Go computes a
// P-256 key share from a precomputed table, while X25519's costs a whole
// scalar multiplication, and a fleet's agents handshake on almost every
// heartbeat. Go's client always sends its share for X25519MLKEM768 when
// that is enabled, so preferring the P-256 hybrid means offering it alone;
// the fallback keeps the agent working through a TLS terminator that lacks
// it, and never goes below Go's defaults.
package tlskex

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
)

// Preferred is the CurvePreferences of the first attempt.
var Preferred = []tls.CurveID{tls.SecP256r1MLKEM768}

// maxHosts bounds the hosts remembered as refusing Preferred.
const maxHosts = 256

// Transport sends each request with Preferred first and, to a host that
// refused Preferred in the TLS handshake, with Go's defaults.
type Transport struct {
	pq, std *http.Transport

	mu       sync.Mutex
	fallback map[string]bool // host:port that refused Preferred
}

// Wrap returns a Transport over base: base as it is for the fallback, and a
// clone of it whose TLS configuration offers Preferred only. base must not
// be changed afterwards.
func Wrap(base *http.Transport) *Transport {
	pq := base.Clone()
	if pq.TLSClientConfig == nil {
		pq.TLSClientConfig = &tls.Config{}
	}
	pq.TLSClientConfig.CurvePreferences = Preferred
	return &Transport{pq: pq, std: base, fallback: map[string]bool{}}
}

// RoundTrip implements http.RoundTripper. A request to a host that ends the
// handshake with an alert (a refusal of the offer, as no request was sent
// yet) is sent again with Go's defaults when its body can be replayed; the
// host is remembered once that succeeds.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Host
	if req.URL.Scheme != "https" || t.usesFallback(host) {
		return t.std.RoundTrip(req)
	}
	var hs handshakeErr
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) { hs.set(err) },
	})
	resp, err := t.pq.RoundTrip(req.WithContext(ctx))
	if err == nil || !refused(hs.get()) {
		return resp, err
	}
	retry := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, err
		}
		body, berr := req.GetBody()
		if berr != nil {
			return nil, err
		}
		retry.Body = body
	}
	resp, err2 := t.std.RoundTrip(retry)
	if err2 != nil {
		return nil, err2
	}
	t.remember(host)
	slog.Info("the server refused the SecP256r1MLKEM768 key exchange; using Go's default key exchanges with it", "host", host, "refusal", hs.get().Error())
	return resp, nil
}

// CloseIdleConnections closes both transports' idle connections.
func (t *Transport) CloseIdleConnections() {
	t.pq.CloseIdleConnections()
	t.std.CloseIdleConnections()
}

func (t *Transport) usesFallback(host string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fallback[host]
}

func (t *Transport) remember(host string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.fallback) >= maxHosts {
		clear(t.fallback)
	}
	t.fallback[host] = true
}

// refused reports whether a handshake error is the peer's fatal alert
// (net/http's "remote error: tls: …"), not a local verification failure
// or a network error.
func refused(err error) bool {
	var oe *net.OpError
	return err != nil && errors.As(err, &oe) && oe.Op == "remote error"
}

// handshakeErr is the first handshake error of a request's dials (the
// trace hook runs on the transport's dialing goroutine).
type handshakeErr struct {
	mu  sync.Mutex
	err error
}

func (h *handshakeErr) set(err error) {
	if err == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.err = err
	}
}

func (h *handshakeErr) get() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}
