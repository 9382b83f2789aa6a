//go:build !windows

package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arcagent/arcagent/errcode"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestLifecycle runs init, serve, backup and keys rotate through the CLI,
// then stops the server with a real SIGTERM.
func TestLifecycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	code, out, stderr := runCLI(t, "init", "--data", dir, "--json")
	if code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	var res struct {
		OwnerToken string `json:"ownerToken"`
		CACert     string `json:"caCert"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || !strings.HasPrefix(res.OwnerToken, "arcp_") {
		t.Fatalf("init output %q: %v", out, err)
	}
	if code, _, stderr := runCLI(t, "init", "--data", dir); code != errcode.ExitUsage || !strings.Contains(stderr, "already initialised") {
		t.Fatalf("second init: %d %s", code, stderr)
	}

	addr := freePort(t)
	done := make(chan int, 1)
	var serveErr bytes.Buffer
	go func() {
		var o bytes.Buffer
		done <- run([]string{"serve", "--data", dir, "--listen", addr, "--log-format", "text"}, strings.NewReader(""), &o, &serveErr)
	}()
	ca, _ := os.ReadFile(res.CACert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var up bool
	for i := 0; i < 100 && !up; i++ {
		req, _ := http.NewRequest("GET", "https://"+addr+"/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+res.OwnerToken)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			up = resp.StatusCode == 200
		}
		if !up {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !up {
		t.Fatalf("server did not come up: %s", serveErr.String())
	}
	backup := filepath.Join(t.TempDir(), "b.db")
	if code, _, stderr := runCLI(t, "backup", "--data", dir, "--to", backup); code != 0 {
		t.Fatalf("backup while serving: %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "backup", "--data", dir, "--to", backup); code != errcode.ExitUsage {
		t.Fatalf("backup over an existing file: %d %s", code, stderr)
	}
	if code, out, stderr := runCLI(t, "keys", "rotate", "--data", dir); code != 0 || !strings.Contains(out, "is published") {
		t.Fatalf("rotate: %d %s %s", code, out, stderr)
	}

	// A recovery token made straight in the database works at once.
	code, out, stderr = runCLI(t, "tokens", "create", "--data", dir, "--json")
	var rec struct{ Token string }
	if code != 0 || json.Unmarshal([]byte(out), &rec) != nil || !strings.HasPrefix(rec.Token, "arcp_") {
		t.Fatalf("tokens create: %d %s %s", code, out, stderr)
	}
	req, _ := http.NewRequest("GET", "https://"+addr+"/v1/subscriptions", nil)
	req.Header.Set("Authorization", "Bearer "+rec.Token)
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("recovery token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d after SIGTERM: %s", code, serveErr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after SIGTERM")
	}
	if !strings.Contains(serveErr.String(), "arcserver stopped") {
		t.Errorf("no shutdown log: %s", serveErr.String())
	}
	if strings.Contains(serveErr.String(), res.OwnerToken) {
		t.Error("the Owner token reached the log")
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--data", filepath.Join(dir, "missing")}, "not an initialised data directory"},
		{[]string{"serve", "--data", dir, "--tls-cert", "x.pem"}, "together"},
		{[]string{"backup", "--data", dir}, "--to"},
		{[]string{"init"}, "--data"},
		{[]string{"serve", "--bogus"}, "unknown flag"},
		{[]string{"serve", "--data", dir, "--log-level", "loud"}, "log-level"},
	} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != errcode.ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q (want 2 and %q)", tc.args, code, stderr, tc.want)
		}
		if !strings.Contains(stderr, "what to do:") {
			t.Errorf("%v: no remedy in %q", tc.args, stderr)
		}
	}
}

func TestVersionFlagAndSuggestions(t *testing.T) {
	for _, tc := range [][2][]string{{{"--version"}, {"version"}}, {{"--version", "-j"}, {"version", "-j"}}} {
		c1, flag, _ := runCLI(t, tc[0]...)
		c2, cmd, _ := runCLI(t, tc[1]...)
		if c1 != 0 || c2 != 0 || flag != cmd || flag == "" {
			t.Errorf("%v: %d %q; %v: %d %q", tc[0], c1, flag, tc[1], c2, cmd)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{{[]string{"srve"}, `did you mean "serve"`}, {[]string{"keys", "rotat"}, `did you mean "rotate"`}} {
		code, _, stderr := runCLI(t, tc.args...)
		if code != errcode.ExitUsage || !strings.Contains(stderr, "ARC0001") || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
