package rules

import (
	"testing"
)

func FuzzParseAndCompile(f *testing.F) {
	f.Add([]byte(goodRule))
	f.Add([]byte("rules:\n  - id: A-B\n    title: t\n    severity: info\n    profiles: [p]\n    check: 'true'\n    message: '${1 + }'\n    rationale: r\n    remediation: x\n"))
	f.Add([]byte("rules: [{id: A-B, title: t, severity: low, profiles: [p], check: 'item.x', for_each: '[1,2]', message: m, rationale: r, remediation: x}]"))
	f.Add([]byte("rules:\n- &a {id: A-B}\n- *a\n"))
	f.Add([]byte("{{{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		set, err := Compile(rs)
		if err != nil {
			return
		}
		// Evaluating against arbitrary facts must never panic.
		for _, c := range set.Rules {
			_ = c.Eval(map[string]any{"x": 1.0})
		}
	})
}
