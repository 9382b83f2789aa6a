package cloud_test

import (
	"context"
	"fmt"
	"os"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// A machine registers once with an onboarding credential, keeps its key,
// and then authenticates every request with a fresh signed assertion.
func Example() {
	ctx := context.Background()
	ca, _ := os.ReadFile("/var/opt/azcmagent/certs/controlplane-ca.pem")
	c, err := cloud.New("https://arcserver.example:8443", cloud.Options{CAPEM: ca})
	if err != nil {
		return
	}
	key, _ := cloud.GenerateKey() // store with cloud.MarshalPrivateKey, mode 0600
	reg, err := c.Register(ctx, "arcob_…", key, apiv1.RegisterRequest{
		Inventory: apiv1.Inventory{Hostname: "web01", OSType: "linux", AgentVersion: "0.1.0"},
	})
	if err != nil {
		return
	}
	m := c.Machine(reg.MachineID, reg.Audience, key) // keep MachineID and Audience in agentconfig.json
	hb, _ := m.Heartbeat(ctx, apiv1.HeartbeatRequest{AgentVersion: "0.1.0"})
	doc, etag, _ := m.DesiredState(ctx, "") // later: m.DesiredState(ctx, etag) returns nil while unchanged
	tok, _ := m.Token(ctx, "https://vault.example.com")
	fmt.Println(hb.Status, len(doc.Extensions), etag != "", tok.TokenType)
}
