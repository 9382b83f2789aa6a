package audit

import (
	"context"
	"testing"

	"github.com/arcagent/arcagent/rules"
)

// BenchmarkCompileBuiltin is the once-per-run cost of compiling every
// built-in rule.
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

// BenchmarkCollectLiveHost is the cost of reading this machine.
func BenchmarkCollectLiveHost(b *testing.B) {
	for b.Loop() {
		if _, err := Collect(context.Background(), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluatePerRule is the cost of each compiled rule on a full
// facts document (the hardened host of the rule tests).
func BenchmarkEvaluatePerRule(b *testing.B) {
	rs, err := rules.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	set, err := rules.Compile(rs)
	if err != nil {
		b.Fatal(err)
	}
	doc, err := factsDocument(goodFacts())
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range set.Rules {
		b.Run(c.ID, func(b *testing.B) {
			for b.Loop() {
				_ = c.Eval(doc)
			}
		})
	}
}

// BenchmarkRunLiveHost is a whole in-process audit of this machine:
// compile, collect, evaluate, summarise.
func BenchmarkRunLiveHost(b *testing.B) {
	rs, err := rules.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Run(context.Background(), RunOptions{Rules: rs}); err != nil {
			b.Fatal(err)
		}
	}
}
