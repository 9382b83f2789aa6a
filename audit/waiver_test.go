package audit

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/audit/fixture"
	"github.com/arcagent/arcagent/reports"
)

func TestParseWaivers(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr string
		n       int
	}{
		{"valid", "waivers:\n  - rule: ARC-T0-003\n    justification: GC needed for baseline until Q1\n    expires: 2027-01-31\n", "", 1},
		{"rfc3339 and scope", "waivers:\n  - rule: ARC-PR-010\n    host: dc*\n    resource: var/opt/*\n    justification: x\n    expires: 2027-01-31T10:00:00Z\n", "", 1},
		{"missing justification", "waivers:\n  - rule: ARC-T0-003\n    expires: 2027-01-31\n", ":2: waiver 1 (ARC-T0-003): justification is required", 0},
		{"missing expiry", "waivers:\n  - rule: ARC-T0-003\n    justification: x\n", "expires is required", 0},
		{"bad expiry", "waivers:\n  - rule: ARC-T0-003\n    justification: x\n    expires: soon\n", `expires "soon" is not a date`, 0},
		{"missing rule", "waivers:\n  - justification: x\n    expires: 2027-01-01\n", "rule is required", 0},
		{"unknown field", "waivers:\n  - rule: A-B\n    justification: x\n    expires: 2027-01-01\n    expiry: 2028-01-01\n", `unknown key "expiry"`, 0},
		{"bad glob", "waivers:\n  - rule: A-B\n    host: '['\n    justification: x\n    expires: 2027-01-01\n", "malformed", 0},
		{"not yaml", "waivers: [", "not valid YAML", 0},
		{"empty", "", "empty", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, err := ParseWaivers("w.yaml", []byte(tt.data))
			if tt.wantErr != "" {
				var we *WaiverError
				if err == nil || !errors.As(err, &we) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a WaiverError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(ws) != tt.n {
				t.Fatalf("ws=%v err=%v", ws, err)
			}
		})
	}
}

