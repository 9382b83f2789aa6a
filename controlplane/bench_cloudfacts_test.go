package controlplane

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/store"
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

// hiddenCounter is a store without CountOtherMachines (as another
// implementation of Store may be): the server counts through ListMachines.
type hiddenCounter struct{ store.Store }

func TestOtherMachinesFallback(t *testing.T) {
	fs := newFuzzServer(t)
	for i := 1; i < 4; i++ {
		k, _ := cloud.GenerateKey()
		pub, _ := cloud.MarshalPublicKey(&k.PublicKey)
		body, _ := json.Marshal(apiv1.RegisterRequest{PublicKey: pub, Inventory: apiv1.Inventory{Hostname: fmt.Sprintf("m%d", i), OSType: "linux", AgentVersion: "1"}})
		r := httptest.NewRequest(http.MethodPost, "/v1/machines/register", bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+fs.secret)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		fs.s.Handler().ServeHTTP(w, r)
		if w.Code != http.StatusCreated {
			t.Fatalf("register: %d %s", w.Code, w.Body)
		}
	}
	m, err := fs.s.st.Machine(t.Context(), fs.machine)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	fast, err1 := fs.s.otherMachines(r, m)
	slow, err2 := (&Server{st: hiddenCounter{fs.s.st}}).otherMachines(r, m)
	if err1 != nil || err2 != nil || fast != 3 || slow != 3 {
		t.Fatalf("other machines: counted %d (%v), listed %d (%v), want 3", fast, err1, slow, err2)
	}
}
