//go:build !windows

package himds

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// newTestChallenges is a challenge store on a temporary directory with a
// settable clock.
func newTestChallenges(t *testing.T, max, perPeer int) (*challenges, *clock) {
	t.Helper()
	c := &clock{t: time.Now()}
	return newChallenges(t.TempDir(), DefaultChallengeTTL, max, perPeer, c.now, nil), c
}

func redeemRealm(t *testing.T, c *challenges, realm string) error {
	t.Helper()
	b, err := os.ReadFile(realm)
	if err != nil {
		t.Fatalf("read %s: %v", realm, err)
	}
	return c.redeem(string(b))
}

func exists(path string) bool { _, err := os.Lstat(path); return err == nil }

// The per-peer accounting of the challenge table, without root: a peer's
// flood evicts only its own oldest challenges, a full table evicts from
// the peer holding the most, a peer asking again gets its fresh realm, and
// nothing is ever refused.
func TestChallengeEvictionPerPeer(t *testing.T) {
	const flooder, victim, other = 65534, 998, 0
	t.Run("a peer's flood evicts its own oldest only", func(t *testing.T) {
		c, _ := newTestChallenges(t, 100, 4)
		mine, err := c.issueNew(victim)
		must(t, err)
		var flood []string
		for i := 0; i < 50; i++ {
			r, err := c.issueNew(flooder)
			if err != nil {
				t.Fatalf("challenge %d refused: %v", i, err)
			}
			flood = append(flood, r)
		}
		if n := len(c.peers[flooder]); n != 4 {
			t.Errorf("the flooder holds %d challenges, want the per-peer cap 4", n)
		}
		for i, r := range flood {
			if want := i >= len(flood)-4; exists(r) != want {
				t.Errorf("flood realm %d exists=%v, want %v (only the newest 4 are kept)", i, exists(r), want)
			}
		}
		if err := redeemRealm(t, c, mine); err != nil {
			t.Errorf("the victim's challenge was lost to another peer's flood: %v", err)
		}
		if err := redeemRealm(t, c, flood[len(flood)-1]); err != nil {
			t.Errorf("the flooder's newest challenge: %v", err)
		}
	})
	t.Run("a full table evicts from the biggest peer", func(t *testing.T) {
		c, _ := newTestChallenges(t, 6, 5)
		mine, err := c.issueNew(victim)
		must(t, err)
		theirs, err := c.issueNew(other)
		must(t, err)
		var flood []string
		for i := 0; i < 20; i++ {
			r, err := c.issueNew(anonymousPeer)
			must(t, err)
			flood = append(flood, r)
		}
		if n := c.outstanding(); n != 6 {
			t.Errorf("%d outstanding, want the table's size 6", n)
		}
		for _, r := range []string{mine, theirs} {
			if err := redeemRealm(t, c, r); err != nil {
				t.Errorf("a small peer's challenge %s was evicted: %v", r, err)
			}
		}
		// The anonymous bucket is full too: its 4 newest survive (6 - 2).
		if exists(flood[15]) || !exists(flood[16]) {
			t.Errorf("the oldest anonymous challenges must go first")
		}
		// Now the flooder is the only peer: it may use the whole table up
		// to its cap, and its own newest is never the one evicted.
		r, err := c.issueNew(anonymousPeer)
		must(t, err)
		if !exists(r) || len(c.peers[anonymousPeer]) != 5 {
			t.Errorf("newest %v, %d held, want it kept and the cap 5", exists(r), len(c.peers[anonymousPeer]))
		}
	})
	t.Run("a peer asking again gets its fresh realm", func(t *testing.T) {
		c, clk := newTestChallenges(t, 100, 4)
		r1, err := c.issue(victim)
		must(t, err)
		r2, err := c.issue(victim)
		must(t, err)
		r3, err := c.issue(flooder)
		must(t, err)
		if r1 != r2 || r1 == r3 {
			t.Fatalf("realms %s %s %s: the same peer must get the same realm, another peer another", r1, r2, r3)
		}
		// Each hand-out redeems once; the file goes with the last.
		must(t, redeemRealm(t, c, r1))
		if !exists(r1) {
			t.Fatal("the realm was removed while a hand-out is outstanding")
		}
		b, _ := os.ReadFile(r1)
		must(t, c.redeem(string(b)))
		if exists(r1) {
			t.Error("the realm survived its last hand-out")
		}
		if err := c.redeem(string(b)); err == nil {
			t.Error("a secret redeemed more often than it was handed out")
		}
		// Less than half the TTL left: a new file, the old one still valid.
		r4, err := c.issue(victim)
		must(t, err)
		clk.add(DefaultChallengeTTL/2 + time.Second)
		r5, err := c.issue(victim)
		must(t, err)
		if r4 == r5 {
			t.Fatal("a challenge with less than half its TTL left was handed out again")
		}
		must(t, redeemRealm(t, c, r4))
		must(t, redeemRealm(t, c, r5))
		// An expired one is never handed out and is swept.
		r6, err := c.issue(victim)
		must(t, err)
		clk.add(DefaultChallengeTTL)
		r7, err := c.issue(victim)
		must(t, err)
		c.sweep()
		if r6 == r7 || exists(r6) {
			t.Errorf("expired realm %s handed out again (%s) or left on disk (%v)", r6, r7, exists(r6))
		}
	})
}

