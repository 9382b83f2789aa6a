//go:build !windows

package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/loadgen"
	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/controlplane/store/storetest"
	"github.com/arcagent/arcagent/internal/testutil"
)

// replicaProc is one `arcserver serve --replica` process of the test.
type replicaProc struct {
	url  string
	cmd  *exec.Cmd
	logs *testutil.Buffer
	done chan struct{} // closed once the process has been waited for
}

// startReplicaProc runs `bin serve --replica` over dir and database on a
// free loopback port and waits until it answers /healthz.
func startReplicaProc(t *testing.T, bin, dir, database string, hc *http.Client) *replicaProc {
	t.Helper()
	addr := freePort(t)
	p := &replicaProc{url: "https://" + addr, logs: &testutil.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--data", dir, "--database", database, "--replica", "--listen", addr, "--log-level", "warn", "--log-format", "text")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	for range 200 {
		if resp, err := hc.Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("arcserver serve on %s exited: %s", addr, p.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("arcserver serve on %s did not come up: %s", addr, p.logs.String())
	return nil
}

// copyDataDir gives a replica its copy of a data directory's files (CA,
// TLS and protected-settings keys), as an operator copies DIR to every
// replica host; the database is PostgreSQL's, the lock is the host's own.
func copyDataDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{controlplane.CACertFile, controlplane.CAKeyFile, controlplane.TLSCertFile, controlplane.TLSKeyFile, controlplane.SettingsKeyFile} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// machineCall sends one request as machine m (a fresh assertion).
func machineCall(hc *http.Client, base, path string, m *loadgen.Machine) (int, []byte, error) {
	var j [16]byte
	rand.Read(j[:])
	now := time.Now()
	a, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{Issuer: m.ID, Subject: m.ID, Audience: jwt.ClaimStrings{m.Audience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: base64.RawURLEncoding.EncodeToString(j[:])}).SignedString(m.Key)
	if err != nil {
		return 0, nil, err
	}
	req, _ := http.NewRequest(http.MethodPost, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+a)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// TestReplicaFailover runs three `arcserver serve --replica` processes
// over one PostgreSQL database: a machine registered through A heartbeats
// through B and gets a token through C; then load over B and C, with B
// killed (SIGKILL) in the middle while machines register through A.
// Nothing acknowledged is lost: every heartbeat answered 200 is stored,
// no machine exists twice, every registration answered has exactly one
// row, and C still serves.
func TestReplicaFailover(t *testing.T) {
	database := storetest.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	work := t.TempDir()
	bin := filepath.Join(work, "arcserver")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build arcserver: %v\n%s", err, out)
	}
	dirA := filepath.Join(work, "a")
	out, err := exec.CommandContext(ctx, bin, "init", "--data", dirA, "--database", database, "--json").Output()
	var ini struct {
		OwnerToken string `json:"ownerToken"`
	}
	if err != nil || json.Unmarshal(out, &ini) != nil || ini.OwnerToken == "" {
		t.Fatalf("init: %v %s", err, out)
	}
	caPEM, err := os.ReadFile(filepath.Join(dirA, controlplane.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()

	// B and C get copies of A's directory (init made its protected-settings
	// key), as an operator makes them.
	a := startReplicaProc(t, bin, dirA, database, hc)
	dirB, dirC := filepath.Join(work, "b"), filepath.Join(work, "c")
	copyDataDir(t, dirA, dirB)
	copyDataDir(t, dirA, dirC)
	b := startReplicaProc(t, bin, dirB, database, hc)
	c := startReplicaProc(t, bin, dirC, database, hc)

	cfg := loadgen.Config{ServerURL: a.url, Token: ini.OwnerToken, CAPEM: caPEM, Machines: 200, Workers: 16}
	fleet, err := loadgen.Setup(ctx, cfg) // registered through A
	if err != nil {
		t.Fatal(err)
	}
	m0 := fleet.Machines[0]
	if st, body, err := machineCall(hc, b.url, "/v1/machines/"+m0.ID+"/heartbeat", m0); err != nil || st != http.StatusOK {
		t.Fatalf("heartbeat through B: %d %s %v", st, body, err)
	}
	if st, body, err := machineCall(hc, c.url, "/v1/machines/"+m0.ID+"/token?resource="+url.QueryEscape("https://vault.example"), m0); err != nil || st != http.StatusOK {
		t.Fatalf("token through C: %d %s %v", st, body, err)
	}

	// Load over B and C; B dies in the middle.
	var mu sync.Mutex
	acked := map[string]time.Time{} // machine id -> send time of its latest acknowledged heartbeat
	load := cfg
	load.ServerURL, load.Replicas, load.Duration, load.Workers = b.url, []string{c.url}, 6*time.Second, 32
	load.Acked = func(m *loadgen.Machine, sent time.Time) {
		mu.Lock()
		if sent.After(acked[m.ID]) {
			acked[m.ID] = sent
		}
		mu.Unlock()
	}
	resc := make(chan loadgen.Result, 1)
	go func() { resc <- fleet.Drive(ctx, load, 0) }()
	time.Sleep(2 * time.Second)
	regc := make(chan *loadgen.Fleet, 1)
	go func() { // registrations through A while B dies
		f, err := loadgen.Setup(ctx, loadgen.Config{ServerURL: a.url, Token: ini.OwnerToken, CAPEM: caPEM, Machines: 30, Workers: 8})
		if err != nil {
			t.Errorf("register through A while B dies: %v", err)
		}
		regc <- f
	}()
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.done
	res := <-resc
	during := <-regc
	if during == nil {
		t.FailNow()
	}
	t.Logf("load over B and C: %s", res)
	if res.Heartbeats == 0 || res.Errors == 0 {
		t.Fatalf("B was not killed mid-load: %d heartbeats, %d errors", res.Heartbeats, res.Errors)
	}

	st, err := store.Open(ctx, database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ms, err := st.ListMachines(ctx, store.MachineFilter{})
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{}  // machine id -> rows
	names := map[string]int{} // subscription/group/name -> rows
	last := map[string]time.Time{}
	for _, m := range ms {
		rows[m.ID]++
		names[m.SubscriptionID+"/"+m.ResourceGroup+"/"+m.Name]++
		last[m.ID] = m.LastHeartbeat
	}
	for k, n := range names {
		if n != 1 {
			t.Errorf("machine %s has %d rows", k, n)
		}
	}
	if want := len(fleet.Machines) + len(during.Machines); len(ms) != want {
		t.Errorf("%d machines stored, want %d (registered through A)", len(ms), want)
	}
	for _, m := range during.Machines {
		if rows[m.ID] != 1 {
			t.Errorf("machine %s registered through A while B died has %d rows, want 1", m.ID, rows[m.ID])
		}
	}
	if len(acked) < len(fleet.Machines)/2 {
		t.Fatalf("only %d of %d machines had a heartbeat acknowledged", len(acked), len(fleet.Machines))
	}
	lost := 0
	for id, sent := range acked {
		if last[id].Before(sent.Truncate(time.Millisecond)) {
			lost++
			if lost <= 5 {
				t.Errorf("machine %s: acknowledged heartbeat sent at %s, stored last heartbeat %s", id, sent.Format(time.RFC3339Nano), last[id].Format(time.RFC3339Nano))
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d acknowledged heartbeats lost", lost)
	}

	// C still serves: heartbeats and tokens (after the checks above, which
	// these heartbeats would mask).
	after := cfg
	after.ServerURL = c.url
	if r := fleet.Drive(ctx, after, 100); r.Errors != 0 || r.Heartbeats != 100 {
		t.Fatalf("C after B died: %s (%s)", r, r.FirstError)
	}
	if st, body, err := machineCall(hc, c.url, "/v1/machines/"+m0.ID+"/token?resource="+url.QueryEscape("https://vault.example"), m0); err != nil || st != http.StatusOK {
		t.Fatalf("token through C after B died: %d %s %v", st, body, err)
	}
}
