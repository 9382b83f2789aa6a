package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/rules"
)

// BenchmarkCompileBuiltin is the once-per-run cost of compiling every
// built-in rule.
func BenchmarkCompileBuiltin(b *testing.B) {
	rs, err := rules.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := rules.Compile(rs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCollectLiveHost is the cost of reading this machine.
func BenchmarkCollectLiveHost(b *testing.B) {
	for b.Loop() {
		if _, err := Collect(context.Background(), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluatePerRule is the cost of each compiled rule on a full
// facts document (the hardened host of the rule tests).
func BenchmarkEvaluatePerRule(b *testing.B) {
	rs, err := rules.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	set, err := rules.Compile(rs)
	if err != nil {
		b.Fatal(err)
	}
	doc, err := factsDocument(goodFacts())
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range set.Rules {
		b.Run(c.ID, func(b *testing.B) {
			for b.Loop() {
				_ = c.Eval(doc)
			}
		})
	}
}

// BenchmarkRunLiveHost is a whole in-process audit of this machine:
// compile, collect, evaluate, summarise.
func BenchmarkRunLiveHost(b *testing.B) {
	rs, err := rules.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Run(context.Background(), RunOptions{Rules: rs}); err != nil {
			b.Fatal(err)
		}
	}
}

// procNetTCP20k is a /proc/net/tcp of a busy host: 20,000 TIME_WAIT
// sockets and three listeners.
func procNetTCP20k() []byte {
	var b strings.Builder
	b.WriteString("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "%4d: 0100007F:%04X 0100007F:1F90 06 00000000:00000000 03:00000A2B 00000000     0        0 0 3 0000000000000000\n", i, 30000+i%30000)
	}
	for i, port := range []int{40342, 40343, 22} {
		fmt.Fprintf(&b, "%4d: 0100007F:%04X 00000000:0000 0A 00000000:00000000 00:00000000 00000000  5001        0 %d 1 0000000000000000 100 0 0 10 0\n", 20000+i, port, 100+i)
	}
	return []byte(b.String())
}

// BenchmarkParseProcNetTCP20k parses the listeners out of 20,000 lines.
func BenchmarkParseProcNetTCP20k(b *testing.B) {
	data := procNetTCP20k()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if n := len(parseProcNetTCP(data)); n != 3 {
			b.Fatalf("%d listeners, want 3", n)
		}
	}
}

// secretTree is a --root tree for the secret scan: shell histories that
// mention the keywords on many lines (without credentials), connect
// files, scripts, and one credential.
func secretTree(b *testing.B) string {
	root := b.TempDir()
	write := func(p, s string) {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	var hist strings.Builder
	for i := range 20000 {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&hist, "azcmagent connect --service-principal-id %d --tenant-id t --location westeurope\n", i)
		case 1:
			fmt.Fprintf(&hist, "grep -r onboarding /var/log/azcmagent # %d\n", i)
		default:
			fmt.Fprintf(&hist, "ls -la /home/user%d && cd /srv/app && make build TARGET=linux-amd64\n", i)
		}
	}
	for u := range 20 {
		write(fmt.Sprintf("home/u%d/.bash_history", u), hist.String())
		write(fmt.Sprintf("home/u%d/deploy.sh", u), "#!/bin/sh\n# Service principal login uses the vault\n"+strings.Repeat("echo building the onboarding image step\n", 500))
		write(fmt.Sprintf("home/u%d/notes.txt", u), strings.Repeat("nothing to see here, just some notes about the servers\n", 2000))
	}
	write("root/connect.json", `{"onboarding-token": "ot_3f9a8c7d6e5b4a39"}`)
	return root
}

// BenchmarkCollectSecretsTree is a whole collect of a tree whose cost is
// the secret scan.
func BenchmarkCollectSecretsTree(b *testing.B) {
	root := secretTree(b)
	for b.Loop() {
		f, err := Collect(context.Background(), Options{Root: root, SecretPlaces: []string{"/root", "/home/*"}})
		if err != nil {
			b.Fatal(err)
		}
		if len(f.Secrets.Found) != 1 {
			b.Fatalf("found %+v", f.Secrets.Found)
		}
	}
}

// BenchmarkLiveProcessesAndSockets is the /proc part of a live collect:
// every process's command line, and the listening sockets.
func BenchmarkLiveProcessesAndSockets(b *testing.B) {
	c := &collector{acct: &accounts{users: map[int]string{}, groups: map[int]string{}}}
	for b.Loop() {
		sf := &ServicesFacts{Processes: map[string][]Process{}, Listeners: map[string][]Listener{}, Expected: expectedServices()}
		c.readProcesses(sf)
		c.readListeners(sf)
	}
}