// The uid owning the client's end of a loopback connection is found, by
// inet_diag and by /proc/net/tcp, for IPv4 and IPv6.
func TestLookupPeerUID(t *testing.T) {
	for _, network := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(network, func(t *testing.T) {
			ln, err := net.Listen("tcp", network)
			if err != nil {
				t.Skipf("no %s: %v", network, err)
			}
			defer ln.Close()
			accepted := make(chan net.Conn, 1)
			go func() { c, _ := ln.Accept(); accepted <- c }()
			cli, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			srvConn := <-accepted
			defer srvConn.Close()
			// As the server sees it: the remote is the client.
			remote := netip.MustParseAddrPort(srvConn.RemoteAddr().String())
			local := netip.MustParseAddrPort(srvConn.LocalAddr().String())
			for name, lookup := range map[string]func(cli, srv netip.AddrPort) (int, error){
				"inet_diag": sockDiagUID, "/proc/net": procNetUID, "both": lookupPeerUID,
			} {
				uid, err := lookup(remote, local)
				if err != nil || uid != os.Geteuid() {
					t.Errorf("%s: uid %d, %v; want %d", name, uid, err, os.Geteuid())
				}
				// A listener is found for any remote address: it is no
				// client's socket.
				if uid, err := lookup(local, netip.AddrPortFrom(remote.Addr(), remote.Port()+1)); err == nil {
					t.Errorf("%s took the listener for a client (uid %d)", name, uid)
				}
			}
			// The client closes first: its end lingers in TIME_WAIT,
			// which the kernel reports as owned by uid 0. It is nobody's.
			cli.Close()
			_, _ = io.Copy(io.Discard, srvConn)
			srvConn.Close()
			time.Sleep(10 * time.Millisecond) // the close handshake, on loopback
			for name, lookup := range map[string]func(cli, srv netip.AddrPort) (int, error){"inet_diag": sockDiagUID, "/proc/net": procNetUID} {
				if uid, err := lookup(remote, local); err == nil {
					t.Errorf("%s: a closed client's TIME_WAIT entry was taken for uid %d", name, uid)
				}
			}
		})
	}
}

