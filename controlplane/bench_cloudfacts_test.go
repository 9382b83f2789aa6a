package controlplane

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// BenchmarkCloudFacts is one machine asking for its cloud facts in a
// subscription of n machines (the count reads the subscription's machines).
func BenchmarkCloudFacts(b *testing.B) {
	for _, n := range []int{100, 2000} {
		b.Run(fmt.Sprintf("machines=%d", n), func(b *testing.B) {
			fs := newFuzzServer(b)
			for i := 1; i < n; i++ {
				k, _ := cloud.GenerateKey()
				pub, _ := cloud.MarshalPublicKey(&k.PublicKey)
				benchCall(b, fs, http.MethodPost, "/v1/machines/register", fs.secret,
					apiv1.RegisterRequest{PublicKey: pub, Inventory: apiv1.Inventory{Hostname: fmt.Sprintf("m%05d", i), OSType: "linux", AgentVersion: "1"}}, http.StatusCreated)
			}
			want := []byte(fmt.Sprintf(`"otherMachines":%d`, n-1))
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				a, err := cloud.SignAssertion(fs.mach.Key, fs.machine, fs.audience, time.Now(), time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				out := benchCall(b, fs, http.MethodGet, "/v1/machines/"+fs.machine+"/cloudFacts", a, nil, http.StatusOK)
				if !bytes.Contains(out, want) {
					b.Fatalf("want %s in %s", want, out)
				}
			}
		})
	}
}
