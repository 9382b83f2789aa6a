package controlplane

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/signing"
)

// BenchmarkGroupGuestConfig200 changes a resource group assignment (the
// mode alternates, so every PUT rewrites the desired state of each of the
// group's 200 machines in one transaction).
func BenchmarkGroupGuestConfig200(b *testing.B) {
	fs := newFuzzServer(b)
	p := signing.Package{Publisher: "Contoso.Baseline", Type: "SSH", Version: "1.0"}
	zb := fuzzZip(b, map[string]string{"guestconfig.yaml": "name: SSH\n"})
	sum := sha256.Sum256(zb)
	payload, _ := json.Marshal(signing.NewStatementKind(signing.KindGuestConfig, p, hex.EncodeToString(sum[:]), int64(len(zb))))
	env, _ := json.Marshal(signing.Envelope{PayloadType: signing.PayloadType, Payload: base64.StdEncoding.EncodeToString(payload), Signatures: []signing.EnvelopeSignature{{KeyID: "k", Sig: "c2ln"}}})
	benchCall(b, fs, http.MethodPost, "/v1/packages", fs.owner, apiv1.PublishPackageRequest{Package: zb, Envelope: env}, http.StatusCreated)
	for i := 1; i < 200; i++ {
		key, _ := cloud.GenerateKey()
		pub, _ := cloud.MarshalPublicKey(&key.PublicKey)
		benchCall(b, fs, http.MethodPost, "/v1/machines/register", fs.secret, apiv1.RegisterRequest{PublicKey: pub, Inventory: apiv1.Inventory{Hostname: fmt.Sprintf("m%d", i), OSType: "linux", AgentVersion: "1"}}, http.StatusCreated)
	}
	path := "/v1/subscriptions/" + fs.sub + "/resourceGroups/rg/guestconfiguration/ssh"
	modes := []string{ModeAudit, ModeApplyAndMonitor}
	benchCall(b, fs, http.MethodPut, path, fs.owner, apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.0", Mode: ModeApplyAndMonitor}, http.StatusCreated)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		benchCall(b, fs, http.MethodPut, path, fs.owner, apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.0", Mode: modes[i%2]}, http.StatusOK)
	}
}
