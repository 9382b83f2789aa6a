//go:build !windows

package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arcagent/arcagent/controlplane/store/storetest"
	"github.com/arcagent/arcagent/errcode"
)

// TestPostgresLifecycle moves a SQLite data directory into PostgreSQL with
// migrate, serves it with --database, and runs the offline verbs on it;
// the database password never reaches the output or the log.
func TestPostgresLifecycle(t *testing.T) {
	dsn := storetest.Postgres(t)
	secret := ""
	if i, j := strings.Index(dsn, "://"), strings.Index(dsn, "@"); i >= 0 && j > i {
		if k := strings.Index(dsn[i+3:j], ":"); k >= 0 {
			secret = dsn[i+3+k : j+1] // ":password@"
		}
	}
	noSecret := func(what, s string) {
		t.Helper()
		if secret != "" && strings.Contains(s, secret) {
			t.Errorf("%s shows the database password: %s", what, s)
		}
	}
	dir := filepath.Join(t.TempDir(), "data")
	code, out, stderr := runCLI(t, "init", "--data", dir, "--json")
	var res struct {
		OwnerToken string `json:"ownerToken"`
		CACert     string `json:"caCert"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("init: %d %s %s", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "migrate", "--data", dir, "--database", dsn)
	if code != 0 || !strings.Contains(out, "api_tokens") || !strings.Contains(out, "signing_keys") {
		t.Fatalf("migrate: %d %s %s", code, out, stderr)
	}
	noSecret("migrate", out+stderr)
	code, out, stderr = runCLI(t, "migrate", "--data", dir, "--database", dsn)
	if code != errcode.ExitUsage || !strings.Contains(stderr, "ARC0651") {
		t.Fatalf("second migrate: %d %s %s", code, out, stderr)
	}
	noSecret("second migrate", out+stderr)
	if code, _, stderr := runCLI(t, "init", "--data", filepath.Join(t.TempDir(), "d2"), "--database", dsn); code != errcode.ExitUsage || !strings.Contains(stderr, "ARC0654") {
		t.Fatalf("init of an initialised database: %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "backup", "--data", dir, "--database", dsn, "--to", filepath.Join(t.TempDir(), "b")); code != errcode.ExitUsage || !strings.Contains(stderr, "pg_dump") {
		t.Fatalf("backup of PostgreSQL: %d %s", code, stderr)
	}
	// The SQLite file is out of the way: what serve finds is PostgreSQL's.
	if err := os.Rename(filepath.Join(dir, "arcserver.db"), filepath.Join(dir, "old.db")); err != nil {
		t.Fatal(err)
	}

	addr := freePort(t)
	done := make(chan int, 1)
	var serveErr bytes.Buffer
	go func() {
		var o bytes.Buffer
		done <- run([]string{"serve", "--data", dir, "--database", dsn, "--listen", addr, "--log-format", "text"}, strings.NewReader(""), &o, &serveErr)
	}()
	ca, _ := os.ReadFile(res.CACert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(path, token string) int {
		req, _ := http.NewRequest("GET", "https://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	up := false
	for i := 0; i < 100 && !up; i++ {
		if up = get("/v1/whoami", res.OwnerToken) == 200; !up {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !up {
		t.Fatalf("server on PostgreSQL did not come up with the migrated Owner token: %s", serveErr.String())
	}
	if code, out, stderr := runCLI(t, "keys", "rotate", "--data", dir, "--database", dsn); code != 0 || !strings.Contains(out, "signs tokens") {
		t.Fatalf("rotate: %d %s %s", code, out, stderr)
	}
	t.Setenv("ARCSERVER_DATABASE", dsn) // the URL from the environment
	code, out, stderr = runCLI(t, "tokens", "create", "--data", dir, "--json")
	var rec struct{ Token string }
	if code != 0 || json.Unmarshal([]byte(out), &rec) != nil {
		t.Fatalf("tokens create: %d %s %s", code, out, stderr)
	}
	if c := get("/v1/subscriptions", rec.Token); c != 200 {
		t.Fatalf("recovery token made in PostgreSQL: %d", c)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d: %s", code, serveErr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after SIGTERM")
	}
	noSecret("the serve log", serveErr.String())
	if !strings.Contains(serveErr.String(), "xxxxx") {
		t.Errorf("the serve log does not name the (redacted) database: %s", serveErr.String())
	}

	// init straight into a fresh PostgreSQL database.
	dsn2 := storetest.Postgres(t)
	code, out, stderr = runCLI(t, "init", "--data", filepath.Join(t.TempDir(), "d3"), "--database", dsn2, "--json")
	var res2 struct{ Database string }
	if code != 0 || json.Unmarshal([]byte(out), &res2) != nil || !strings.HasPrefix(res2.Database, "postgres") {
		t.Fatalf("init --database: %d %s %s", code, out, stderr)
	}
	noSecret("init", out+stderr)
}
