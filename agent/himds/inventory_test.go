//go:build !windows

package himds

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// sentInventories decodes the heartbeat bodies the double received since
// from and returns the inventory of each (nil: none sent).
func (f *fakeCP) sentInventories(t *testing.T, from int) []*apiv1.Inventory {
	t.Helper()
	f.hbMu.Lock()
	defer f.hbMu.Unlock()
	var out []*apiv1.Inventory
	for _, b := range f.hbBodies[from:] {
		var req apiv1.HeartbeatRequest
		if b != "" {
			if err := json.Unmarshal([]byte(b), &req); err != nil {
				t.Fatalf("heartbeat body %q: %v", b, err)
			}
		}
		out = append(out, req.Inventory)
	}
	return out
}

func (f *fakeCP) received() int { f.hbMu.Lock(); defer f.hbMu.Unlock(); return len(f.hbBodies) }

func TestHeartbeatSendsInventoryWhenChanged(t *testing.T) {
	var kernel atomic.Value
	kernel.Store("6.12.0")
	f := newFixture(t, func(o *Options) {
		o.AgentVersion = "1.2.0"
		o.Inventory = func() apiv1.Inventory {
			return apiv1.Inventory{Hostname: "web01", OSType: "linux", OSName: "Debian GNU/Linux", OSVersion: "13", Kernel: kernel.Load().(string), AgentVersion: "1.2.0"}
		}
	})
	ctx := context.Background()
	beat := func() {
		t.Helper()
		if err := f.svc.Heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	beat()
	beat()
	got := f.cp.sentInventories(t, 0)
	if len(got) != 2 || got[0] == nil || got[1] != nil {
		t.Fatalf("first heartbeat must carry the inventory, the second not: %v", got)
	}
	if got[0].OSName != "Debian GNU/Linux" || got[0].AgentVersion != "1.2.0" || got[0].Kernel != "6.12.0" {
		t.Fatalf("inventory sent: %+v", got[0])
	}
	kernel.Store("6.12.9") // a change while HIMDS runs
	beat()
	beat()
	got = f.cp.sentInventories(t, 2)
	if len(got) != 2 || got[0] == nil || got[0].Kernel != "6.12.9" || got[1] != nil {
		t.Fatalf("after a change: %v", got)
	}

	// A new service (a restart) sends it again on its first heartbeat.
	f2 := newFixture(t, nil)
	if err := f2.svc.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f2.cp.sentInventories(t, 0); len(got) != 1 || got[0] == nil || got[0].OSType == "" || got[0].Hostname == "" {
		t.Fatalf("default collector after start: %v", got)
	}
}

func TestHeartbeatOldServerRefusesInventory(t *testing.T) {
	f := newFixture(t, nil)
	f.cp.refuseInv.Store(true)
	ctx := context.Background()
	if err := f.svc.Heartbeat(ctx); err != nil {
		t.Fatalf("a heartbeat to an older server must succeed without the inventory: %v", err)
	}
	if st := f.svc.agentStatus(); st.Status != StatusConnected {
		t.Fatalf("status %+v", st)
	}
	got := f.cp.sentInventories(t, 0)
	if len(got) != 2 || got[0] == nil || got[1] != nil {
		t.Fatalf("want the inventory once, then the heartbeat without it: %v", got)
	}
	// It is not offered again while unchanged: one request per heartbeat.
	n := f.cp.received()
	if err := f.svc.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.cp.sentInventories(t, n); len(got) != 1 || got[0] != nil {
		t.Fatalf("next heartbeat: %v", got)
	}
}

func TestCollectInventory(t *testing.T) {
	root := t.TempDir()
	for path, body := range map[string]string{
		"etc/os-release":                "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"13\"\nVERSION=\"13 (trixie)\"\n",
		"sys/class/dmi/id/product_uuid": "4C4C4544-0042-3510-8052-B4C04F4E3232\n",
	} {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inv := CollectInventory(layout.New(root), "1.2.3")
	if inv.OSName != "Debian GNU/Linux" || inv.OSVersion != "13" || inv.AgentVersion != "1.2.3" || inv.VMID != "4c4c4544-0042-3510-8052-b4c04f4e3232" || inv.Hostname == "" {
		t.Fatalf("inventory %+v", inv)
	}
	for _, tc := range []struct{ in, name, version string }{
		{"NAME=Alpine\nVERSION=3.20.1\n", "Alpine", "3.20.1"},
		{"NAME='Fedora Linux'\nVERSION_ID=40\n", "Fedora Linux", "40"},
		{"NAME=\"a\\u0001b\"\n", "ab", ""},
		{"garbage", "", ""},
	} {
		if n, v := parseOSRelease([]byte(tc.in)); n != tc.name || v != tc.version {
			t.Errorf("parseOSRelease(%q) = %q, %q", tc.in, n, v)
		}
	}
}
