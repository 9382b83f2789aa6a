package controlplane_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/golang-jwt/jwt/v5"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/controlplane/store/storetest"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/testutil"
)

// replicaBackends are the stores the replica tests run on: the same
// table on each (PostgreSQL skips without ARCSERVER_TEST_POSTGRES, and
// fails under CI=true).
var replicaBackends = []struct {
	name     string
	database func(testing.TB) string // "" is the data directory's SQLite file
}{
	{"SQLite", func(testing.TB) string { return "" }},
	{"PostgreSQL", storetest.Postgres},
}

// replicasFunc starts n replicas over one store (see newReplicas).
type replicasFunc func(t *testing.T, n int) []*env

// TestReplicas runs 2–3 Servers over one store in one process, on every
// backend.
func TestReplicas(t *testing.T) {
	cases := []struct {
		name string
		f    func(*testing.T, replicasFunc)
	}{
		{"RegisterHeartbeatToken", testReplicasRegisterHeartbeatToken},
		{"RefuseReplay", testReplicasRefuseReplay},
		{"DeleteSeenElsewhere", testReplicasDeleteSeenElsewhere},
		{"DesiredStateETag", testReplicasDesiredStateETag},
		{"KeyRotation", testReplicasKeyRotation},
		{"OneUseCredential", testReplicasOneUseCredential},
		{"OtherSettingsKeyRefused", testReplicaWithOtherSettingsKeyRefused},
		{"KeepLastOwner", testReplicasKeepLastOwner},
		{"SharedSessionTickets", testReplicasSharedSessionTickets},
	}
	for _, b := range replicaBackends {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					tc.f(t, func(t *testing.T, n int) []*env { return newReplicas(t, b.database(t), n) })
				})
			}
		})
	}
}

// newReplicas starts n arcserver replicas over ONE store (the PostgreSQL
// database at database, or a data directory's SQLite file when it is
// ""), each with its own memory and loopback TLS port, as separate
// processes over one database would be. They share a clock and the data
// directory's files (certificates, protected-settings key), which
// replicas are given copies of.
func newReplicas(t *testing.T, database string, n int) []*env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	res, err := controlplane.Init(ctx, controlplane.InitOptions{DataDir: dir, Database: database})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	st, err := controlplane.OpenStoreAt(ctx, dir, database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return startReplicas(t, st, dir, res.OwnerToken, n)
}

