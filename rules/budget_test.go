package rules

import (
	"context"
	"os"
	"strings"
	"testing"
)

func hostileSet(t *testing.T) *Set {
	t.Helper()
	data, err := os.ReadFile("testdata/hostile.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Parse("testdata/hostile.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	set, err := Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func hostileFacts(n int) map[string]any {
	items := make([]any, n)
	for i := range items {
		items[i] = float64(i)
	}
	return map[string]any{"items": items}
}

// A rule over its cost budget is an error result that names the budget;
// the rules next to it still evaluate. Without the limit the first rule
// builds an eight-million-element list; at 1000 items, a billion (minutes, gigabytes).
func TestCostLimitStopsHostileRules(t *testing.T) {
	set := hostileSet(t)
	facts := hostileFacts(200)
	for _, c := range set.Rules[:2] {
		out := c.Eval(facts)
		if len(out) != 1 || out[0].Status != "error" || !strings.Contains(out[0].Reason, "evaluation budget") {
			t.Errorf("%s: %+v, want one error over the evaluation budget", c.ID, out)
		}
	}
	if out := set.Rules[2].Eval(facts); out[0].Status != "pass" {
		t.Errorf("harmless rule: %+v", out)
	}
	// Small inputs stay within the budget: the limit is not a ban.
	if out := set.Rules[0].Eval(hostileFacts(10)); out[0].Status != "fail" {
		t.Errorf("nested maps over 10 items: %+v", out)
	}
}

// A cancelled context interrupts a running comprehension.
func TestEvalContextCancelled(t *testing.T) {
	set := hostileSet(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := set.Rules[1].EvalContext(ctx, hostileFacts(150))
	if len(out) != 1 || out[0].Status != "error" || !strings.Contains(out[0].Reason, "interrupted") {
		t.Errorf("cancelled evaluation: %+v", out)
	}
}
