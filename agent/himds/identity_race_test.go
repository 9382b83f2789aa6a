//go:build !windows

package himds

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// A token fetch for machine m-1 that completes after a reload to m-2 must
// not land in the cache and be served to m-2's callers.
func TestReconnectNeverServesThePreviousIdentitysToken(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	cp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/token"):
			id := strings.Split(r.URL.Path, "/")[3]
			if id == "m-1" {
				arrived <- struct{}{}
				<-release
			}
			exp := time.Now().Add(time.Hour).Unix()
			_ = json.NewEncoder(w).Encode(apiv1.TokenResponse{AccessToken: "token-of-" + id, ExpiresOn: strconv.FormatInt(exp, 10), TokenType: "Bearer", Resource: r.URL.Query().Get("resource")})
		default:
			_ = json.NewEncoder(w).Encode(apiv1.HeartbeatResponse{Status: apiv1.StatusConnected})
		}
	}))
	defer cp.Close()
	l := layout.New(t.TempDir())
	for _, d := range []string{l.CertsDir(), l.TokensDir(), l.RunDir()} {
		_ = os.MkdirAll(d, 0o750)
	}
	key, _ := cloud.GenerateKey()
	kp, _ := cloud.MarshalPrivateKey(key)
	_ = os.WriteFile(l.MachineKey(), kp, 0o600)
	_ = os.WriteFile(l.ServerCA(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cp.Certificate().Raw}), 0o644)
	write := func(id string) {
		if err := WriteAgentConfig(l, &AgentConfig{MachineID: id, Server: cp.URL, Audience: "aud", Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	write("m-1")
	svc, err := New(Options{Layout: l})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(svc.Handler())
	defer api.Close()
	get := func() string {
		req, _ := http.NewRequest("GET", api.URL+tokenPath, nil)
		req.Header.Set("Metadata", "true")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		realm := strings.TrimPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=")
		sec, _ := os.ReadFile(realm)
		req.Header.Set("Authorization", "Basic "+string(sec))
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tr tokenReply
		_ = json.NewDecoder(resp.Body).Decode(&tr)
		return tr.AccessToken
	}
	done := make(chan string)
	go func() { done <- get() }()
	<-arrived // m-1's fetch is in flight
	// disconnect + connect as a new machine; HIMDS reloads (drops the cache)
	write("m-2")
	if err := svc.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(release)
	t.Logf("in-flight caller got %q", <-done)
	got := get()
	t.Logf("caller after the reload to m-2 got %q", got)
	if got != "token-of-m-2" {
		t.Errorf("machine m-2 was served %q: a token of the previous identity", got)
	}
}