func TestParseProcNetTCP(t *testing.T) {
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:9DB6 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:D431 0100007F:9DB6 01 00000000:00000000 00:00000000 00000000 65534        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:D432 0100007F:9DB6 01 00000000:00000000 00:00000000 00000000   bad        0 2 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:D433 0100007F:9DB6 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000
   4: short line
`
	srv := netip.MustParseAddrPort("127.0.0.1:40374")
	for _, tc := range []struct {
		cli  string
		uid  int
		fail bool
	}{
		{"127.0.0.1:54321", 65534, false},
		{"127.0.0.1:54322", -1, true}, // a uid that is not a number
		{"127.0.0.1:54323", -1, true}, // TIME_WAIT: no owner
		{"127.0.0.1:1", -1, true},     // absent
	} {
		uid, err := parseProcNetTCP(strings.NewReader(table), netip.MustParseAddrPort(tc.cli), srv)
		if uid != tc.uid || (err != nil) != tc.fail {
			t.Errorf("%s: %d %v, want %d (fail %v)", tc.cli, uid, err, tc.uid, tc.fail)
		}
	}
	if got := procAddr(netip.MustParseAddrPort("[::1]:80")); got != "00000000000000000000000001000000:0050" {
		t.Errorf("procAddr(::1) = %s", got)
	}
}

func FuzzParseInetDiagReply(f *testing.F) {
	f.Add(make([]byte, 16))
	f.Add(inetDiagRequest(netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2")))
	f.Add([]byte{20, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseInetDiagReply(b, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"))
	})
}

// floodEnv, when set, makes the test binary a flooding client: it asks
// the URL for challenges until killed, from whatever uid it runs as.
const floodEnv = "HIMDS_TEST_FLOOD_URL"

func TestMain(m *testing.M) {
	if url := os.Getenv(floodEnv); url != "" {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					req.Header.Set("Metadata", "true")
					resp, err := c.Do(req)
					if err != nil {
						fmt.Fprintln(os.Stderr, "flood:", err)
						os.Exit(2)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if i == 0 && w == 0 {
						fmt.Println("flooding as uid", os.Getuid(), "status", resp.StatusCode)
					}
				}
			}()
		}
		wg.Wait()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// An unprivileged local user (uid nobody, who cannot read the secret
// files) floods the token endpoint with challenges, and a root client (as
// root or group himds can) keeps getting tokens throughout: the flood
// takes only the flooder's own bucket. Before, 4096 outstanding challenges
// of anyone locked everyone out with 429 for a minute.
func TestChallengeFloodByAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the flood runs as user nobody")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	// A small table, so that the old global bound would fill at once.
	f := newFixture(t, func(o *Options) { o.MaxChallenges = 64; o.MaxChallengesPerPeer = 8 })
	// The test binary, where nobody may run it.
	dir, err := os.MkdirTemp("", "himds-flood")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	must(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "himds.test")
	src, err := os.ReadFile(os.Args[0])
	must(t, err)
	must(t, os.WriteFile(bin, src, 0o755))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run", "^$")
	cmd.Env = append(os.Environ(), floodEnv+"="+f.api.URL+tokenPath)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = os.Stderr
	must(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	first := make([]byte, 128)
	n, _ := out.Read(first) // the flood has started
	t.Logf("%s", strings.TrimSpace(string(first[:n])))
	go io.Copy(io.Discard, out)
	handedOut := func() int {
		f.svc.ch.mu.Lock()
		defer f.svc.ch.mu.Unlock()
		n := 0
		for _, ch := range f.svc.ch.peers[uid] {
			n += ch.uses
		}
		return n
	}
	// Well past the table's size before the victim starts.
	waitFor(t, func() bool { return handedOut() >= 1000 }, "1000 challenges handed out to the flood")
	before := handedOut()

	for i := 0; i < 200; i++ {
		if resp, body := f.token(t, tokenPath); resp.StatusCode != http.StatusOK {
			t.Fatalf("token %d during the flood: %d %v", i, resp.StatusCode, body)
		}
	}
	if n := handedOut(); n <= before {
		t.Errorf("the flood stopped (%d challenges, %d before): it did not run alongside", n, before)
	}
	f.svc.ch.mu.Lock()
	held, mine := len(f.svc.ch.peers[uid]), len(f.svc.ch.peers[0])
	f.svc.ch.mu.Unlock()
	if held == 0 {
		t.Errorf("no challenge of uid %d: the flood was not accounted to its user", uid)
	}
	if held > 8 || mine > 8 {
		t.Errorf("uid %d holds %d challenges, root %d; want at most the per-peer cap 8", uid, held, mine)
	}
}

// The local API accounts challenges to the uid of the client's socket.
func TestChallengeAccountedToPeer(t *testing.T) {
	f := newFixture(t, nil)
	var mu sync.Mutex
	var seen []netip.AddrPort
	f.svc.lookupPeer = func(cli, srv netip.AddrPort) (int, error) {
		mu.Lock()
		seen = append(seen, cli, srv)
		mu.Unlock()
		return lookupPeerUID(cli, srv)
	}
	r1 := f.challenge(t, tokenPath)
	r2 := f.challenge(t, tokenPath)
	if r1 != r2 {
		t.Errorf("one client got realms %s and %s, want its outstanding one again", r1, r2)
	}
	if len(f.svc.ch.peers[os.Geteuid()]) != 1 {
		t.Errorf("challenges by peer: %v, want one for uid %d", f.svc.ch.peers, os.Geteuid())
	}
	mu.Lock()
	defer mu.Unlock()
	api := netip.MustParseAddrPort(strings.TrimPrefix(f.api.URL, "http://"))
	if len(seen) != 4 || seen[1] != api {
		t.Errorf("lookups %v, want (client, %s) twice", seen, api)
	}
	// No uid: the anonymous bucket, still served.
	f.svc.lookupPeer = func(netip.AddrPort, netip.AddrPort) (int, error) { return -1, errPeerNotFound }
	if resp, body := f.token(t, tokenPath); resp.StatusCode != http.StatusOK {
		t.Fatalf("token without a peer uid: %d %v", resp.StatusCode, body)
	}
}

// BenchmarkLookupPeerUID is the cost a challenge pays to find its
// client's uid (one inet_diag round trip).
//
//	go test -run '^$' -bench LookupPeerUID ./agent/himds/
func BenchmarkLookupPeerUID(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); accepted <- c }()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	srv := <-accepted
	defer srv.Close()
	remote := netip.MustParseAddrPort(srv.RemoteAddr().String())
	local := netip.MustParseAddrPort(srv.LocalAddr().String())
	for _, tc := range []struct {
		name   string
		lookup func(cli, srv netip.AddrPort) (int, error)
	}{{"inet_diag", sockDiagUID}, {"proc", procNetUID}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := tc.lookup(remote, local); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzParseProcNetTCP(f *testing.F) {
	f.Add("   1: 0100007F:D431 0100007F:9DB6 01 00000000:00000000 00:00000000 00000000 65534        0 2 1\n")
	f.Add("sl local_address rem_address st\n")
	f.Add("0: 0100007F:D431 0100007F:9DB6 zz 0 0 0 -1\n")
	cli, srv := netip.MustParseAddrPort("127.0.0.1:54321"), netip.MustParseAddrPort("127.0.0.1:40374")
	f.Fuzz(func(t *testing.T, table string) {
		if uid, err := parseProcNetTCP(strings.NewReader(table), cli, srv); err == nil && uid < 0 {
			t.Errorf("uid %d without an error", uid)
		}
	})
}
