package logbundle

import (
	"bytes"
	"strings"
	"testing"
)

// BenchmarkRedact measures the redactor on a 1 MiB service log with a
// secret every 50 lines.
func BenchmarkRedact(b *testing.B) {
	var r Redactor
	r.AddSecret([]byte("ChallengeSecretValue0123456789abcdef"))
	var buf bytes.Buffer
	for i := 0; buf.Len() < 1<<20; i++ {
		buf.WriteString(`time=2026-12-03T10:00:00Z level=INFO msg="heartbeat sent" machine=m-1 status=200 latency=3.2ms` + "\n")
		if i%50 == 0 {
			buf.WriteString(`time=2026-12-03T10:00:01Z level=DEBUG msg=call authorization="Bearer arcp_abcdefghijklmnop" secret=ChallengeSecretValue0123456789abcdef` + "\n")
		}
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		out, _ := r.Redact(data)
		if strings.Contains(string(out), "arcp_abcdef") {
			b.Fatal("not redacted")
		}
	}
}
