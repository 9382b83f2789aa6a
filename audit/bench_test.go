package audit

import (
	"context"
	"testing"

	"github.com/arcagent/arcagent/rules"
)

func BenchmarkCompileBuiltin(b *testing.B) {
	rs, err := rules.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := rules.Compile(rs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCollectLiveHost(b *testing.B) {
	for b.Loop() {
		if _, err := Collect(context.Background(), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
