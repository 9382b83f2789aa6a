package controlplane

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/store"
)

// A panicking handler answers a JSON 500 and logs the panic; the process
// survives.
func TestPanicRecovery(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewJSONHandler(&logs, nil)), mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/boom", nil))
	var ae apiv1.Error
	if w.Code != 500 || json.Unmarshal(w.Body.Bytes(), &ae) != nil || ae.Code != string(apiv1.CodeServerError) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if strings.Contains(ae.Message, "kaboom") || !strings.Contains(logs.String(), "kaboom") {
		t.Fatalf("panic detail belongs in the log only: %q / %q", ae.Message, logs.String())
	}
}

// Serve uses --tls-cert/--tls-key when given.
func TestServeOwnCertificate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := Init(ctx, InitOptions{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "own"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := encodeKey(key)
	certFile, keyFile := filepath.Join(t.TempDir(), "own.crt"), filepath.Join(t.TempDir(), "own.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, kp, 0o600)

	sctx, cancel := context.WithCancel(ctx)
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(sctx, ServeOptions{DataDir: dir, Listen: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile,
			Logger: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)), Ready: func(a net.Addr) { ready <- a }})
	}()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatalf("the server does not present the given certificate: %v", err)
	}
	resp.Body.Close()
	// Plain HTTP is not served.
	if r, err := http.Get("http://" + addr.String() + "/healthz"); err == nil && r.StatusCode == 200 {
		t.Fatal("plain HTTP answered")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// fakeHBStore records heartbeat batches for the batcher test.
type fakeHBStore struct {
	storeStub
	mu    sync.Mutex
	count int
	delay time.Duration
}

type storeStub struct{ store.Store }

func (f *fakeHBStore) RecordHeartbeats(_ context.Context, hbs []store.Heartbeat) error {
	time.Sleep(f.delay)
	f.mu.Lock()
	f.count += len(hbs)
	f.mu.Unlock()
	return nil
}

// The batcher answers every heartbeat exactly once, also when it stops
// while heartbeats are queued (a regression: the shutdown drain once
// re-sent the previous batch and deadlocked).
func TestHeartbeatBatcherStop(t *testing.T) {
	for round := 0; round < 20; round++ {
		st := &fakeHBStore{delay: time.Millisecond}
		b := newHeartbeatBatcher(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
		go b.run()
		var wg sync.WaitGroup
		var ok, stopped atomic.Int64
		var gone atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				c := context.Background()
				if i%2 == 0 {
					c = ctx // these callers go away while waiting, as clients do
				}
				err := b.record(c, store.Heartbeat{MachineID: "m"})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, errShuttingDown):
					stopped.Add(1)
				case errors.Is(err, context.Canceled):
					gone.Add(1)
				default:
					t.Error(err)
				}
			}(i)
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		cancel()
		time.Sleep(2 * time.Millisecond)
		done := make(chan struct{})
		go func() { b.stop(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("stop hung")
		}
		wg.Wait()
		if ok.Load()+stopped.Load()+gone.Load() != 200 || int64(st.count) < ok.Load() {
			t.Fatalf("ok %d stopped %d written %d", ok.Load(), stopped.Load(), st.count)
		}
	}
}
