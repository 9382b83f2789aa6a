//go:build !windows

package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/agent/proxy"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/testutil"
)

// tinyproxy is a real upstream proxy (Debian's tinyproxy, installed by
// .ci/run), run as a child process on a loopback port.
type tinyproxy struct {
	addr, log string
	proc      *proc
}

// tinyproxyOptions: Basic credentials when User is set; CONNECT only to
// ConnectPort when it is set.
type tinyproxyOptions struct {
	User, Pass  string
	ConnectPort string
}

// startTinyproxy runs tinyproxy with its files in dir (which user nobody
// must be able to reach when the test runs as root).
func startTinyproxy(t testing.TB, dir string, o tinyproxyOptions) *tinyproxy {
	t.Helper()
	bin, err := exec.LookPath("tinyproxy")
	if err != nil {
		t.Skip("tinyproxy is not installed (apt-get install tinyproxy; .ci/run does): the authenticated upstream proxy test needs it")
	}
	tpDir := filepath.Join(dir, "tinyproxy")
	if err := os.MkdirAll(tpDir, 0o777); err != nil {
		t.Fatal(err)
	}
	// tinyproxy drops to nobody when started as root: it must write its log.
	if err := os.Chmod(tpDir, 0o777); err != nil {
		t.Fatal(err)
	}
	tp := &tinyproxy{addr: freeLoopbackAddr(t), log: filepath.Join(tpDir, "tinyproxy.log")}
	host, port, _ := net.SplitHostPort(tp.addr)
	conf := fmt.Sprintf("Port %s\nListen %s\nTimeout 60\nLogLevel Info\nLogFile %q\nMaxClients 50\nAllow 127.0.0.1\n", port, host, tp.log)
	if o.User != "" {
		conf += fmt.Sprintf("BasicAuth %s %s\n", o.User, o.Pass)
	}
	if o.ConnectPort != "" {
		conf += "ConnectPort " + o.ConnectPort + "\n"
	}
	if os.Geteuid() == 0 {
		conf += "User nobody\nGroup nogroup\n"
	}
	cf := filepath.Join(tpDir, "tinyproxy.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	tp.proc = startProc(t, bin, "-d", "-c", cf)
	waitUntil(t, "tinyproxy listening", func() bool {
		c, err := net.Dial("tcp", tp.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return tp
}

func (tp *tinyproxy) logText() string {
	b, _ := os.ReadFile(tp.log)
	return string(b)
}

// arcProxyProc is `arcagent daemon arcproxy` under a supervisor that does
// what arcproxyd.service's Restart=on-failure does: when the daemon exits
// ExitRestart (its configuration changed and the service user, which is
// not in group himds, may not read it) it is started again, as root, to
// read it. out collects every run's output; done gets the final exit.
type arcProxyProc struct {
	out  *testutil.Buffer
	done chan error
	mu   sync.Mutex
	cur  *exec.Cmd
	runs int
}

func (a *arcProxyProc) pid() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur.Process.Pid
}

func (a *arcProxyProc) restarts() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.runs - 1
}

// startArcProxy runs the arc proxy on a free loopback port and points
// every client started afterwards at it.
func startArcProxy(t testing.TB, bin, root string) (*arcProxyProc, string) {
	t.Helper()
	addr := freeLoopbackAddr(t)
	a := &arcProxyProc{out: &testutil.Buffer{}, done: make(chan error, 1)}
	stopping := make(chan struct{})
	start := func() *exec.Cmd {
		c := exec.Command(bin, "daemon", "arcproxy", "--root", root, "--listen", addr, "--reload-every", "100ms")
		c.Stdout, c.Stderr = a.out, a.out
		if err := c.Start(); err != nil {
			t.Error(err)
			return nil
		}
		a.mu.Lock()
		a.cur, a.runs = c, a.runs+1
		a.mu.Unlock()
		return c
	}
	c := start()
	go func() {
		for c != nil {
			err := c.Wait()
			var ee *exec.ExitError
			select {
			case <-stopping:
			default:
				if errors.As(err, &ee) && ee.ExitCode() == proxy.ExitRestart {
					time.Sleep(100 * time.Millisecond)
					c = start()
					continue
				}
			}
			a.done <- err
			return
		}
	}()
	t.Cleanup(func() {
		close(stopping)
		a.mu.Lock()
		cur := a.cur
		a.mu.Unlock()
		if cur.ProcessState == nil {
			_ = cur.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-a.done:
				a.done <- err
			case <-time.After(20 * time.Second):
				_ = cur.Process.Kill()
			}
		}
	})
	waitUntil(t, "the arc proxy listening", func() bool {
		return strings.Contains(a.out.String(), "arc proxy serving")
	})
	t.Setenv(proxy.EnvAddr, addr)
	return a, addr
}

// writeCredentials writes the upstream credentials the way an operator
// does: root:arcproxy 0640.
func writeCredentials(t testing.TB, l layout.Layout, line string) {
	t.Helper()
	o := atomicfile.Owner{}
	if os.Geteuid() == 0 {
		o = atomicfile.Owner{User: layout.UserRoot, Group: layout.GroupArcProxy}
	}
	if err := atomicfile.WriteFile(l.Path(proxy.CredentialsFile), []byte(line+"\n"), atomicfile.WriteOptions{Mode: 0o640, Owner: o}); err != nil {
		t.Fatal(err)
	}
}

// ensureArcProxyUser creates user arcproxy (group arcproxy) and makes sure
// it is not a member of group himds: a member could read HIMDS's challenge
// secrets and obtain the machine's tokens.
func ensureArcProxyUser(t testing.TB) {
	t.Helper()
	ensureAccount(t, layout.UserHIMDS, layout.GroupHIMDS)
	ensureAccount(t, layout.UserArcProxy, "")
	if out, _ := exec.Command("id", "-nG", layout.UserArcProxy).Output(); slices.Contains(strings.Fields(string(out)), layout.GroupHIMDS) {
		if out, err := exec.Command("gpasswd", "-d", layout.UserArcProxy, layout.GroupHIMDS).CombinedOutput(); err != nil {
			t.Fatalf("gpasswd: %v %s", err, out)
		}
	}
}

// proxiedGet fetches url with the agent's own transport (agent/proxy),
// trusting ca.
func proxiedGet(t testing.TB, l layout.Layout, server, url string, ca []byte) (*http.Response, error) {
	t.Helper()
	settings, _, err := config.NewStore(l).Load()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := proxy.Transport(l, settings, server)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tr.TLSClientConfig.RootCAs = pool
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err == nil {
		res.Body.Close()
	}
	return res, err
}

// TestArcProxyEndToEnd: arcserver → arcproxy → tinyproxy with Basic auth,
// all real processes on loopback. connect, HIMDS's heartbeats and a
// token, and extd's package download pass through both proxies and show
// in tinyproxy's log; a destination off the allowlist is refused and
// never connected; wrong credentials give an error naming the upstream.
func TestArcProxyEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	const user, pass = "arc", "tp-s3cret-pass"
	tmp := worldTraversableTemp(t)
	tp := startTinyproxy(t, tmp, tinyproxyOptions{User: user, Pass: pass})
	if os.Geteuid() == 0 {
		ensureArcProxyUser(t)
	}
	bin := buildArcagent(t)
	cp := startControlPlane(t, tmp)
	rg, secret := cp.onboarding(t, 1)
	w := &extdWorld{t: t, bin: bin, tmp: tmp, cp: cp, root: filepath.Join(tmp, "machine")}
	w.l = layout.New(w.root)
	l := w.l

	// The operator's configuration before connect: the upstream proxy,
	// its credentials, and the control plane allowed (agentconfig.json,
	// which allows it later, does not exist yet).
	w.ok("config", "set", "--root", w.root, "proxy.url", "http://"+tp.addr)
	w.ok("config", "set", "--root", w.root, "proxy.allowed", cp.addr)
	writeCredentials(t, l, user+":"+pass)
	ap, apAddr := startArcProxy(t, bin, w.root)
	if os.Geteuid() == 0 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", ap.pid()))
		if strings.Contains(string(b), "Uid:\t0\t") {
			t.Errorf("the arc proxy still runs as root:\n%s", b)
		}
	}

	ca := filepath.Join(tmp, "ca.crt")
	if err := os.WriteFile(ca, cp.ca, 0o644); err != nil {
		t.Fatal(err)
	}
	w.ok("connect", "--root", w.root, "--server", cp.url(), "--onboarding-token", secret, "--resource-group", rg, "--ca-file", ca, "--name", "web01")
	cpConnect := "CONNECT " + cp.addr
	if n := strings.Count(tp.logText(), cpConnect); n == 0 {
		t.Fatalf("connect did not go through tinyproxy:\n%s\narcproxy:\n%s", tp.logText(), ap.out.String())
	}
	afterConnect := strings.Count(tp.logText(), cpConnect)
	if os.Geteuid() == 0 {
		// connect wrote agentconfig.json, which user arcproxy may not read:
		// the daemon exits 75 and is started again (as systemd does) to read it.
		waitUntil(t, "the arc proxy started again to read agentconfig.json", func() bool {
			return ap.restarts() >= 1 && strings.Count(ap.out.String(), "arc proxy serving") >= 2
		})
	}

	// HIMDS: heartbeats and a token, through both proxies.
	before := time.Now()
	d := startHIMDS(t, bin, w.root)
	op := cp.operator(t)
	waitUntil(t, "a heartbeat through the proxies", func() bool {
		m, err := op.GetMachine(context.Background(), mustMachineID(t, l))
		return err == nil && m.Status == apiv1.StatusConnected && m.LastHeartbeat.After(before)
	})
	if status, body := d.token(t, "api://through-the-proxy"); status != http.StatusOK || body["access_token"] == "" {
		t.Fatalf("token through the proxies: %d %v\n%s\narcproxy (%d restarts):\n%s", status, body, d.proc.out.String(), ap.restarts(), ap.out.String())
	}
	afterHIMDS := strings.Count(tp.logText(), cpConnect)
	if afterHIMDS <= afterConnect {
		t.Fatalf("HIMDS's traffic did not go through tinyproxy (%d CONNECTs before, %d after)", afterConnect, afterHIMDS)
	}

	// extd: the desired state and the package download.
	t.Setenv("ARCAGENT_FLEET_CONFIG", filepath.Join(tmp, "fleet.json"))
	w.ok("fleet", "login", "--server", cp.url(), "--ca-file", ca, "--token", cp.owner)
	w.ok("package", "keygen", "--out", filepath.Join(tmp, "contoso"))
	w.ok("trust", "add", "--root", w.root, "contoso", "--key", filepath.Join(tmp, "contoso.pub"), "--publisher", srPublisher)
	w.publish("../../examples/extensions/status-reporter", srType, "1.0.0")
	extd := w.startExtd()
	w.ok("fleet", "extensions", "set", "--machine", "web01", "--name", "status", "--publisher", srPublisher, "--type", srType, "--version", "1.0.0")
	w.waitFor("Succeeded 1.0.0 through the proxies", extd, reported("status", "1.0.0", apiv1.ExtensionSucceeded, 0))
	// extd is its own process: its desired state, package download and
	// status report open tunnels of their own.
	if n := strings.Count(tp.logText(), cpConnect); n <= afterHIMDS {
		t.Errorf("extd's traffic did not go through tinyproxy (%d CONNECTs before, %d after)", afterHIMDS, n)
	}
	waitUntil(t, "the tunnels through the upstream in the arc proxy's log", func() bool {
		return strings.Contains(ap.out.String(), "tunnel closed") && strings.Contains(ap.out.String(), "upstream http://"+tp.addr)
	})
	if strings.Contains(ap.out.String(), pass) || strings.Contains(tp.logText(), pass) {
		t.Error("the upstream credentials reached a log")
	}

	// A destination off the allowlist: 403 from the arc proxy, logged,
	// never connected (neither by the arc proxy nor by tinyproxy).
	var hits atomic.Int64
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	other.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			hits.Add(1)
		}
	}
	other.StartTLS()
	defer other.Close()
	otherAddr := strings.TrimPrefix(other.URL, "https://")
	_, err := proxiedGet(t, l, cp.url(), other.URL, cp.ca)
	if err == nil || !strings.Contains(err.Error(), "arc proxy at "+apAddr) || !strings.Contains(err.Error(), "not on the egress allowlist") {
		t.Fatalf("a destination off the allowlist: %v", err)
	}
	if hits.Load() != 0 || strings.Contains(tp.logText(), "CONNECT "+otherAddr) {
		t.Fatal("the refused destination was connected")
	}
	// The log reaches the test through a pipe: wait for it.
	waitUntil(t, "the refusal in the arc proxy's log", func() bool {
		return strings.Contains(ap.out.String(), "not on the egress allowlist") && strings.Contains(ap.out.String(), otherAddr)
	})

	// Wrong credentials: picked up without a restart; the error names the
	// upstream proxy, not the control plane.
	writeCredentials(t, l, user+":wrong-pass")
	waitUntil(t, "the arc proxy reloading the credentials", func() bool {
		_, err := proxiedGet(t, l, cp.url(), cp.url()+"/v1/whoami", cp.ca)
		return err != nil
	})
	_, err = proxiedGet(t, l, cp.url(), cp.url()+"/v1/whoami", cp.ca)
	if err == nil || !strings.Contains(err.Error(), "upstream proxy http://"+tp.addr) || !strings.Contains(err.Error(), "refused the credentials") {
		t.Fatalf("wrong credentials: %v", err)
	}
	waitUntil(t, "the wrong credentials in the arc proxy's log", func() bool {
		return strings.Contains(ap.out.String(), "the upstream proxy refused the credentials")
	})
	if strings.Contains(ap.out.String(), "wrong-pass") {
		t.Error("the wrong password reached the log")
	}

	// Turned off by the configuration: the daemon stops with status 0.
	w.ok("config", "clear", "--root", w.root, "proxy.url")
	select {
	case err := <-ap.done:
		ap.done <- err
		if err != nil {
			t.Fatalf("the arc proxy did not exit 0 when turned off: %v\n%s", err, ap.out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the arc proxy kept running after proxy.url was cleared:\n%s", ap.out.String())
	}
	if c, err := net.Dial("tcp", apAddr); err == nil {
		c.Close()
		t.Fatal("the arc proxy still listens after it was turned off")
	}
}

func mustMachineID(t testing.TB, l layout.Layout) string {
	t.Helper()
	c, err := himds.LoadAgentConfig(l)
	if err != nil || c == nil {
		t.Fatalf("agentconfig.json: %v", err)
	}
	return c.MachineID
}

// TestArcProxyOffUntilConfigured: with neither connection.type gateway
// nor proxy.url, the daemon says so, exits 0 and never listens.
func TestArcProxyOffUntilConfigured(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	bin := buildArcagent(t)
	root := worldTraversableTemp(t)
	addr := freeLoopbackAddr(t)
	out, stderr, code := runBin(t, bin, "daemon", "arcproxy", "--root", root, "--listen", addr)
	if code != 0 || !strings.Contains(out, "off until configured") {
		t.Fatalf("arcproxy with nothing configured: %d %s %s", code, out, stderr)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("something listens on the arc proxy's address")
	}
	// A non-loopback listen address is refused when it is on.
	runOK := func(args ...string) {
		if out, stderr, code := runBin(t, bin, args...); code != 0 {
			t.Fatalf("%v: %d %s %s", args, code, out, stderr)
		}
	}
	runOK("config", "set", "--root", root, "connection.type", "gateway")
	if _, stderr, code := runBin(t, bin, "daemon", "arcproxy", "--root", root, "--listen", "0.0.0.0:40399"); code == 0 || !strings.Contains(stderr, "loopback") {
		t.Fatalf("a non-loopback listener: %d %s", code, stderr)
	}
}
