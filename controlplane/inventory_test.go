package controlplane_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// listInventory reads GET /v1/inventory through the streaming client.
func listInventory(t *testing.T, op *cloud.Operator, sub, rg string) ([]apiv1.MachineInventory, error) {
	t.Helper()
	var out []apiv1.MachineInventory
	err := op.EachInventory(context.Background(), sub, rg, func(m *apiv1.MachineInventory) error {
		c := *m
		c.Extensions = slices.Clone(m.Extensions)
		out = append(out, c)
		return nil
	})
	return out, err
}

func TestHeartbeatInventory(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "web")
	tm := e.mustRegister(sub, "web", "web01")

	// An old agent's heartbeat (no inventory) keeps the registration's.
	if _, err := tm.m.Heartbeat(ctx, apiv1.HeartbeatRequest{AgentVersion: "0.1.0"}); err != nil {
		t.Fatal(err)
	}
	got, err := listInventory(t, e.owner, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].AgentVersion != "0.1.0" || got[0].OSName != "Ubuntu" || got[0].OSVersion != "24.04" || len(got[0].Extensions) != 0 {
		t.Fatalf("after an old heartbeat: %+v", got)
	}

	inv := apiv1.Inventory{Hostname: "web01", OSType: "linux", OSName: "Debian GNU/Linux", OSVersion: "13", Kernel: "6.12.0-1-amd64", Arch: "amd64", AgentVersion: "1.2.0"}
	if _, err := tm.m.Heartbeat(ctx, apiv1.HeartbeatRequest{Inventory: &inv}); err != nil {
		t.Fatal(err)
	}
	if err := tm.m.PutStatus(ctx, apiv1.MachineStatus{Extensions: []apiv1.ExtensionStatus{
		{Name: "monitor", Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0", State: apiv1.ExtensionSucceeded},
	}}); err != nil {
		t.Fatal(err)
	}
	got, err = listInventory(t, e.owner, sub, "web")
	if err != nil {
		t.Fatal(err)
	}
	want := apiv1.MachineInventory{
		ID: tm.reg.MachineID, Name: "web01", ResourceID: tm.reg.ResourceID, SubscriptionID: sub, ResourceGroup: "web", Status: apiv1.StatusConnected,
		AgentVersion: "1.2.0", OSType: "linux", OSName: "Debian GNU/Linux", OSVersion: "13", Kernel: "6.12.0-1-amd64", Arch: "amd64",
		Extensions: []apiv1.InventoryExtension{{Name: "monitor", Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0", State: apiv1.ExtensionSucceeded}},
	}
	if len(got) != 1 {
		t.Fatalf("got %d machines", len(got))
	}
	got[0].LastHeartbeat = time.Time{}
	if !equalInventory(got[0], want) {
		t.Fatalf("inventory\n got %+v\nwant %+v", got[0], want)
	}
	// The machine's own representation carries the new inventory too.
	m, err := e.owner.GetMachine(ctx, tm.reg.MachineID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Inventory.OSName != "Debian GNU/Linux" || m.AgentVersion != "1.2.0" {
		t.Fatalf("machine: %+v", m)
	}

	// A bad inventory refuses the heartbeat (400, what to fix) and
	// changes nothing; the agent then sends it without the inventory.
	for _, tc := range []struct {
		name string
		inv  apiv1.Inventory
		msg  string
	}{
		{"no os type", apiv1.Inventory{Hostname: "web01", AgentVersion: "1.3.0"}, "inventory.osType is required"},
		{"control character", apiv1.Inventory{Hostname: "web01", OSType: "linux", AgentVersion: "1.3.0", Kernel: "6.1\x00"}, "inventory.kernel must be printable"},
		{"too long", apiv1.Inventory{Hostname: "web01", OSType: "linux", AgentVersion: "1.3.0", OSName: strings.Repeat("x", 300)}, "inventory.osName is 300 bytes long"},
		{"negative", apiv1.Inventory{Hostname: "web01", OSType: "linux", AgentVersion: "1.3.0", CPUs: -1}, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tm.m.Heartbeat(ctx, apiv1.HeartbeatRequest{Inventory: &tc.inv})
			wantCode(t, err, http.StatusBadRequest, apiv1.CodeBadRequest, tc.msg)
		})
	}
	got, _ = listInventory(t, e.owner, "", "")
	if len(got) != 1 || got[0].AgentVersion != "1.2.0" || got[0].OSName != "Debian GNU/Linux" {
		t.Fatalf("a refused inventory changed the stored one: %+v", got)
	}
}

func equalInventory(a, b apiv1.MachineInventory) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestInventoryRBAC(t *testing.T) {
	e := newEnv(t)
	sub := e.scope("prod", "web", "db")
	e.mustRegister(sub, "web", "web01")
	e.mustRegister(sub, "web", "web02")
	e.mustRegister(sub, "db", "db01")

	all, err := listInventory(t, e.owner, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if names := inventoryNames(all); !slices.Equal(names, []string{"db01", "web01", "web02"}) {
		t.Fatalf("owner sees %v", names)
	}

	web := e.operatorFor("webops", "Reader", "/subscriptions/"+sub+"/resourceGroups/web")
	got, err := listInventory(t, web, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if names := inventoryNames(got); !slices.Equal(names, []string{"web01", "web02"}) {
		t.Fatalf("a Reader of web sees %v", names)
	}
	// Its own group by filter, yes; another group or the subscription
	// named, no.
	if got, err = listInventory(t, web, sub, "web"); err != nil || len(got) != 2 {
		t.Fatalf("web filter: %v %v", inventoryNames(got), err)
	}
	_, err = listInventory(t, web, sub, "db")
	wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, "machines/read")
	_, err = listInventory(t, web, sub, "")
	wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden)

	nobody := e.operatorFor("nobody", "", "")
	_, err = listInventory(t, nobody, "", "")
	wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, "machines/read")

	// resourceGroup needs subscription.
	st, _, ae, _ := e.raw(http.MethodGet, "/v1/inventory?resourceGroup=web", e.ownerT, "", nil)
	if st != http.StatusBadRequest || !strings.Contains(ae.Message, "subscription") {
		t.Fatalf("rg without sub: HTTP %d %+v", st, ae)
	}
	// An empty result is an empty list, not null.
	e2 := e.scope("empty", "none")
	st, _, _, body := e.raw(http.MethodGet, "/v1/inventory?subscription="+e2, e.ownerT, "", nil)
	if st != http.StatusOK || strings.TrimSpace(string(body)) != `{"value":[]}` {
		t.Fatalf("empty: HTTP %d %s", st, body)
	}
	// The streamed body is one valid JSON document.
	st, _, _, body = e.raw(http.MethodGet, "/v1/inventory", e.ownerT, "", nil)
	var l apiv1.List[apiv1.MachineInventory]
	if st != http.StatusOK || json.Unmarshal(body, &l) != nil || len(l.Value) != 3 {
		t.Fatalf("raw list: HTTP %d %s", st, body)
	}
}

func inventoryNames(ms []apiv1.MachineInventory) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	slices.Sort(out)
	return out
}
