//go:build !windows

package audit

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/audit/fixture"
	"github.com/arcagent/arcagent/reports"
)

func TestParseProcNetTCP(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:9CD6 00000000:0000 0A 00000000:00000000 00:00000000 00000000  5001        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:9CD7 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:0016 0100007F:D0F2 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:9CD6 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  5001        0 4 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:9CD7 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  5002        0 5 1 0000000000000000 100 0 0 10 0
`
	got := append(parseProcNetTCP([]byte(tcp)), parseProcNetTCP([]byte(tcp6))...)
	want := []Listener{
		{Address: "127.0.0.1", Port: 40150, Loopback: true, UID: 5001},
		{Address: "0.0.0.0", Port: 40151, Loopback: false, UID: 0},
		{Address: "::1", Port: 40150, Loopback: true, UID: 5001},
		{Address: "127.0.0.1", Port: 40151, Loopback: true, UID: 5002},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestDaemonOf(t *testing.T) {
	tests := map[string]string{
		"/opt/azcmagent/bin/arcagent daemon himds":   "himdsd",
		"/opt/azcmagent/bin/himds":                   "himdsd",
		"arcagent --log-stderr daemon proxy":         "arcproxyd",
		"/usr/bin/gcad":                              "gcad",
		"arcagent daemon extd":                       "extd",
		"arcagent audit":                             "",
		"vim /etc/systemd/system/himdsd.service":     "",
		"/opt/azcmagent/bin/arcagent daemon unknown": "",
	}
	for cmd, want := range tests {
		if got := daemonOf(strings.Fields(cmd)); got != want {
			t.Errorf("daemonOf(%q) = %q, want %q", cmd, got, want)
		}
	}
}

func TestKeyLines(t *testing.T) {
	data := []byte("{\n  \"config.mode\": \"full\",\n  \"extensions.allowlist\": [\n    \"A/B\"\n  ],\n  \"x.unknown\": 1,\n  \"incomingconnections.enabled\": false\n}\n")
	got := keyLines(data)
	// Unknown keys keep their line too, for the warning that names them.
	want := map[string]int{"config.mode": 2, "extensions.allowlist": 3, "x.unknown": 6, "incomingconnections.enabled": 7}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keyLines = %v, want %v", got, want)
	}
	if len(keyLines([]byte("not json"))) != 0 {
		t.Error("garbage must give no lines")
	}
}

func TestUnitDropInsAndSecrets(t *testing.T) {
	root := t.TempDir()
	tr := fixture.New(t, root)
	tr.DefaultInstall()
	tr.File("/etc/systemd/system/himdsd.service.d/override.conf", "[Service]\nUser=root\n", "root", "root", 0o644)
	tr.File("/root/connect.json", "{\n  \"server\": \"https://cp:8443\",\n  \"onboarding-token\": \"ot_3f9a8c7d6e5b4a39\"\n}\n", "root", "root", 0o600)
	tr.File("/root/.bash_history", "ls\nazcmagent connect --service-principal-id x --service-principal-secret 'S3cr3t~value'\n", "root", "root", 0o600)
	tr.File("/home/alice/notes.txt", "remember to pass --onboarding-token when connecting\n", "alice", "alice", 0o644)
	tr.File("/tmp/build.log", "onboarding-token: abcdefghijkl\n", "root", "root", 0o644)
	f, err := Collect(context.Background(), Options{Root: root, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if u := f.Services.Units["himdsd"]; u.User != "root" {
		t.Errorf("drop-in not applied: %+v", u)
	}
	if u := f.Services.Units["extd"]; u.User != "root" || !u.Present {
		t.Errorf("extd without User= must be root: %+v", u)
	}
	if f.Services.ProcAvailable {
		t.Error("processes must not be read under --root")
	}
	want := []SecretFact{
		{Path: "root/.bash_history", Line: 2, Kind: "service-principal-secret"},
		{Path: "root/connect.json", Line: 3, Kind: "onboarding-token"},
	}
	if !reflect.DeepEqual(f.Secrets.Found, want) {
		t.Errorf("secrets = %+v\nwant %+v", f.Secrets.Found, want)
	}
	doc, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"ot_3f9a8c7d6e5b4a39", "S3cr3t~value"} {
		if strings.Contains(string(doc), secret) {
			t.Errorf("the secret %q leaked into the facts", secret)
		}
	}
}

func TestFileFactsExtraBits(t *testing.T) {
	root := t.TempDir()
	tr := fixture.New(t, root)
	tr.DefaultInstall()
	tr.Dir(layout.TokensDir, "himds", "himds", 0o777)
	tr.File(layout.TokensDir+"/abc.key", "s", "himds", "himds", 0o600) // tighter than 0640: fine
	f, err := Collect(context.Background(), Options{Root: root, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range f.Files.Entries {
		got[e.Path] = e.Mode + "/" + e.ExtraBits
	}
	if got["var/opt/azcmagent/tokens"] != "0777/67" || got["var/opt/azcmagent/tokens/abc.key"] != "0600/0" {
		t.Errorf("modes = %v", got)
	}
}

func TestTargets(t *testing.T) {
	ctx := context.Background()
	if _, err := Collect(ctx, Options{Root: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing root must be an error")
	} else {
		var te *TargetError
		if !errors.As(err, &te) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("err = %v", err)
		}
	}
	planned := filepath.Join(t.TempDir(), "planned.json")
	if err := os.WriteFile(planned, []byte(`{"incomingconnections.enabled": false}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Collect(ctx, Options{Root: t.TempDir(), PlannedConfig: planned})
	if err != nil {
		t.Fatal(err)
	}
	if f.Host.Name != "planned" {
		t.Errorf("a planned target is named after its file, not the machine: %q", f.Host.Name)
	}
	if f.Target.Kind != "planned" || f.Config.Source != "planned" || f.Config.Effective["incomingconnections.enabled"] != false || f.Files.Available || f.Extensions.Available {
		t.Errorf("planned target facts wrong: %+v %+v", f.Target, f.Config)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	_ = os.WriteFile(bad, []byte(`{"incomingconnections.enabled": "perhaps"}`), 0o644)
	if _, err := Collect(ctx, Options{Root: t.TempDir(), PlannedConfig: bad}); err == nil || !strings.Contains(err.Error(), "incomingconnections.enabled") {
		t.Errorf("an invalid planned file must be refused naming the property: %v", err)
	}
	f, err = Collect(ctx, Options{Root: t.TempDir(), PlannedConfig: planned, HostName: "dc-plan"})
	if err != nil || f.Host.Name != "dc-plan" {
		t.Errorf("--host must name the target: %q %v", f.Host.Name, err)
	}
	// No agent installed: the default configuration, said so.
	f, err = Collect(ctx, Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Target.DefaultInstall || f.Config.Source != "default" || f.Config.Effective["incomingconnections.enabled"] != true {
		t.Errorf("default install facts wrong: %+v", f.Target)
	}
}

func TestCorruptLocalConfigIsErrorNotFail(t *testing.T) {
	root := t.TempDir()
	tr := fixture.New(t, root)
	tr.DefaultInstall()
	tr.File(layout.LocalConfig, "{broken", "root", "himds", 0o640)
	r := auditTree(t, root, func(o *RunOptions) { o.Select.Profiles = []string{"tier0"} })
	for _, res := range r.Results {
		if strings.HasPrefix(res.RuleID, "ARC-T0-00") && res.RuleID <= "ARC-T0-004" {
			if res.Status != reports.StatusError || !strings.Contains(res.Reason, "localconfig.json is not valid") {
				t.Errorf("%s: %s %q, want error with the reason", res.RuleID, res.Status, res.Reason)
			}
		}
	}
	if len(r.CollectorErrors) == 0 {
		t.Error("the collector error must be in the report")
	}
	if code := r.ExitCode(); code != 3 {
		t.Errorf("exit code %d, want 3 (audit incomplete)", code)
	}
}

func TestLiveHostSmoke(t *testing.T) {
	f, err := Collect(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Target.Live || f.Host.Name == "" {
		t.Errorf("live host facts: %+v %+v", f.Target, f.Host)
	}
}

// A bare tree without /etc/passwd is judged by this host's accounts, and
// the report says so.
func TestBareTreeUsesHostAccounts(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "opt/azcmagent/bin/arcagent")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := Collect(context.Background(), Options{Root: root, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	host, err := readHostAccounts()
	if err != nil {
		t.Skip("this host has no /etc/passwd")
	}
	for _, e := range f.Files.Entries {
		if e.ID == "binary" && e.Owner != host.userName(os.Getuid()) {
			t.Errorf("owner %q, want this host's name for uid %d", e.Owner, os.Getuid())
		}
	}
	found := false
	for _, ce := range f.Errors {
		found = found || strings.Contains(ce.Error, "this host's /etc/passwd")
	}
	if !found {
		t.Error("the fallback must be reported")
	}
}

// HIMDS records heartbeats in run/status.json because it cannot rewrite the
// root-owned agentconfig.json; the agent facts take the newer of the two.
func TestAgentHeartbeatFromHIMDSStatus(t *testing.T) {
	ac := `{"machineId":"m-1","resourceId":"/subscriptions/s/resourceGroups/g/providers/Microsoft.HybridCompute/machines/n","server":"https://cp","agentVersion":"1.0.0","status":"Connected","lastHeartbeat":"` +
		testNow.Add(-60*24*60*60*1e9).Format("2006-01-02T15:04:05Z07:00") + `"}`
	recent := testNow.Add(-3 * 60 * 1e9).Format("2006-01-02T15:04:05Z07:00")
	for _, tc := range []struct {
		name       string
		status     string
		wantAge    int
		wantStatus string
	}{
		{"no status file", "", 60 * 24 * 60, "Connected"},
		{"newer heartbeat of this machine", `{"machineId":"m-1","status":"Connected","lastHeartbeat":"` + recent + `"}`, 3, "Connected"},
		{"another machine's file", `{"machineId":"m-2","status":"Connected","lastHeartbeat":"` + recent + `"}`, 60 * 24 * 60, "Connected"},
		{"disconnected", `{"machineId":"m-1","status":"Disconnected","lastHeartbeat":"` + recent + `"}`, 3, "Disconnected"},
		{"corrupt file", `{broken`, 60 * 24 * 60, "Connected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			l := layout.New(root)
			if err := os.MkdirAll(l.RunDir(), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(l.AgentConfig(), []byte(ac), 0o640); err != nil {
				t.Fatal(err)
			}
			if tc.status != "" {
				if err := os.WriteFile(l.HIMDSStatus(), []byte(tc.status), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			f, err := Collect(context.Background(), Options{Root: root, Now: testNow})
			if err != nil {
				t.Fatal(err)
			}
			if f.Agent.HeartbeatAgeMinutes != tc.wantAge || f.Agent.Status != tc.wantStatus {
				t.Errorf("age %d status %s, want %d %s", f.Agent.HeartbeatAgeMinutes, f.Agent.Status, tc.wantAge, tc.wantStatus)
			}
		})
	}
}

// An unreadable unit file makes the service rules error, not guess "root".
func TestUnreadableUnitIsError(t *testing.T) {
	root := t.TempDir()
	tr := fixture.New(t, root)
	tr.DefaultInstall()
	unit := filepath.Join(root, "etc/systemd/system/himdsd.service")
	if err := os.Remove(unit); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(unit, 0o755); err != nil { // a directory: present, but not readable as a file
		t.Fatal(err)
	}
	r := auditTree(t, root, func(o *RunOptions) { o.Select.Rules = []string{"ARC-PR-001"} })
	if len(r.Results) != 1 || r.Results[0].Status != reports.StatusError || !strings.Contains(r.Results[0].Reason, "cannot read unit file") {
		t.Errorf("results = %+v", r.Results)
	}
}

// The kernel's list of listeners (sock_diag) agrees with /proc/net/tcp and
// contains a socket this test opens on loopback, with its port and owner.
func TestNetlinkListeners(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln6, err6 := net.Listen("tcp6", "[::1]:0")
	if err6 == nil {
		defer ln6.Close()
	}
	got, err := netlinkListeners()
	if err != nil {
		t.Skipf("sock_diag unavailable here: %v", err)
	}
	want := Listener{Address: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Loopback: true, UID: os.Geteuid()}
	if !slices.Contains(got, want) {
		t.Errorf("netlink listeners %+v lack %+v", got, want)
	}
	if err6 == nil {
		want6 := Listener{Address: "::1", Port: ln6.Addr().(*net.TCPAddr).Port, Loopback: true, UID: os.Geteuid()}
		if !slices.Contains(got, want6) {
			t.Errorf("netlink listeners %+v lack %+v", got, want6)
		}
	}
	// Every socket /proc lists as listening is in the netlink answer
	// (sockets may come and go between the two reads: only ours must).
	for _, l := range procListeners() {
		if l.Port == want.Port && !slices.Contains(got, l) {
			t.Errorf("/proc has %+v, netlink does not", l)
		}
	}
}

func TestParseInetDiagMalformed(t *testing.T) {
	for _, b := range [][]byte{nil, make([]byte, 15), {0xff, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {16, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, _, err := parseInetDiag(b); err == nil && len(b) >= 16 {
			t.Errorf("parseInetDiag(%v) accepted a malformed message", b)
		}
	}
}

func TestParseInetDiag(t *testing.T) {
	msg := make([]byte, 16+72)
	msg[0], msg[4], msg[16], msg[17] = 16+72, 20, 2, 10 // len, SOCK_DIAG_BY_FAMILY, AF_INET, LISTEN
	msg[20], msg[21], msg[24], msg[27] = 0x9c, 0xd6, 127, 1
	msg[16+64] = 0x89 // uid 5001 = 0x1389, native (little) endian
	msg[16+65] = 0x13
	done := []byte{16, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	ls, fin, err := parseInetDiag(append(append([]byte{}, msg...), done...))
	want := []Listener{{Address: "127.0.0.1", Port: 40150, Loopback: true, UID: 5001}}
	if err != nil || !fin || !reflect.DeepEqual(ls, want) {
		t.Errorf("got %+v %v %v, want %+v", ls, fin, err, want)
	}
	msg[17] = 6 // TIME_WAIT: not a listener
	if ls, fin, _ := parseInetDiag(msg); len(ls) != 0 || fin {
		t.Errorf("got %+v %v", ls, fin)
	}
}