func startReplicas(t *testing.T, st store.Store, dir, ownerToken string, n int) []*env {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	caPEM, err := os.ReadFile(filepath.Join(dir, controlplane.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, controlplane.TLSCertFile), filepath.Join(dir, controlplane.TLSKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []*env
	for range n {
		e := &env{t: t, dir: dir, st: st, clock: clk, caPEM: caPEM, ownerT: ownerToken, logs: &testutil.Buffer{}}
		log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		e.srv, err = controlplane.New(ctx, controlplane.Config{Store: st, Now: clk.Now, Logger: log, DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		e.url = "https://" + ln.Addr().String()
		e.srv.SetIssuer(e.url)
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- controlplane.RunHTTPS(sctx, e.srv, ln, cert, 5*time.Second, log, nil) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		e.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		if e.client, err = cloud.New(e.url, cloud.Options{HTTPClient: e.hc}); err != nil {
			t.Fatal(err)
		}
		e.owner = e.client.Operator(ownerToken)
		// Cleanups run last first: close the client's connections before
		// the server shuts down (an unused dialed one would hold it 5 s).
		t.Cleanup(e.hc.CloseIdleConnections)
		out = append(out, e)
	}
	return out
}

// on returns tm's machine client talking to replica e.
func on(e *env, tm testMachine) *cloud.Machine {
	m := e.client.Machine(tm.reg.MachineID, tm.reg.Audience, tm.key)
	m.Now = e.clock.Now
	return m
}

// A machine registered through A heartbeats through B and gets a token
// through C; every replica's JWKS validates the token.
func testReplicasRegisterHeartbeatToken(t *testing.T, newReplicas replicasFunc) {
	r := newReplicas(t, 3)
	a, b, c := r[0], r[1], r[2]
	ctx := context.Background()
	sub := a.scope("prod", "rg1")
	tm := a.mustRegister(sub, "rg1", "web01")
	if _, err := on(b, tm).Heartbeat(ctx, apiv1.HeartbeatRequest{AgentVersion: "9.9.9"}); err != nil {
		t.Fatalf("heartbeat through B: %v", err)
	}
	tok, err := on(c, tm).Token(ctx, "https://vault.example")
	if err != nil {
		t.Fatalf("token through C: %v", err)
	}
	for _, e := range r {
		_, set := fetchJWKS(t, e)
		if _, err := verify(t, set, tok.AccessToken, josejwt.Expected{Subject: tm.reg.ResourceID, Time: e.clock.Now()}); err != nil {
			t.Fatalf("%s's JWKS does not validate C's token: %v", e.url, err)
		}
	}
	m, err := a.owner.GetMachine(ctx, tm.reg.MachineID)
	if err != nil || m.AgentVersion != "9.9.9" {
		t.Fatalf("A does not see B's heartbeat: %+v %v", m, err)
	}
}

// An assertion used on one replica is refused on every other.
func testReplicasRefuseReplay(t *testing.T, newReplicas replicasFunc) {
	r := newReplicas(t, 3)
	sub := r[0].scope("prod", "rg1")
	tm := r[0].mustRegister(sub, "rg1", "web01")
	id, now := tm.reg.MachineID, r[0].clock.Now()
	tok := sign(t, tm.key, jwt.RegisteredClaims{Issuer: id, Subject: id, Audience: jwt.ClaimStrings{tm.reg.Audience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: "once"})
	if st, _, _, _ := r[0].raw("POST", "/v1/machines/"+id+"/heartbeat", tok, "", nil); st != 200 {
		t.Fatalf("first use on A: %d", st)
	}
	for _, e := range r {
		st, _, ae, _ := e.raw("POST", "/v1/machines/"+id+"/heartbeat", tok, "", nil)
		if st != http.StatusUnauthorized || ae.Code != string(apiv1.CodeAssertionInvalid) {
			t.Fatalf("replay on %s: %d %s, want 401 %s", e.url, st, ae.Code, apiv1.CodeAssertionInvalid)
		}
	}
	// Concurrently on all replicas: exactly one is accepted.
	tok2 := sign(t, tm.key, jwt.RegisteredClaims{Issuer: id, Subject: id, Audience: jwt.ClaimStrings{tm.reg.Audience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), ID: "race"})
	var ok atomic.Int32
	var wg sync.WaitGroup
	for _, e := range r {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if st, _, _, _ := e.raw("POST", "/v1/machines/"+id+"/heartbeat", tok2, "", nil); st == 200 {
					ok.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d replicas accepted one assertion, want exactly 1", ok.Load())
	}
}

// A machine deleted through A stops authenticating on B within the cache
// bound (one second), and B does not cache it again.
func testReplicasDeleteSeenElsewhere(t *testing.T, newReplicas replicasFunc) {
	r := newReplicas(t, 2)
	a, b := r[0], r[1]
	ctx := context.Background()
	sub := a.scope("prod", "rg1")
	tm := a.mustRegister(sub, "rg1", "web01")
	mb := on(b, tm)
	if _, err := mb.Heartbeat(ctx, apiv1.HeartbeatRequest{}); err != nil { // B caches it
		t.Fatal(err)
	}
	if err := a.owner.DeleteMachine(ctx, tm.reg.MachineID); err != nil {
		t.Fatal(err)
	}
	a.clock.Advance(time.Second)
	_, err := mb.Heartbeat(ctx, apiv1.HeartbeatRequest{})
	wantCode(t, err, 401, apiv1.CodeAssertionInvalid, "deleted")
	if _, err := on(a, tm).Heartbeat(ctx, apiv1.HeartbeatRequest{}); err == nil {
		t.Fatal("A still authenticates the machine it deleted")
	}
}

// A desired state changed through A is named by B's heartbeat response
// (within the cache bound).
func testReplicasDesiredStateETag(t *testing.T, newReplicas replicasFunc) {
	r := newReplicas(t, 2)
	a, b := r[0], r[1]
	ctx := context.Background()
	sub := a.scope("prod", "rg1")
	tm := a.mustRegister(sub, "rg1", "web01")
	mb := on(b, tm)
	hb0, err := mb.Heartbeat(ctx, apiv1.HeartbeatRequest{})
	if err != nil {
		t.Fatal(err)
	}
	a.publish(statusReporter)
	if _, err := a.owner.SetExtension(ctx, tm.reg.MachineID, "monitor", apiv1.SetExtensionRequest{Publisher: statusReporter.Publisher, Type: statusReporter.Type, Version: statusReporter.Version}); err != nil {
		t.Fatal(err)
	}
	_, etag, err := on(a, tm).DesiredState(ctx, "")
	if err != nil || etag == hb0.DesiredStateETag {
		t.Fatalf("the assignment did not change the ETag (%q, %v)", etag, err)
	}
	a.clock.Advance(time.Second)
	hb1, err := mb.Heartbeat(ctx, apiv1.HeartbeatRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if hb1.DesiredStateETag != etag {
		t.Fatalf("B's heartbeat names ETag %s, want %s (set through A)", hb1.DesiredStateETag, etag)
	}
}

// A key rotated on A is published by B before A signs with it, and the
// old key stays published on both until its tokens have expired.
func testReplicasKeyRotation(t *testing.T, newReplicas replicasFunc) {
	r := newReplicas(t, 2)
	a, b := r[0], r[1]
	ctx := context.Background()
	sub := a.scope("prod", "rg1")
	tm := a.mustRegister(sub, "rg1", "web01")
	kidOf := func(tok string) string {
		t.Helper()
		p, err := josejwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		return p.Headers[0].KeyID
	}
	kids := func(e *env) map[string]bool {
		_, set := fetchJWKS(t, e)
		m := map[string]bool{}
		for _, k := range set.Keys {
			m[k.KeyID] = true
		}
		return m
	}
	oldTok, err := on(a, tm).Token(ctx, "https://vault.example")
	if err != nil {
		t.Fatal(err)
	}
	oldKid := kidOf(oldTok.AccessToken)
	newKid, err := a.srv.RotateKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// B's reload tick (within KeyReload) publishes the new key; neither
	// replica signs with it yet.
	a.clock.Advance(time.Minute)
	if err := b.srv.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if k := kids(b); !k[newKid] || !k[oldKid] {
		t.Fatalf("B publishes %v, want both %s and %s", k, oldKid, newKid)
	}
	for _, e := range r {
		tok, err := on(e, tm).Token(ctx, "https://vault.example")
		if err != nil {
			t.Fatal(err)
		}
		if got := kidOf(tok.AccessToken); got != oldKid {
			t.Fatalf("%s signs with %s inside the pre-publication period, want %s", e.url, got, oldKid)
		}
	}
	// After two reload intervals the new key signs, on every replica.
	a.clock.Advance(time.Minute)
	for _, e := range r {
		if err := e.srv.ReloadKeys(ctx); err != nil {
			t.Fatal(err)
		}
		tok, err := on(e, tm).Token(ctx, "https://vault.example")
		if err != nil {
			t.Fatal(err)
		}
		if got := kidOf(tok.AccessToken); got != newKid {
			t.Fatalf("%s signs with %s after pre-publication, want %s", e.url, got, newKid)
		}
		if !kids(e)[oldKid] {
			t.Fatalf("%s dropped the old key while its tokens live", e.url)
		}
	}
	// Once the old key's last token has expired (token lifetime + skew
	// after it stopped signing), it is dropped.
	a.clock.Advance(time.Hour + 6*time.Minute)
	for _, e := range r {
		if err := e.srv.ReloadKeys(ctx); err != nil {
			t.Fatal(err)
		}
		if k := kids(e); k[oldKid] || !k[newKid] {
			t.Fatalf("%s publishes %v after the old tokens expired, want only %s", e.url, k, newKid)
		}
	}
}

// Two replicas registering with a one-use credential at once: exactly one
// succeeds, and no machine is created twice.
func testReplicasOneUseCredential(t *testing.T, newReplicas replicasFunc) {
	r := newReplicas(t, 2)
	sub := r[0].scope("prod", "rg1")
	for round := range 5 {
		cred := r[0].onboarding(sub, "rg1", 1, "1h")
		var ok atomic.Int32
		var wg sync.WaitGroup
		for i, e := range r {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := e.register(cred.Secret, "host-"+string(rune('a'+round))+string(rune('0'+i)))
				if err == nil {
					ok.Add(1)
				} else if cloud.CodeOf(err) != apiv1.CodeOnboardingInvalid {
					t.Errorf("registration failed with %v, want %s", err, apiv1.CodeOnboardingInvalid)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("round %d: %d registrations succeeded with a one-use credential", round, ok.Load())
		}
	}
	ms, err := r[1].st.ListMachines(context.Background(), store.MachineFilter{})
	if err != nil || len(ms) != 5 {
		t.Fatalf("%d machines, want 5 (%v)", len(ms), err)
	}
}

// A replica whose protected-settings key differs from the one the others
// use refuses to start.
func testReplicaWithOtherSettingsKeyRefused(t *testing.T, newReplicas replicasFunc) {
	r := newReplicas(t, 1)
	other := t.TempDir()
	k := make([]byte, 32)
	k[0] = 1
	if err := os.WriteFile(filepath.Join(other, controlplane.SettingsKeyFile), k, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := controlplane.New(context.Background(), controlplane.Config{Store: r[0].st, DataDir: other})
	if c, _ := errcode.CodeOf(err); c != apiv1.CodeSettingsKeyDiffers || !strings.Contains(err.Error(), controlplane.SettingsKeyFile) {
		t.Fatalf("a replica with another settings key: %v, want %s naming %s", err, apiv1.CodeSettingsKeyDiffers, controlplane.SettingsKeyFile)
	}
}

// Two tenant Owners removing each other's Owner assignment at once through
// two replicas: one delete is refused, so the tenant keeps an Owner.
func testReplicasKeepLastOwner(t *testing.T, newReplicas replicasFunc) {
	r := newReplicas(t, 2)
	ctx := context.Background()
	for round := range 5 {
		a2, err := r[0].owner.AssignRole(ctx, apiv1.CreateRoleAssignmentRequest{Principal: "owner2", Role: "Owner", Scope: "/"})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := r[0].owner.CreateAPIToken(ctx, apiv1.CreateAPITokenRequest{Principal: "owner2"})
		if err != nil {
			t.Fatal(err)
		}
		var a1 string
		ras, _ := r[0].owner.ListRoleAssignments(ctx, "/")
		for _, ra := range ras {
			if ra.Principal == "owner" && ra.Scope == "/" && ra.Role == "Owner" {
				a1 = ra.ID
			}
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); r[0].raw("DELETE", "/v1/roleAssignments/"+a2.ID, r[0].ownerT, "", nil) }()
		go func() { defer wg.Done(); r[1].raw("DELETE", "/v1/roleAssignments/"+a1, tok.Token, "", nil) }()
		wg.Wait()
		all, err := r[0].st.ListRoleAssignments(ctx)
		if err != nil {
			t.Fatal(err)
		}
		owners := 0
		for _, ra := range all {
			if ra.Role == "Owner" && ra.Scope == "/" {
				owners++
				if ra.Principal == "owner2" { // owner2 won: make "owner" an Owner again for the next round
					if _, err := r[0].client.Operator(tok.Token).AssignRole(ctx, apiv1.CreateRoleAssignmentRequest{Principal: "owner", Role: "Owner", Scope: "/"}); err != nil {
						t.Fatal(err)
					}
					if err := r[0].client.Operator(tok.Token).DeleteRoleAssignment(ctx, ra.ID); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if owners != 1 {
			t.Fatalf("round %d: %d tenant Owners left, want 1", round, owners)
		}
	}
}

// A TLS session from replica A resumes on replica B (and C): replicas
// share their session ticket keys through the store, so an agent whose
// next connection lands on another replica skips the full handshake.
func testReplicasSharedSessionTickets(t *testing.T, newReplicas replicasFunc) {
	r := newReplicas(t, 3)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(r[0].caPEM)
	cache := tls.NewLRUClientSessionCache(1) // one ticket, as an agent keeps
	resumed := func(e *env) bool {
		t.Helper()
		// ServerName is the cache's key: one name for every replica, as
		// behind a load balancer.
		tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", ClientSessionCache: cache}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(e.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.DidResume
	}
	if resumed(r[0]) {
		t.Fatal("the first connection resumed a session")
	}
	for i, e := range []*env{r[1], r[2], r[0]} {
		if !resumed(e) {
			t.Fatalf("connection %d (to %s) did not resume the session another replica issued", i+2, e.url)
		}
	}
}
