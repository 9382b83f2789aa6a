package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuiltinCompiles(t *testing.T) {
	rs, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	set, err := Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	profiles := Profiles(rs)
	for _, p := range []string{"tier0", "baseline", "privilege", "extensions"} {
		if !strings.Contains(strings.Join(profiles, ","), p) {
			t.Errorf("no rules in profile %s", p)
		}
	}
	for _, c := range set.Rules {
		if len(c.References) == 0 {
			t.Errorf("%s has no references", c.ID)
		}
	}
}

const goodRule = `rules:
  - id: ORG-X-001
    title: Example
    severity: high
    profiles: [custom]
    check: facts.config.available
    message: "config is ${facts.config.source}"
    rationale: because
    remediation: arcagent config set x y
`

func TestParseErrorsNameFileRuleAndPosition(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string // substrings of the error
	}{
		{"valid", goodRule, nil},
		{"cel syntax error", strings.Replace(goodRule, "check: facts.config.available", "check: facts.config.available &&", 1), []string{"r.yaml:6:37:", "rule ORG-X-001 check", "does not compile"}},
		{"undeclared variable", strings.Replace(goodRule, "check: facts.config.available", "check: fact.config.available", 1), []string{"r.yaml:6:12:", "undeclared reference to 'fact'"}},
		{"bad template", strings.Replace(goodRule, "${facts.config.source}", "${facts.config.source", 1), []string{"rule ORG-X-001 message", "unclosed ${"}},
		{"bad expression in template", strings.Replace(goodRule, "${facts.config.source}", "${facts..x}", 1), []string{"rule ORG-X-001 message", "does not compile"}},
		{"unknown field", strings.Replace(goodRule, "title: Example", "title: Example\n    severty: low", 1), []string{"r.yaml:4: not a rule file", "field severty not found"}},
		{"bad severity", strings.Replace(goodRule, "severity: high", "severity: urgent", 1), []string{"rule ORG-X-001", "severity \"urgent\""}},
		{"bad id", strings.Replace(goodRule, "ORG-X-001", "my rule", 1), []string{"id \"my rule\""}},
		{"no remediation", strings.Replace(goodRule, "    remediation: arcagent config set x y\n", "", 1), []string{"remediation is required"}},
		{"profile all reserved", strings.Replace(goodRule, "[custom]", "[all]", 1), []string{"profile \"all\""}},
		{"duplicate id", goodRule + strings.TrimPrefix(goodRule, "rules:\n"), []string{"duplicate rule id"}},
		{"empty", "", []string{"empty"}},
		{"no rules", "rules: []\n", []string{"no rules"}},
		{"not yaml", "rules: [", []string{"not valid YAML"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := Parse("r.yaml", []byte(tt.data))
			if err == nil {
				_, err = Compile(rs)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var le *LoadError
			if err == nil || !errors.As(err, &le) {
				t.Fatalf("err = %v, want a LoadError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadDirAndMerge(t *testing.T) {
	dir := t.TempDir()
	override := strings.Replace(goodRule, "ORG-X-001", "ARC-T0-001", 1)
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("not a rule"), 0o644); err != nil {
		t.Fatal(err)
	}
	user, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	builtin, _ := Builtin()
	merged := Merge(builtin, user)
	if len(merged) != len(builtin) {
		t.Fatalf("an override must replace, not add: %d vs %d", len(merged), len(builtin))
	}
	for _, r := range merged {
		if r.ID == "ARC-T0-001" && r.Title != "Example" {
			t.Errorf("override not applied: %+v", r)
		}
	}
	if _, err := LoadDir(t.TempDir()); err == nil {
		t.Error("an empty rules directory must be an error")
	}
	if _, err := LoadDir(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing rules directory must be an error")
	}
}

func TestEvalEdgeCases(t *testing.T) {
	rs, err := Parse("r.yaml", []byte(`rules:
  - id: ORG-X-001
    title: list
    severity: low
    profiles: [custom]
    for_each: facts.items
    check: item.ok
    message: "${item.name} is not ok"
    rationale: r
    remediation: fix
  - id: ORG-X-002
    title: not a bool
    severity: low
    profiles: [custom]
    check: facts.count
    message: m
    rationale: r
    remediation: fix
  - id: ORG-X-003
    title: missing key
    severity: low
    profiles: [custom]
    check: facts.nope.deeper == 1
    message: m
    rationale: r
    remediation: fix
`))
	if err != nil {
		t.Fatal(err)
	}
	set, err := Compile(rs)
	if err != nil {
		t.Fatal(err)
	}
	facts := map[string]any{"items": []any{map[string]any{"name": "a", "ok": true}, map[string]any{"name": "b", "ok": false}}, "count": 3.0}
	out := set.Rules[0].Eval(facts)
	if len(out) != 2 || out[0].Status != "pass" || out[1].Status != "fail" || out[1].Message != "b is not ok" || out[1].Resource != "b" {
		t.Errorf("for_each outcomes = %+v", out)
	}
	if out := set.Rules[0].Eval(map[string]any{"items": []any{}}); out[0].Status != "not_applicable" {
		t.Errorf("empty for_each = %+v", out)
	}
	// An item a collector could not read is an error, not a pass or fail.
	unread := map[string]any{"items": []any{map[string]any{"name": "c", "ok": true, "error": "permission denied"}}}
	if out := set.Rules[0].Eval(unread); out[0].Status != "error" || out[0].Reason != "permission denied" || out[0].Resource != "c" {
		t.Errorf("unreadable item = %+v", out)
	}
	if out := set.Rules[1].Eval(facts); out[0].Status != "error" || !strings.Contains(out[0].Reason, "not a bool") {
		t.Errorf("non-bool check = %+v", out)
	}
	if out := set.Rules[2].Eval(facts); out[0].Status != "error" || !strings.Contains(out[0].Reason, "no such key") {
		t.Errorf("missing key = %+v", out)
	}
}

func TestBuildValidatesLikeParse(t *testing.T) {
	ok := Rule{ID: "ARC-X-001", Title: "t", Severity: "high", Profiles: []string{"x"}, Check: "true", Message: "m", Rationale: "r", Remediation: "fix"}
	rs, err := Build("builtin:test", []Rule{ok})
	if err != nil || len(rs) != 1 || rs[0].Source != "builtin:test" {
		t.Fatalf("a valid rule: %v %+v", err, rs)
	}
	if _, err := Compile(rs); err != nil {
		t.Fatalf("a built rule does not compile: %v", err)
	}
	bad := ok
	bad.ID = "lower-case"
	noCheck := ok
	noCheck.Check = ""
	for name, in := range map[string][]Rule{"bad id": {bad}, "no check": {noCheck}, "duplicate": {ok, ok}} {
		if _, err := Build("builtin:test", in); err == nil {
			t.Errorf("%s: built", name)
		}
	}
}
