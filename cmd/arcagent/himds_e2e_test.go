//go:build !windows

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/internal/testutil"
)

var (
	serverOnce sync.Once
	serverBin  string
	serverErr  error
)

// buildArcserver builds cmd/arcserver once per test process.
func buildArcserver(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() {
		dir, err := os.MkdirTemp("", "arcserver-bin-")
		if err != nil {
			serverErr = err
			return
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			serverErr = err
			return
		}
		serverBin = filepath.Join(dir, "arcserver")
		if out, err := exec.Command("go", "build", "-o", serverBin, "../arcserver").CombinedOutput(); err != nil {
			serverErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if serverErr != nil {
		t.Fatalf("build arcserver: %v", serverErr)
	}
	return serverBin
}

func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a child process whose output is collected.
type proc struct {
	cmd  *exec.Cmd
	out  *testutil.Buffer
	done chan error
}

func startProc(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), out: &testutil.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM and waits; it is safe to call twice.
func (p *proc) stop(t testing.TB) error {
	if p.cmd.ProcessState != nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("%s did not stop on SIGTERM:\n%s", p.cmd.Path, p.out.String())
		return fmt.Errorf("killed")
	}
}

// controlPlane is a real arcserver process with an onboarding credential.
type controlPlane struct {
	bin, data, addr string
	ca              []byte
	owner           string
	proc            *proc
}

func startControlPlane(t testing.TB, root string) *controlPlane {
	t.Helper()
	cp := &controlPlane{bin: buildArcserver(t), data: filepath.Join(root, "arcserver"), addr: freeLoopbackAddr(t)}
	out, err := exec.Command(cp.bin, "init", "--data", cp.data, "--json").CombinedOutput()
	if err != nil {
		t.Fatalf("arcserver init: %v %s", err, out)
	}
	var res struct {
		OwnerToken string `json:"ownerToken"`
		CACert     string `json:"caCert"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("init output %s: %v", out, err)
	}
	cp.owner = res.OwnerToken
	if cp.ca, err = os.ReadFile(res.CACert); err != nil {
		t.Fatal(err)
	}
	cp.start(t)
	return cp
}

func (cp *controlPlane) url() string { return "https://" + cp.addr }

func (cp *controlPlane) start(t testing.TB) {
	t.Helper()
	cp.proc = startProc(t, cp.bin, "serve", "--data", cp.data, "--listen", cp.addr, "--log-format", "text")
	op := cp.operator(t)
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := op.Whoami(ctx)
		cancel()
		if err == nil {
			return
		}
		if i > 200 {
			t.Fatalf("arcserver did not come up: %v\n%s", err, cp.proc.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (cp *controlPlane) operator(t testing.TB) *cloud.Operator {
	c, err := cloud.New(cp.url(), cloud.Options{CAPEM: cp.ca, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c.Operator(cp.owner)
}

// onboarding creates a subscription, a resource group and a credential.
func (cp *controlPlane) onboarding(t testing.TB, uses int) (rg, secret string) {
	t.Helper()
	ctx := context.Background()
	op := cp.operator(t)
	sub, err := op.CreateSubscription(ctx, apiv1.CreateSubscriptionRequest{DisplayName: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := op.CreateResourceGroup(ctx, sub.SubID, apiv1.CreateResourceGroupRequest{Name: "web", Location: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := op.CreateOnboarding(ctx, apiv1.CreateOnboardingRequest{SubscriptionID: sub.SubID, ResourceGroup: g.Name, ExpiresIn: "1h", Uses: uses})
	if err != nil {
		t.Fatal(err)
	}
	return g.Name, cred.Secret
}

// worldTraversableTemp is a temporary directory that user himds can reach
// (t.TempDir's parents are 0700).
func worldTraversableTemp(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "himds-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// ensureAccount creates a group and user if missing (CI runs as root).
func ensureAccount(t testing.TB, name string, group string) {
	t.Helper()
	if group != "" {
		if exec.Command("getent", "group", group).Run() != nil {
			if out, err := exec.Command("groupadd", "--system", group).CombinedOutput(); err != nil {
				t.Fatalf("groupadd %s: %v %s", group, err, out)
			}
		}
	}
	if exec.Command("id", name).Run() == nil {
		return
	}
	args := []string{"--system", "--no-create-home", "--shell", "/usr/sbin/nologin"}
	if group != "" {
		args = append(args, "--gid", group)
	} else {
		args = append(args, "--user-group")
	}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v %s", name, err, out)
	}
}

// himdsDaemon is a running `arcagent daemon himds`.
type himdsDaemon struct {
	addr string
	proc *proc
}

func startHIMDS(t testing.TB, bin, root string, extra ...string) *himdsDaemon {
	t.Helper()
	d := &himdsDaemon{addr: freeLoopbackAddr(t)}
	args := append([]string{"daemon", "himds", "--root", root, "--listen", d.addr,
		"--heartbeat-interval", "300ms", "--backoff-min", "50ms", "--backoff-max", "300ms", "--reload-every", "100ms"}, extra...)
	d.proc = startProc(t, bin, args...)
	for i := 0; ; i++ {
		if resp, err := d.get("/agentstatus", ""); err == nil {
			resp.Body.Close()
			return d
		}
		if i > 200 {
			t.Fatalf("HIMDS did not come up:\n%s", d.proc.out.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (d *himdsDaemon) get(path, auth string) (*http.Response, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.addr+path, nil)
	req.Header.Set("Metadata", "true")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return http.DefaultClient.Do(req)
}

func (d *himdsDaemon) status(t testing.TB) himds.AgentStatus {
	t.Helper()
	resp, err := d.get("/agentstatus", "")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st himds.AgentStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// token runs the challenge flow the way MSAL does and returns the reply.
func (d *himdsDaemon) token(t testing.TB, resource string) (int, map[string]string) {
	t.Helper()
	path := "/metadata/identity/oauth2/token?api-version=2020-06-01&resource=" + resource
	resp, err := d.get(path, "")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("first leg: %d", resp.StatusCode)
	}
	realm := strings.TrimPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=")
	secret, err := os.ReadFile(realm)
	if err != nil {
		t.Fatalf("read the secret file: %v", err)
	}
	resp, err = d.get(path, "Basic "+string(secret))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := map[string]string{}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func runBin(t testing.TB, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func jwtClaims(t testing.TB, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHIMDSEndToEnd: arcserver, connect, daemon himds, a token through the
// challenge flow, heartbeats, the server stopped and restarted, show and
// disconnect, all as real processes.
func TestHIMDSEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	bin := buildArcagent(t)
	tmp := worldTraversableTemp(t)
	if os.Geteuid() == 0 {
		ensureAccount(t, layout.UserHIMDS, layout.GroupHIMDS)
	}
	cp := startControlPlane(t, tmp)
	rg, secret := cp.onboarding(t, 2)
	root := filepath.Join(tmp, "machine")
	caFile := filepath.Join(tmp, "ca.crt")
	if err := os.WriteFile(caFile, cp.ca, 0o644); err != nil {
		t.Fatal(err)
	}

	// Credentials from --config (JSON), keys = flag names; connect warns.
	cfgFile := filepath.Join(tmp, "connect.json")
	cfg, _ := json.Marshal(map[string]string{"server": cp.url(), "onboarding-token": secret, "resource-group": rg, "ca-file": caFile, "name": "web01", "tags": "env=prod"})
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	out, stderr, code := runBin(t, bin, "connect", "--root", root, "--config", cfgFile)
	if code != 0 || !strings.Contains(out, "Connected web01") {
		t.Fatalf("connect: %d %s %s", code, out, stderr)
	}
	if !strings.Contains(stderr, "delete it") || !strings.Contains(stderr, cfgFile) {
		t.Errorf("connect did not warn about the --config file: %s", stderr)
	}
	if strings.Contains(out+stderr, secret) {
		t.Error("connect printed the onboarding credential")
	}
	l := layout.New(root)
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{l.MachineKey(), 0o600}, {l.AgentConfig(), 0o640}, {l.CertsDir(), 0o700}, {l.TokensDir(), 0o710}} {
		fi, err := os.Stat(f.path)
		if err != nil || fi.Mode().Perm() != f.mode {
			t.Errorf("%s: %v %v, want %v", f.path, fi.Mode().Perm(), err, f.mode)
		}
	}
	ac, err := himds.LoadAgentConfig(l)
	if err != nil || ac == nil || ac.ResourceID == "" || ac.Status != "Connected" || ac.LastHeartbeat == nil {
		t.Fatalf("agentconfig.json %+v %v", ac, err)
	}
	// A second connect is refused.
	if _, stderr, code := runBin(t, bin, "connect", "--root", root, "--config", cfgFile); code == 0 || !strings.Contains(stderr, string(himds.CodeAlreadyConnected)) {
		t.Errorf("second connect: %d %s", code, stderr)
	}

	d := startHIMDS(t, bin, root)
	if os.Geteuid() == 0 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.proc.cmd.Process.Pid))
		if !strings.Contains(string(b), "Uid:\t") || strings.Contains(string(b), "Uid:\t0\t") {
			t.Errorf("the daemon still runs as root:\n%s", b)
		}
	}
	status, body := d.token(t, "https://management.azure.com/")
	if status != 200 || body["token_type"] != "Bearer" || body["expires_on"] == "" || body["expires_in"] == "" {
		t.Fatalf("token: %d %v\n%s", status, body, d.proc.out.String())
	}
	claims := jwtClaims(t, body["access_token"])
	if claims["xms_mirid"] != ac.ResourceID {
		t.Errorf("token claims %v", claims)
	}

	// A heartbeat moves the machine to Connected on the server.
	op := cp.operator(t)
	waitUntil(t, "a heartbeat on the server", func() bool {
		m, err := op.GetMachine(context.Background(), ac.MachineID)
		return err == nil && m.Status == apiv1.StatusConnected && m.LastHeartbeat.After(before)
	})
	waitUntil(t, "the status file", func() bool {
		st, _ := himds.LoadStatus(l)
		return st != nil && st.Status == himds.StatusConnected && st.LastHeartbeat != nil && st.LastHeartbeat.After(*ac.LastHeartbeat)
	})
	out, stderr, code = runBin(t, bin, "show", "--root", root, "-j")
	var info himds.Info
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil || info.Status != "Connected" || info.Source != "himds" || info.ResourceID != ac.ResourceID {
		t.Errorf("show -j: %d %s %s", code, out, stderr)
	}
	if out, _, code := runBin(t, bin, "show", "--root", root, "status"); code != 0 || strings.TrimSpace(out) != "Connected" {
		t.Errorf("show status: %d %q", code, out)
	}

	// The server stops: the daemon keeps serving, says Disconnected, and
	// keeps the cached token.
	if err := cp.proc.stop(t); err != nil {
		t.Fatalf("stop arcserver: %v", err)
	}
	waitUntil(t, "Disconnected", func() bool { return d.status(t).Status == himds.StatusDisconnected })
	if status, b2 := d.token(t, "https://management.azure.com/"); status != 200 || b2["access_token"] != body["access_token"] {
		t.Errorf("cached token while the server is down: %d %v", status, b2)
	}
	if status, _ := d.token(t, "api://never-asked"); status != http.StatusServiceUnavailable {
		t.Errorf("uncached token while the server is down: %d", status)
	}
	resp, err := d.get("/metadata/instance?api-version=2021-02-01", "")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("metadata while the server is down: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// The server comes back on the same address: the daemon recovers alone.
	cp.start(t)
	waitUntil(t, "Connected again", func() bool { return d.status(t).Status == himds.StatusConnected })
	if status, b3 := d.token(t, "api://after-restart"); status != 200 || b3["resource"] != "api://after-restart" {
		t.Errorf("token after the restart: %d %v", status, b3)
	}

	// Disconnect deletes the resource and tells the daemon.
	if out, stderr, code := runBin(t, bin, "disconnect", "--root", root); code != 0 {
		t.Fatalf("disconnect: %d %s %s", code, out, stderr)
	}
	if _, err := op.GetMachine(context.Background(), ac.MachineID); cloud.StatusOf(err) != http.StatusNotFound {
		t.Errorf("the machine still exists on the server: %v", err)
	}
	waitUntil(t, "NotConnected", func() bool { return d.status(t).Status == himds.StatusNotConnected })
	if _, err := os.Stat(l.MachineKey()); !os.IsNotExist(err) {
		t.Error("disconnect left the machine key")
	}
	if err := d.proc.stop(t); err != nil {
		t.Errorf("daemon exit: %v\n%s", err, d.proc.out.String())
	}
	if strings.Contains(d.proc.out.String(), body["access_token"]) {
		t.Error("a token reached the daemon's log")
	}
}

// TestConnectUsageErrors covers connect's and disconnect's refusals.
func TestConnectUsageErrors(t *testing.T) {
	root := t.TempDir()
	bad := writeFile(t, root, "bad.yaml", "server: https://x\nunknown-key: 1\n")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing flags", []string{"connect", "--root", root}, 2, "--server, --onboarding-token, --resource-group"},
		{"unknown key in --config", []string{"connect", "--root", root, "--config", bad}, 2, "ARC0407"},
		{"http server", []string{"connect", "--root", root, "--server", "http://x", "--onboarding-token", "t", "--resource-group", "g"}, 2, "https"},
		{"bad tags", []string{"connect", "--root", root, "--server", "https://127.0.0.1:1", "--onboarding-token", "t", "--resource-group", "g", "--tags", "novalue"}, 2, "KEY=VALUE"},
		{"unreachable server", []string{"connect", "--root", root, "--server", "https://127.0.0.1:1", "--onboarding-token", "t", "--resource-group", "g"}, 3, "ARC0529"},
		{"unreachable server, no check", []string{"connect", "--root", root, "--server", "https://127.0.0.1:1", "--onboarding-token", "t", "--resource-group", "g", "--ignore-network-check"}, 3, "ARC0212"},
		{"disconnect when not connected", []string{"disconnect", "--root", root}, 3, "ARC0400"},
		{"show unknown property", []string{"show", "--root", root, "nope"}, 2, "unknown property"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("%v: %d %s, want %d with %q", tc.args, code, stderr, tc.code, tc.want)
			}
		})
	}
	// A malformed credentials file is refused without echoing the secret,
	// and a file readable by others is called out.
	leaky := writeFile(t, root, "leaky.yaml", "server: https://127.0.0.1:1\nonboarding-token: !!int arcob_SECRETVALUE\n")
	_, stderr, code := runCLI(t, "connect", "--root", root, "--config", leaky)
	if code != 2 || strings.Contains(stderr, "SECRETVALUE") || !strings.Contains(stderr, "ARC0407") {
		t.Errorf("type error: %d %q", code, stderr)
	}
	open := writeFile(t, root, "open.yaml", "server: https://127.0.0.1:1\nonboarding-token: arcob_x\nresource-group: g\n")
	_ = os.Chmod(open, 0o644)
	_, stderr, _ = runCLI(t, "connect", "--root", root, "--config", open)
	if !strings.Contains(stderr, "readable by other users") {
		t.Errorf("no warning for a 0644 credentials file: %q", stderr)
	}
	// A failed connect leaves no key behind.
	if _, err := os.Stat(layout.New(root).MachineKey()); !os.IsNotExist(err) {
		t.Error("a failed connect left a machine key")
	}
}

// TestShowWithoutDaemon reads the files when HIMDS does not answer.
func TestShowWithoutDaemon(t *testing.T) {
	root := t.TempDir()
	out, stderr, code := runCLI(t, "show", "--root", root, "-j")
	var in himds.Info
	if code != 0 || json.Unmarshal([]byte(out), &in) != nil || in.Status != himds.StatusNotConnected || in.Source != "files" {
		t.Fatalf("show: %d %s %s", code, out, stderr)
	}
	l := layout.New(root)
	_ = os.MkdirAll(l.StateDir(), 0o755)
	hb := time.Now().Add(-20 * time.Minute).UTC()
	if err := himds.WriteAgentConfig(l, &himds.AgentConfig{MachineID: "m", ResourceID: "/r", Server: "https://cp", Name: "n", LastHeartbeat: &hb}); err != nil {
		t.Fatal(err)
	}
	out, _, code = runCLI(t, "show", "--root", root)
	if code != 0 || !strings.Contains(out, "Disconnected") || !strings.Contains(out, "himdsd: stopped or unreachable") {
		t.Errorf("show text: %d\n%s", code, out)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	lines := 0
	for sc.Scan() {
		lines++
	}
	if lines < len(showOrder) {
		t.Errorf("show printed %d lines", lines)
	}
}

// TestShowAsUnprivilegedUser: show needs no root; a user outside group
// himds is told what it cannot see instead of getting an error.
func TestShowAsUnprivilegedUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	bin := buildArcagent(t)
	tmp := worldTraversableTemp(t)
	exe := filepath.Join(tmp, "arcagent")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(tmp, "machine")
	l := layout.New(root)
	if err := os.MkdirAll(l.StateDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := himds.WriteAgentConfig(l, &himds.AgentConfig{MachineID: "m", ResourceID: "/r", Server: "https://cp"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(l.AgentConfig(), 0, 0); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "show", "--root", root, "-j")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65534}}}
	out, err := cmd.Output()
	var in himds.Info
	if err != nil || json.Unmarshal(out, &in) != nil || in.Status != "Unknown" || !strings.Contains(in.Remedy, "group himds") {
		t.Errorf("show as nobody: %v %s", err, out)
	}
}
