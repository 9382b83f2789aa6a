package controlplane

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// FuzzGuestConfigAssignRequest feeds assignment bodies to the decoder and
// validator: no panic, only API errors, and what is accepted is within
// every limit.
func FuzzGuestConfigAssignRequest(f *testing.F) {
	for _, s := range []struct{ name, body string }{
		{"ssh", `{"policy":"Contoso.Baseline.SSH","version":"1.0","mode":"Audit","parameters":{"maxAuthTries":"4"}}`},
		{"ssh", `{"policy":"Contoso.Baseline.SSH","version":"1.0"}`},
		{"ssh", `{"policy":"Contoso","version":"1.0"}`},
		{"ssh", `{"policy":".SSH","version":"1.0"}`},
		{"ssh", `{"policy":"Contoso.","version":"1.0"}`},
		{"ssh", `{"policy":"A.B","version":"1","mode":"Enforce"}`},
		{"ssh", `{"policy":"A.B","version":"1","parameters":{"_x":"1"}}`},
		{"ssh", `{"policy":"A.B","version":"1","parameters":{"x":"a\nb"}}`},
		{"ssh", `{"policy":"A.B","version":"1","parameters":{"x":1}}`},
		{"-bad", `{"policy":"A.B","version":"1"}`},
	} {
		f.Add(s.name, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		var req apiv1.GuestConfigurationAssignRequest
		if err := DecodeStrict(bytes.NewReader(data), maxGCBody, &req); err != nil {
			checkAPIError(t, err)
			return
		}
		v, err := validateAssign(name, &req)
		checkAPIError(t, err)
		if err != nil {
			return
		}
		if v.pkg.Validate() != nil || checkName("name", name, 64) != nil || !slices.Contains([]string{ModeAudit, ModeApplyAndMonitor, ModeApplyAndAutoCorrect}, v.mode) {
			t.Fatalf("accepted name %q package %+v mode %q", name, v.pkg, v.mode)
		}
		if len(v.params) > maxGCParameters {
			t.Fatalf("accepted %d parameters", len(v.params))
		}
		for k, val := range v.params {
			if !validParameterName(k) || len(val) > maxGCParameterValue || !printable(val) {
				t.Fatalf("accepted parameter %q=%q", k, val)
			}
		}
	})
}

// FuzzGuestConfigStatus feeds status bodies to the decoder, the validator
// and the merge: no panic, only API errors, an accepted report is within
// the limits, and merging it keeps the sections it leaves out.
func FuzzGuestConfigStatus(f *testing.F) {
	for _, s := range []string{
		`{"guestConfiguration":[{"name":"ssh","complianceStatus":"NonCompliant","resources":[{"id":"r1","type":"file","complianceStatus":"NonCompliant","reason":"mode 0644","evidence":{"mode":"0644"}}]}]}`,
		`{"guestConfiguration":[{"name":"ssh","complianceStatus":"NotApplied","message":"disabled by local configuration"}]}`,
		`{"guestConfiguration":[{"name":"ssh","complianceStatus":"Pending"}]}`,
		`{"guestConfiguration":[{"name":"ssh","complianceStatus":"Compliant","resources":[{"id":"","complianceStatus":"Compliant"}]}]}`,
		`{"guestConfiguration":[{"name":"ssh","complianceStatus":"Compliant","durationMs":-1}]}`,
		`{"extensions":[{"name":"mon","state":"Succeeded"}],"services":[{"name":"extd","state":"Running"}]}`,
		`{"guestConfiguration":null,"extensions":[]}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	stored := apiv1.MachineStatus{
		Extensions:         []apiv1.ExtensionStatus{{Name: "kept", State: "Succeeded"}},
		GuestConfiguration: []apiv1.GuestConfigurationStatus{{Name: "kept", Compliance: "Compliant"}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var st apiv1.MachineStatus
		if err := DecodeStrict(bytes.NewReader(data), maxStatusBody, &st); err != nil {
			checkAPIError(t, err)
			return
		}
		err := validateStatus(&st)
		checkAPIError(t, err)
		if err != nil {
			return
		}
		total := 0
		for _, g := range st.GuestConfiguration {
			if !slices.Contains(assignmentCompliance, g.Compliance) || len(g.Resources) > maxGCResourcesPerAssignment {
				t.Fatalf("accepted %+v", g)
			}
			total += len(g.Resources)
			for _, r := range g.Resources {
				if r.ID == "" || len(r.ID) > 128 || len(r.Reason) > 4096 || len(r.Evidence) > maxGCEvidence || !slices.Contains(resourceCompliance, r.Compliance) {
					t.Fatalf("accepted resource %+v", r)
				}
			}
		}
		if total > maxGCResourcesPerReport {
			t.Fatalf("accepted %d resources", total)
		}
		m := mergeStatus(stored, st)
		if st.Extensions == nil && !slices.EqualFunc(m.Extensions, stored.Extensions, func(a, b apiv1.ExtensionStatus) bool { return a.Name == b.Name }) {
			t.Fatalf("a report without extensions changed them: %+v", m.Extensions)
		}
		if st.GuestConfiguration == nil && len(m.GuestConfiguration) != 1 {
			t.Fatalf("a report without guest configuration changed it: %+v", m.GuestConfiguration)
		}
		if m.Extensions == nil || m.GuestConfiguration == nil || len(m.Services) > maxServices {
			t.Fatalf("merged %+v", m)
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatal(err)
		}
	})
}
