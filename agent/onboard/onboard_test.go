package onboard

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/agent/netcheck"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
)

// fakeServer is a loopback TLS control plane that records registrations
// and self-deletions.
type fakeServer struct {
	*httptest.Server
	caPEM []byte
	group string // resource group the credential is for

	mu         sync.Mutex
	registered []apiv1.RegisterRequest
	deleted    []string
	unhealthy  bool // /healthz answers 503
}

func (f *fakeServer) health() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unhealthy {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

func newFakeServer(t *testing.T, group string) *fakeServer {
	f := &fakeServer{group: group}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/machines/register", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer arcob_good" {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(apiv1.Error{Code: "ARC0201", Message: "bad credential"})
			return
		}
		var req apiv1.RegisterRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.registered = append(f.registered, req)
		f.mu.Unlock()
		sub := "00000000-0000-0000-0000-000000000001"
		json.NewEncoder(w).Encode(apiv1.Registration{MachineID: "m-1", ResourceID: "/subscriptions/" + sub + "/resourceGroups/" + f.group + "/providers/Microsoft.HybridCompute/machines/web01",
			Name: "web01", SubscriptionID: sub, ResourceGroup: f.group, TenantID: "t", Location: "local", Audience: f.URL, Issuer: f.URL, HeartbeatSeconds: 300})
	})
	// What the network check before connect asks for.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(f.health()) })
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /v1/packages", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	mux.HandleFunc("DELETE /v1/machines/{id}/self", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.deleted = append(f.deleted, r.PathValue("id"))
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	f.Server = httptest.NewTLSServer(mux)
	t.Cleanup(f.Close)
	f.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})
	return f
}

func (f *fakeServer) options(root string) Options {
	return Options{Layout: layout.New(root), Server: f.URL, OnboardingToken: "arcob_good", ResourceGroup: "web", CAPEM: f.caPEM, Tags: apiv1.Tags{"env": "prod"}}
}

func TestConnectWritesStateUnderRoot(t *testing.T) {
	srv := newFakeServer(t, "web")
	root := t.TempDir()
	// The DMI product UUID is read under the root, not from the live /sys.
	uuid := filepath.Join(root, ProductUUID)
	if err := os.MkdirAll(filepath.Dir(uuid), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(uuid, []byte("4C4C4544-0042-4810-8056-B4C04F395A32\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	res, err := Connect(t.Context(), srv.options(root))
	if err != nil {
		t.Fatal(err)
	}
	const want = "4c4c4544-0042-4810-8056-b4c04f395a32"
	if len(srv.registered) != 1 || srv.registered[0].Inventory.VMID != want || res.Config.VMID != want {
		t.Errorf("vmId sent %+v, stored %q; want %q", srv.registered, res.Config.VMID, want)
	}
	if res.HIMDSNotified {
		t.Error("no HIMDS runs, yet it was notified")
	}
	l := layout.New(root)
	cfg, err := himds.LoadAgentConfig(l)
	if err != nil || cfg == nil || cfg.MachineID != "m-1" || cfg.ServerCAPath != layout.ServerCA || cfg.Tags["env"] != "prod" {
		t.Fatalf("agentconfig.json: %+v %v", cfg, err)
	}
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{l.MachineKey(), 0o600}, {l.ServerCA(), 0o644}, {l.AgentConfig(), 0o640}, {l.CertsDir(), 0o700}, {l.TokensDir(), 0o710}} {
		if fi, err := os.Stat(f.path); err != nil || fi.Mode().Perm() != f.mode {
			t.Errorf("%s: %v, want %v", f.path, err, f.mode)
		}
	}
	// A second connect is refused before anything is sent.
	if _, err := Connect(t.Context(), srv.options(root)); !hasCode(err, himds.CodeAlreadyConnected) || len(srv.registered) != 1 {
		t.Errorf("second connect: %v", err)
	}
	// Disconnect deletes the machine on the server and the local state.
	d, err := Disconnect(t.Context(), DisconnectOptions{Layout: l})
	if err != nil || d.Config.MachineID != "m-1" || len(srv.deleted) != 1 {
		t.Fatalf("disconnect: %+v %v, deleted %v", d, err, srv.deleted)
	}
	for _, p := range []string{l.AgentConfig(), l.MachineKey(), l.ServerCA()} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after disconnect", p)
		}
	}
	if _, err := Disconnect(t.Context(), DisconnectOptions{Layout: l}); !hasCode(err, himds.CodeNotConnected) {
		t.Errorf("second disconnect: %v", err)
	}
}

// TestConnectRollsBack: whatever step fails, nothing is left behind, and
// a machine that registered is deleted on the server again.
func TestConnectRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name        string
		token, rg   string
		failWrite   bool
		wantCode    errcode.Code
		wantDeleted int
	}{
		{"credential refused", "arcob_bad", "web", false, "ARC0201", 0},
		{"credential for another group", "arcob_good", "db", false, errcode.Usage, 1},
		{"agentconfig.json cannot be written", "arcob_good", "web", true, errcode.WriteFailed, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, "web")
			root := t.TempDir()
			o := srv.options(root)
			o.OnboardingToken, o.ResourceGroup = tc.token, tc.rg
			var warnings []string
			o.Warn = func(m string) { warnings = append(warnings, m) }
			if tc.failWrite {
				writeConfig = func(layout.Layout, *himds.AgentConfig) error {
					return errcode.Wrap(errcode.WriteFailed, errors.New("disk full"), "write the registration")
				}
				t.Cleanup(func() { writeConfig = himds.WriteAgentConfig })
			}
			_, err := Connect(t.Context(), o)
			if !hasCode(err, tc.wantCode) {
				t.Fatalf("err %v, want %s", err, tc.wantCode)
			}
			if len(srv.deleted) != tc.wantDeleted || len(warnings) != 0 {
				t.Errorf("deleted on the server %v (want %d), warnings %v", srv.deleted, tc.wantDeleted, warnings)
			}
			l := layout.New(root)
			for _, p := range []string{l.MachineKey(), l.ServerCA(), l.AgentConfig()} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s left after a failed connect", p)
				}
			}
		})
	}
}

