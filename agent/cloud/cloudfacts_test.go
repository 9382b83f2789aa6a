package cloud_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
)

const validFacts = `{"machineId":"m1","resourceId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/web01",
"subscriptionId":"s","resourceGroup":"rg","otherMachines":3,
"assignments":[{"principal":"owner","role":"Owner","scope":"/","inheritedFrom":"tenant"},
{"principal":"carol","role":"Connected Machine Resource Administrator","scope":"/subscriptions/s/resourceGroups/rg","inheritedFrom":"resourceGroup"}],
"adminRoles":["Owner"],"standingAdmins":["carol","owner"],"futureField":1}`

func TestParseCloudFacts(t *testing.T) {
	f, err := cloud.ParseCloudFacts([]byte(validFacts))
	if err != nil {
		t.Fatal(err)
	}
	if f.OtherMachines != 3 || len(f.Assignments) != 2 || f.Assignments[1].InheritedFrom != apiv1.FromResourceGroup {
		t.Errorf("parsed %+v", f)
	}
	for name, tc := range map[string]struct{ body, want string }{
		"not JSON":          {`{`, "not valid"},
		"duplicate key":     {`{"otherMachines":1,"otherMachines":0}`, "twice"},
		"case variant":      {`{"OtherMachines":1}`, "spelled"},
		"negative count":    {`{"otherMachines":-1}`, "negative"},
		"unknown level":     {`{"assignments":[{"principal":"a","role":"Owner","inheritedFrom":"galaxy"}]}`, "inheritedFrom"},
		"empty principal":   {`{"assignments":[{"principal":" ","role":"Owner","inheritedFrom":"tenant"}]}`, "empty"},
		"control character": {`{"standingAdmins":["a\u001b[31m"]}`, "control"},
		"long name":         {`{"standingAdmins":["` + strings.Repeat("a", 300) + `"]}`, "longer"},
		"too many admins":   {`{"standingAdmins":[` + strings.Repeat(`"a",`, apiv1.MaxCloudAssignments) + `"a"]}`, "more than"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := cloud.ParseCloudFacts([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errcode.Is(err, apiv1.CodeBadResponse) {
				t.Fatalf("err %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	empty, err := cloud.ParseCloudFacts([]byte(`{}`))
	if err != nil || empty.Assignments == nil || empty.StandingAdmins == nil {
		t.Errorf("{}: %+v %v, want empty lists", empty, err)
	}
}

// FuzzParseCloudFacts: the body the audit trusts nothing of never panics
// the parser, and what it accepts survives a round trip unchanged.
func FuzzParseCloudFacts(f *testing.F) {
	for _, s := range []string{validFacts, `{}`, `null`, `[]`, `{"otherMachines":1e309}`, `{"assignments":[null]}`,
		`{"standingAdmins":["\ud800"]}`, `{"assignments":[{"principal":"a","role":"r","inheritedFrom":"machine","Scope":"x"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := cloud.ParseCloudFacts(data)
		if err != nil {
			return
		}
		if got.OtherMachines < 0 || len(got.Assignments) > apiv1.MaxCloudAssignments {
			t.Fatalf("accepted out-of-bounds facts %+v", got)
		}
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		again, err := cloud.ParseCloudFacts(b)
		if err != nil || !reflect.DeepEqual(got, again) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, got, again)
		}
	})
}
