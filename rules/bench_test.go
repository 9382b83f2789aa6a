package rules

import (
	"slices"
	"testing"
)

// BenchmarkCompile is the once-per-run cost of compiling rules: every
// built-in rule as each audit paid before (a fresh environment, every
// expression parsed anew), as Compile does now (shared environment, each
// distinct expression once), and only the tier0 rules that
// `audit --profile tier0` selects.
func BenchmarkCompile(b *testing.B) {
	rs, err := Builtin()
	if err != nil {
		b.Fatal(err)
	}
	var tier0 []Rule
	for _, r := range rs {
		if slices.Contains(r.Profiles, "tier0") {
			tier0 = append(tier0, r)
		}
	}
	b.Run("all-before", func(b *testing.B) {
		for b.Loop() {
			env, err := NewEnv()
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range rs { // no program cache: every expression parsed anew
				if _, err := compileRule(env, r, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("all-now", func(b *testing.B) {
		for b.Loop() {
			if _, err := Compile(rs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tier0-now", func(b *testing.B) {
		for b.Loop() {
			if _, err := Compile(tier0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
