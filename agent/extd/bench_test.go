package extd

import (
	"context"
	"fmt"
	"testing"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// BenchmarkIdlePass50 is one reconcile pass with 50 extensions installed,
// enabled and in their desired state: nothing to do, no command runs. (The
// daemon does not even run this pass when the desired state answers 304
// and nothing local changed; it is what a change of localconfig.json costs.)
func BenchmarkIdlePass50(b *testing.B) {
	e := newEnvB(b)
	var specs []apiv1.ExtensionSpec
	for i := range 50 {
		specs = append(specs, e.publish(fmt.Sprintf("ext%02d", i), pub, fmt.Sprintf("Handler%02d", i), "1.0.0", e.signer))
	}
	e.cp.assign(specs...)
	e.pass()
	e.journalLines()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		out, err := e.m.Reconcile(ctx, e.cp, nil, "")
		if err != nil || out.Changed {
			b.Fatalf("idle pass: %+v %v", out, err)
		}
	}
	b.StopTimer()
	if got := e.journalLines(); len(got) != 0 {
		b.Fatalf("an idle pass ran handler commands: %v", got)
	}
}
