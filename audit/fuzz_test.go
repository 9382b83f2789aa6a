package audit

import (
	"bytes"
	"testing"

	"github.com/arcagent/arcagent/reports"
)

func FuzzParseWaivers(f *testing.F) {
	f.Add([]byte("waivers:\n  - rule: ARC-T0-003\n    justification: j\n    expires: 2027-01-31\n"))
	f.Add([]byte("waivers: [{rule: A, host: 'dc*', resource: '[', justification: j, expires: '2027-01-31T00:00:00Z'}]"))
	f.Add([]byte("waivers:\n- &x {rule: A}\n- *x\n"))
	f.Add([]byte("---\n...\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ws, err := ParseWaivers("fuzz.yaml", data)
		if err != nil {
			return
		}
		for _, w := range ws {
			if w.Justification == "" || w.ExpiresAt().IsZero() {
				t.Fatalf("accepted a waiver without justification or expiry: %+v", w)
			}
			_ = w.Matches("ARC-T0-001", "host", "res")
		}
	})
}

func FuzzBaselineReport(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":1,"results":[{"ruleId":"ARC-T0-001","status":"fail","fingerprint":"ab"}]}`))
	f.Add([]byte(`{"schemaVersion":99}`))
	f.Add([]byte(`{"schemaVersion":1,"results":null,"baseline":{"fixed":null}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		base, err := reports.ReadJSON(bytes.NewReader(data))
		if err != nil {
			return
		}
		cur := &reports.Report{SchemaVersion: 1, Results: []reports.Result{{RuleID: "ARC-T0-001", Status: reports.StatusFail, Fingerprint: "ab"}}}
		applyBaseline(cur, base, "fuzz.json")
		if cur.Baseline == nil || cur.Baseline.New+cur.Baseline.Unchanged != 1 {
			t.Fatalf("baseline accounting broken: %+v", cur.Baseline)
		}
	})
}

// FuzzAdaptRemedy: remediations come from rule files, which may be a
// user's. Rewriting one for a --root target never leaves a local arcagent
// verb acting on this host, and never panics for a planned target.
func FuzzAdaptRemedy(f *testing.F) {
	f.Add("arcagent config set incomingconnections.enabled false")
	f.Add(`arcagent config set extensions.allowlist "A/B,C/D"` + "\nchown root:root /var/opt/azcmagent && systemctl restart himdsd")
	f.Add("arcagent config set extensions.blocklist --add X/Y; gpasswd -d alice himds; systemctl edit extd")
	f.Add("arcagent config set proxy.url \"\"")
	f.Fuzz(func(t *testing.T, s string) {
		out := adaptRemedy(s, reports.Target{Kind: reports.TargetRoot, Root: "/srv/img"}, map[string]string{"user:himds": "999", "group:himds": "995"})
		if m := arcagentVerbRE().FindString(out); m != "" {
			t.Errorf("%q -> %q still has %q", s, out, m)
		}
		_ = adaptRemedy(s, reports.Target{Kind: reports.TargetPlanned, Planned: "plan.json"}, nil)
	})
}