// TestConnectRollbackWarns: when the server cannot delete the machine it
// registered, the user is told how to delete it.
func TestConnectRollbackWarns(t *testing.T) {
	srv := newFakeServer(t, "web")
	o := srv.options(t.TempDir())
	o.ResourceGroup = "db"
	var warnings []string
	o.Warn = func(m string) { warnings = append(warnings, m) }
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	srv.Config.Handler.(*http.ServeMux).HandleFunc("DELETE /v1/machines/m-1/self", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	if _, err := Connect(ctx, o); !hasCode(err, errcode.Usage) {
		t.Fatalf("err %v", err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "arcagent fleet machines delete m-1") {
		t.Errorf("warnings %q", warnings)
	}
}

func TestParseTags(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want apiv1.Tags
		ok   bool
	}{
		{"", apiv1.Tags{}, true},
		{"env=prod, team=web ,", apiv1.Tags{"env": "prod", "team": "web"}, true},
		{"k=", apiv1.Tags{"k": ""}, true},
		{"novalue", nil, false},
		{"=v", nil, false},
	} {
		got, err := ParseTags(tc.in)
		if (err == nil) != tc.ok || (tc.ok && len(got) != len(tc.want)) {
			t.Errorf("%q: %v %v", tc.in, got, err)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%q: %s=%q, want %q", tc.in, k, got[k], v)
			}
		}
	}
}

func TestParseFile(t *testing.T) {
	f, err := ParseFile([]byte(`{"server": "https://cp:8443", "onboarding-token": "arcob_x", "resource-group": "web", "tags": "a=b"}`))
	if err != nil || f.Server != "https://cp:8443" || f.OnboardingToken != "arcob_x" || f.ResourceGroup != "web" || f.Tags != "a=b" {
		t.Errorf("JSON: %+v %v", f, err)
	}
	if f, err := ParseFile([]byte("server: https://cp\nname: web01\n")); err != nil || f.Name != "web01" {
		t.Errorf("YAML: %+v %v", f, err)
	}
	for _, bad := range []string{"server: https://x\nunknown-key: 1\n", "onboarding-token: !!int arcob_SECRETVALUE\n", "[1, 2"} {
		_, err := ParseFile([]byte(bad))
		if !hasCode(err, himds.CodeConnectConfig) || strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "arcob") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add([]byte(`{"server":"https://cp:8443","onboarding-token":"arcob_x","resource-group":"web"}`))
	f.Add([]byte("server: https://cp\nonboarding-token: !!int arcob_SECRET\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ParseFile(data)
		if err != nil && (!hasCode(err, himds.CodeConnectConfig) || strings.Contains(err.Error(), "arcob_")) {
			t.Fatalf("error %v", err)
		}
	})
}

func hasCode(err error, c errcode.Code) bool {
	var ce *errcode.Error
	return errors.As(err, &ce) && ce.Code == c
}

// TestEnsureDirsRefusesLinks: a link planted where a directory of the
// agent belongs is refused, and what it points to keeps its mode (a chmod
// by path would have followed it); parents made on the way are 0755.
func TestEnsureDirsRefusesLinks(t *testing.T) {
	l := layout.New(filepath.Join(t.TempDir(), "root"))
	if err := EnsureDirs(l); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(l.StateDir()); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("state dir %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Dir(l.StateDir())); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("parent %v %v, want 0755", fi.Mode(), err)
	}
	elsewhere := t.TempDir()
	if err := os.Chmod(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(l.TokensDir()); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, l.TokensDir()); err != nil {
		t.Fatal(err)
	}
	if err := EnsureDirs(l); !errcode.Is(err, errcode.WriteFailed) || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("EnsureDirs with a linked tokens dir: %v", err)
	}
	if fi, err := os.Stat(elsewhere); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the link's target became %v (%v)", fi.Mode(), err)
	}
}

// A failed network check stops connect before the key is generated or
// anything registered; --ignore-network-check goes on regardless.
func TestConnectNetworkCheck(t *testing.T) {
	srv := newFakeServer(t, "web")
	srv.unhealthy = true
	root := t.TempDir()
	_, err := Connect(t.Context(), srv.options(root))
	failed, ok := errors.AsType[*netcheck.Failed](err)
	if !hasCode(err, netcheck.CodeConnectCheck) || !ok || errcode.ExitCode(err) != errcode.ExitFailed {
		t.Fatalf("err %v (exit %d), want %s with the check's report", err, errcode.ExitCode(err), netcheck.CodeConnectCheck)
	}
	if r := failed.Report.Results[0]; r.Code != netcheck.CodeHTTP || !strings.Contains(r.Message, "503") {
		t.Errorf("first result %+v", r)
	}
	l := layout.New(root)
	for _, p := range []string{l.MachineKey(), l.ServerCA(), l.AgentConfig()} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after a failed check", p)
		}
	}
	if len(srv.registered) != 0 {
		t.Errorf("registered %v after a failed check", srv.registered)
	}
	o := srv.options(root)
	o.IgnoreNetworkCheck = true
	if _, err := Connect(t.Context(), o); err != nil || len(srv.registered) != 1 {
		t.Fatalf("connect --ignore-network-check: %v, registered %d", err, len(srv.registered))
	}
}
