package cloudfacts

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

func TestFromAPI(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        apiv1.CloudFacts
		dedicated bool
		inherited []string
	}{
		{"empty", apiv1.CloudFacts{}, true, []string{}},
		{"shared, inherited from tenant and subscription only", apiv1.CloudFacts{
			SubscriptionID: "s", OtherMachines: 4,
			Assignments: []apiv1.CloudRoleAssignment{
				{Principal: "owner", Role: "Owner", Scope: "/", InheritedFrom: apiv1.FromTenant},
				{Principal: "alice", Role: "Reader", Scope: "/subscriptions/s", InheritedFrom: apiv1.FromSubscription},
				{Principal: "bob", Role: "Owner", Scope: "/subscriptions/s/resourceGroups/rg", InheritedFrom: apiv1.FromResourceGroup},
				{Principal: "carol", Role: "Owner", Scope: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/m", InheritedFrom: apiv1.FromMachine},
			},
		}, false, []string{"owner: Owner at the tenant", "alice: Reader at the subscription"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := FromAPI("https://cp.example:8443", tc.in)
			if !got.Available || got.DedicatedSubscription != tc.dedicated || got.OtherMachines != tc.in.OtherMachines || got.Server != "https://cp.example:8443" {
				t.Errorf("facts %+v", got)
			}
			if !slices.Equal(got.InheritedAssignments, tc.inherited) {
				t.Errorf("inherited %q, want %q", got.InheritedAssignments, tc.inherited)
			}
			if got.StandingAdmins == nil || len(got.Assignments) != len(tc.in.Assignments) {
				t.Errorf("admins %v, assignments %v", got.StandingAdmins, got.Assignments)
			}
		})
	}
}

// A tree that is not connected is not applicable, and one whose machine
// key is broken is an error naming the server, without any request.
func TestCollectCloudLocal(t *testing.T) {
	root := t.TempDir()
	c := &Collector{Root: root}
	got, err := c.CollectCloud(t.Context(), nil)
	if err != nil || got.Available || !strings.Contains(got.Reason, "not connected") {
		t.Fatalf("not connected: %+v %v", got, err)
	}
	l := layout.New(root)
	for path, body := range map[string]string{
		l.AgentConfig(): `{"machineId":"m1","server":"https://cp.invalid:8443","resourceId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/m"}`,
		l.MachineKey():  "-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.CollectCloud(t.Context(), nil)
	if err == nil || !strings.Contains(err.Error(), "https://cp.invalid:8443") || !strings.Contains(err.Error(), "machine key") {
		t.Fatalf("broken key: %v, want an error naming the server and the key", err)
	}
}

// A control plane that accepts the connection and never answers costs
// the audit the timeout, not a hang, and the error names the server.
func TestCollectCloudTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	root := t.TempDir()
	l := layout.New(root)
	key, _ := cloud.GenerateKey()
	pemKey, _ := cloud.MarshalPrivateKey(key)
	server := "https://" + ln.Addr().String()
	for path, body := range map[string]string{
		l.AgentConfig(): `{"machineId":"m1","server":"` + server + `","audience":"urn:arcserver:tenant:t","resourceId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/m"}`,
		l.MachineKey():  string(pemKey),
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := &Collector{Root: root, Timeout: 300 * time.Millisecond}
	_, err = c.CollectCloud(t.Context(), nil)
	if err == nil || !strings.Contains(err.Error(), server) || !strings.Contains(err.Error(), "did not answer within 300ms") {
		t.Fatalf("silent server: %v, want a timeout naming %s", err, server)
	}
}