func TestWaiverScopeExpiryAndJustification(t *testing.T) {
	fixture.RequireRoot(t)
	root := t.TempDir()
	tr := fixture.New(t, root)
	tr.DefaultInstall()
	parse := func(s string) []Waiver {
		ws, err := ParseWaivers("w.yaml", []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	tests := []struct {
		name       string
		waivers    string
		waived     []string
		warnings   string
		gateFailed bool
	}{
		{"host scope matches", "waivers:\n- {rule: ARC-T0-003, host: FIXTURE-*, justification: needed for baseline policies, expires: 2026-12-31}\n", []string{"ARC-T0-003"}, "", true},
		{"host scope does not match", "waivers:\n- {rule: ARC-T0-003, host: dc01, justification: j, expires: 2026-12-31}\n", nil, "", true},
		{"expired waiver stops waiving and warns", "waivers:\n- {rule: ARC-T0-003, justification: old exception, expires: 2026-10-01}\n", nil, "waiver for ARC-T0-003 (old exception) expired on 2026-10-01", true},
		{"resource scope", "waivers:\n- {rule: ARC-T0-001, resource: nothing-here, justification: j, expires: 2026-12-31}\n", nil, "", true},
		{"waivers for everything clear the gate", "waivers:\n" +
			"- {rule: ARC-T0-001, justification: a, expires: 2026-12-31}\n- {rule: ARC-T0-002, justification: b, expires: 2026-12-31}\n" +
			"- {rule: ARC-T0-003, justification: c, expires: 2026-12-31}\n- {rule: ARC-T0-004, justification: d, expires: 2026-12-31}\n",
			[]string{"ARC-T0-001", "ARC-T0-002", "ARC-T0-003", "ARC-T0-004"}, "", false},
		{"unknown rule warns", "waivers:\n- {rule: ARC-XX-999, justification: j, expires: 2026-12-31}\n", nil, "matches no rule", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var warned []string
			r := auditTree(t, root, func(o *RunOptions) {
				o.Waivers = parse(tt.waivers)
				o.Warn = func(s string) { warned = append(warned, s) }
			})
			got := failing(r, reports.StatusWaived)
			if strings.Join(got, ",") != strings.Join(tt.waived, ",") {
				t.Errorf("waived = %v, want %v", got, tt.waived)
			}
			for _, res := range r.Results {
				if res.Status == reports.StatusWaived && (res.Waiver == nil || res.Waiver.Justification == "") {
					t.Errorf("%s waived without its justification", res.RuleID)
				}
			}
			if tt.warnings != "" && !strings.Contains(strings.Join(warned, "\n"), tt.warnings) {
				t.Errorf("warnings %q lack %q", warned, tt.warnings)
			}
			if r.Summary.Gate != tt.gateFailed {
				t.Errorf("gate = %v, want %v", r.Summary.Gate, tt.gateFailed)
			}
			for _, aw := range r.Waivers {
				if strings.Contains(tt.name, "expired") && !aw.Expired {
					t.Error("applied waiver not marked expired")
				}
			}
		})
	}
}

func TestBaselineNewUnchangedFixed(t *testing.T) {
	fixture.RequireRoot(t)
	root := t.TempDir()
	tr := fixture.New(t, root)
	tr.DefaultInstall()
	before := auditTree(t, root, nil)
	// Fix remote access, break guest configuration differently: T0-001 is
	// fixed; the rest unchanged; a new proxy-credentials finding appears.
	tr.LocalConfig(map[string]any{"incomingconnections.enabled": false, "proxy.url": "http://user:pw@proxy:3128"})
	after := auditTree(t, root, func(o *RunOptions) { o.Baseline, o.BaseFile = before, "before.json" })
	b := after.Baseline
	if b == nil {
		t.Fatal("no baseline info")
	}
	state := map[string]string{}
	for _, res := range after.Results {
		if res.Status == reports.StatusFail {
			state[res.RuleID] = res.Baseline
		}
	}
	want := map[string]string{"ARC-BL-006": "new", "ARC-T0-002": "unchanged", "ARC-T0-003": "unchanged", "ARC-T0-004": "unchanged", "ARC-BL-007": "unchanged"}
	for id, s := range want {
		if state[id] != s {
			t.Errorf("%s: baseline state %q, want %q", id, state[id], s)
		}
	}
	if len(b.Fixed) != 1 || b.Fixed[0].RuleID != "ARC-T0-001" || b.New != 1 || b.Unchanged != 4 {
		t.Errorf("baseline = %+v", b)
	}
}

func TestWaiverMatches(t *testing.T) {
	w := Waiver{Rule: "arc-t0-001", Host: "DC*", expires: time.Now().Add(time.Hour)}
	if !w.Matches("ARC-T0-001", "dc01", "") || w.Matches("ARC-T0-001", "web01", "") || w.Matches("ARC-T0-002", "dc01", "") {
		t.Error("match rules wrong")
	}
}

// A misspelt key is named with its line and the key it probably meant,
// never as a Go type.
func TestWaiverUnknownKeyNamed(t *testing.T) {
	for _, c := range []struct {
		data string
		want []string
	}{
		{"waivers:\n  - rule: ARC-T0-003\n    justifcation: because\n    expires: 2027-01-01\n",
			[]string{"w.yaml:3:", `unknown key "justifcation"`, "did you mean justification?"}},
		{"waivers:\n  - rule: ARC-T0-003\n    justification: because\n    expiry: 2027-01-01\n",
			[]string{"w.yaml:4:", `unknown key "expiry"`, "did you mean expires?"}},
		{"waiver:\n  - rule: ARC-T0-003\n", []string{"w.yaml:1:", `unknown key "waiver"`, "did you mean waivers?"}},
	} {
		_, err := ParseWaivers("w.yaml", []byte(c.data))
		if err == nil {
			t.Errorf("%q: accepted", c.data)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", c.data, err, w)
			}
		}
		if strings.Contains(err.Error(), "audit.") || strings.Contains(err.Error(), "in type") {
			t.Errorf("error names a Go type: %v", err)
		}
	}
}
