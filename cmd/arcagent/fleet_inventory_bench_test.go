//go:build !windows

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the benchmark seeds the server's database directly

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// benchFleet is how many machines BenchmarkFleetCurrency100k checks.
const benchFleet = 100_000

// seedFleet writes n machines straight into a control plane's database
// in one transaction (registering them through the API would take
// minutes), with an inventory and a status report of two extensions each,
// and the same fleet as an inventory file; it returns the file's path.
func seedFleet(b *testing.B, dataDir string, n int) string {
	b.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, controlplane.DBFile)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	const sub = "6f1c1f3e-1111-4222-8333-944444444444"
	ins, err := tx.Prepare(`INSERT INTO machines (id, name, name_key, subscription_id, resource_group, rg_key, resource_id, public_key, key_thumbprint, inventory, tags, agent_version, created_at, last_heartbeat, onboarding_id, desired_state, desired_etag, status, status_at)
		VALUES (?, ?, ?, ?, 'bench', 'bench', ?, '', '', ?, '{}', ?, ?, ?, '', '{}', '""', ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	hb, err := tx.Prepare(`INSERT INTO machine_heartbeats (machine_id, last_heartbeat, agent_version) VALUES (?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	agents := []string{"1.29.02300.1", "1.28.02260.736", "1.27.02100.100"}
	monitors := []string{"1.2.0", "1.1.0", "1.0.0"}
	now := time.Now().UnixMilli()
	file := filepath.Join(b.TempDir(), "fleet.json")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("[\n")
	for i := range n {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		name := fmt.Sprintf("m%06d", i)
		agent, mon := agents[i%3], monitors[(i/3)%3]
		inv := `{"hostname":"` + name + `","osType":"linux","osName":"Debian GNU/Linux","osVersion":"13","kernel":"6.12.0-1-amd64","arch":"amd64","agentVersion":"` + agent + `"}`
		st := `{"extensions":[{"name":"monitor","publisher":"Contoso.Monitoring","type":"StatusReporter","version":"` + mon + `","state":"Succeeded"},` +
			`{"name":"scripts","publisher":"Contoso.Automation","type":"ScriptRunner","version":"2.0.1","state":"Succeeded"}],"guestConfiguration":[]}`
		if _, err := ins.Exec(id, name, name, sub, "/subscriptions/"+sub+"/resourceGroups/bench/providers/Microsoft.HybridCompute/machines/"+name, inv, agent, now, now, st, now); err != nil {
			b.Fatal(err)
		}
		if _, err := hb.Exec(id, now, agent); err != nil {
			b.Fatal(err)
		}
		sep := ",\n"
		if i == n-1 {
			sep = "\n"
		}
		fmt.Fprintf(w, `{"name":%q,"agent":%q,"extensions":[{"name":"Contoso.Monitoring.StatusReporter","version":%q},{"name":"Contoso.Automation.ScriptRunner","version":"2.0.1"}]}%s`, name, agent, mon, sep)
	}
	w.WriteString("]\n")
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return file
}

// BenchmarkFleetCurrency100k runs `arcagent fleet currency -o json` (in
// process, output discarded) for 100,000 machines read from a control
// plane (GET /v1/inventory over loopback TLS, conversion, currency) and
// from an inventory file of the same machines, in the same run; "list" is
// GET /v1/inventory alone (server and client, decoded, no check) and
// "list-raw" the server's part (the body read and discarded).
func BenchmarkFleetCurrency100k(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	res, err := controlplane.Init(ctx, controlplane.InitOptions{DataDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	file := seedFleet(b, dir, benchFleet)
	sctx, cancel := context.WithCancel(ctx)
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- controlplane.Serve(sctx, controlplane.ServeOptions{DataDir: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), Ready: func(a net.Addr) { ready <- a }})
	}()
	var url string
	select {
	case a := <-ready:
		url = "https://" + a.String()
	case err := <-done:
		b.Fatal(err)
	}
	defer func() { cancel(); <-done }()
	ca, err := os.ReadFile(filepath.Join(dir, controlplane.CACertFile))
	if err != nil {
		b.Fatal(err)
	}
	fleetLogin(b, url, ca, res.OwnerToken)
	cat, trust := currencyCatalog(b, 3)
	src := []string{"--catalog", cat, "--trust-dir", trust, "-o", "json"}
	currency := func(b *testing.B, args ...string) {
		for b.Loop() {
			var errb strings.Builder
			if code := run(append(append([]string{"fleet", "currency"}, args...), src...), strings.NewReader(""), io.Discard, &errb); code != 0 {
				b.Fatalf("fleet currency: exit %d %s", code, errb.String())
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchFleet, "ns/machine")
	}
	b.Run("server", func(b *testing.B) { currency(b) })
	b.Run("file", func(b *testing.B) { currency(b, "--inventory", file) })
	b.Run("list", func(b *testing.B) {
		c, err := cloud.New(url, cloud.Options{CAPEM: ca, Timeout: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		op := c.Operator(res.OwnerToken)
		for b.Loop() {
			n := 0
			if err := op.EachInventory(ctx, "", "", func(*apiv1.MachineInventory) error { n++; return nil }); err != nil || n != benchFleet {
				b.Fatalf("list: %d machines, %v", n, err)
			}
		}
	})
	// The server's share: the body read and thrown away (so the client
	// allocates next to nothing and B/op is the server's).
	b.Run("list-raw", func(b *testing.B) {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
		var size int64
		for b.Loop() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/inventory", nil)
			req.Header.Set("Authorization", "Bearer "+res.OwnerToken)
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			size, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("GET /v1/inventory: HTTP %d, %v", resp.StatusCode, err)
			}
		}
		b.ReportMetric(float64(size)/benchFleet, "bytes/machine")
	})
}
