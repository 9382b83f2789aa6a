package strictjson

import (
	"encoding/json"
	"errors"
	"testing"
)

type inner struct {
	Name string `json:"name"`
}

type Embedded struct {
	Region string `json:"region"`
}

type request struct {
	Embedded
	Scope  string            `json:"scope"`
	Tags   map[string]string `json:"tags"`
	Items  []inner           `json:"items"`
	Ptr    *inner            `json:"ptr"`
	Raw    json.RawMessage   `json:"raw"`
	Any    any               `json:"any"`
	NoTag  int
	Hidden string `json:"-"`
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		v       any
		want    error
		key     string
		path    string
		wantMsg string
	}{
		{name: "clean", in: `{"scope":"/","tags":{"a":"1","A":"2"},"items":[{"name":"x"}],"region":"eu","NoTag":1}`, v: &request{}},
		{name: "duplicate top-level key", in: `{"scope":"/","scope":"/subscriptions/x"}`, v: &request{}, want: ErrDuplicateKey, key: "scope", wantMsg: `key "scope" appears twice`},
		{name: "case variant", in: `{"Scope":"/"}`, v: &request{}, want: ErrCaseMismatch, key: "Scope", wantMsg: `key "Scope" must be spelled "scope" (field names are case-sensitive)`},
		{name: "case variant after the exact one", in: `{"scope":"/","SCOPE":"/x"}`, v: &request{}, want: ErrCaseMismatch, key: "SCOPE"},
		{name: "case variant of an untagged field", in: `{"notag":1}`, v: &request{}, want: ErrCaseMismatch, key: "notag"},
		{name: "case variant of an embedded field", in: `{"Region":"eu"}`, v: &request{}, want: ErrCaseMismatch, key: "Region"},
		{name: "duplicate map key", in: `{"tags":{"a":"1","a":"2"}}`, v: &request{}, want: ErrDuplicateKey, key: "a", path: "tags"},
		{name: "case variant in a slice element", in: `{"items":[{"name":"x"},{"Name":"y"}]}`, v: &request{}, want: ErrCaseMismatch, key: "Name", path: "items[1]"},
		{name: "case variant behind a pointer", in: `{"ptr":{"NAME":"x"}}`, v: &request{}, want: ErrCaseMismatch, key: "NAME", path: "ptr"},
		{name: "duplicate inside raw", in: `{"raw":{"k":1,"k":2}}`, v: &request{}, want: ErrDuplicateKey, key: "k", path: "raw"},
		{name: "raw keys are free of case rules", in: `{"raw":{"Name":1},"any":{"Scope":1}}`, v: &request{}},
		{name: "unknown keys are left to the decoder", in: `{"other":1}`, v: &request{}},
		{name: "hidden field is unknown, not case-variant", in: `{"hidden":1}`, v: &request{}},
		{name: "duplicate without a type", in: `[{"a":1},{"b":{"c":1,"c":1}}]`, want: ErrDuplicateKey, key: "c", path: "[1].b"},
		{name: "scalars", in: `"x"`},
		{name: "map target", in: `{"a":1,"a":2}`, v: &map[string]int{}, want: ErrDuplicateKey, key: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]byte(tt.in), tt.v)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			var e *Error
			if !errors.Is(err, tt.want) || !errors.As(err, &e) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
			if e.Key != tt.key || e.Path != tt.path {
				t.Errorf("key %q at %q, want %q at %q", e.Key, e.Path, tt.key, tt.path)
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Errorf("message %q, want %q", err.Error(), tt.wantMsg)
			}
		})
	}
}

func TestCheckInvalid(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a":}`, `[1,`} {
		if err := Check([]byte(in), nil); err == nil {
			t.Errorf("Check(%q) = nil", in)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	var r request
	if err := Unmarshal([]byte(`{"scope":"/"}`), &r); err != nil || r.Scope != "/" {
		t.Fatalf("Unmarshal = %v, %+v", err, r)
	}
	for in, want := range map[string]string{
		`{"scope":"/"} {}`:          "data after the JSON value",
		`{"nope":1}`:                `json: unknown field "nope"`,
		`{"SCOPE":"/"}`:             `key "SCOPE" must be spelled "scope" (field names are case-sensitive)`,
		`{"scope":"a","scope":"b"}`: `key "scope" appears twice`,
	} {
		if err := Unmarshal([]byte(in), &request{}); err == nil || err.Error() != want {
			t.Errorf("Unmarshal(%s) = %v, want %s", in, err, want)
		}
	}
}
