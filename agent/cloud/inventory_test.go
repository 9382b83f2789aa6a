package cloud

import (
	"errors"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
)

func TestDecodeInventory(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string // machine names, then "ext:" + extension versions
		err        string
	}{
		{"two machines", `{"value":[{"name":"a","agentVersion":"1","extensions":[{"version":"2"},{"version":"3"}]},{"name":"b","extensions":[]}]}`, []string{"a", "ext:2", "ext:3", "b"}, ""},
		{"empty", `{"value":[]}`, nil, ""},
		{"other members skipped", `{"nextLink":null,"value":[{"name":"a"}],"x":{"y":[1]}}`, []string{"a"}, ""},
		{"cut short", `{"value":[{"name":"a"},{"name":"b"`, []string{"a"}, "cut short"},
		{"no value", `{"other":[]}`, nil, `no "value" list`},
		{"not an object", `[]`, nil, "not a machine list"},
		{"value not a list", `{"value":{}}`, nil, "value is not a list"},
		{"wrong type", `{"value":[{"name":1}]}`, nil, "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := decodeInventory(strings.NewReader(tc.body), func(m *apiv1.MachineInventory) error {
				got = append(got, m.Name)
				for _, x := range m.Extensions {
					got = append(got, "ext:"+x.Version)
				}
				return nil
			})
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("machines %v, want %v", got, tc.want)
			}
		})
	}
	// The callback's error is returned as is.
	stop := errors.New("stop")
	if err := decodeInventory(strings.NewReader(`{"value":[{"name":"a"}]}`), func(*apiv1.MachineInventory) error { return stop }); err != stop {
		t.Fatalf("callback error: %v", err)
	}
}

// FuzzDecodeInventory feeds arbitrary response bodies to the streamed
// inventory decoder: it must not panic, and fails only with its own
// coded error.
func FuzzDecodeInventory(f *testing.F) {
	for _, s := range []string{
		`{"value":[{"id":"1","name":"a","agentVersion":"1.2.0","osType":"linux","extensions":[{"name":"m","publisher":"P","type":"T","version":"1","state":"Succeeded"}]}]}`,
		`{"value":[]}`, `{"value":null}`, `{"value":[{"name":"a"},`, `{}`, `null`, `{"value":[1,2]}`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := decodeInventory(strings.NewReader(string(data)), func(m *apiv1.MachineInventory) error { return nil })
		var ce *errcode.Error
		if err != nil && (!errors.As(err, &ce) || ce.Code != apiv1.CodeBadResponse) {
			t.Fatalf("error not coded %s: %T %v", apiv1.CodeBadResponse, err, err)
		}
	})
}
