package netcheck

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// BenchmarkCheckEndpoint measures one endpoint's check (DNS of 127.0.0.1,
// TCP, TLS 1.3 with chain verification, one GET) on loopback.
func BenchmarkCheckEndpoint(b *testing.B) {
	ca := newCA(b)
	s := serve(b, ca.leaf(b, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), http.StatusOK)
	o := Options{Endpoints: []Endpoint{{Name: "api", URL: s.URL + "/healthz"}}, CAPEM: ca.pem}
	for b.Loop() {
		if rep := Run(context.Background(), o); !rep.OK() {
			b.Fatal(rep.Results[0].Message)
		}
	}
}
