package reports

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestSchemaCoversModel: every JSON field of the report model is described
// by the published schema and the schema describes nothing the model
// lacks, so the two cannot drift apart.
func TestSchemaCoversModel(t *testing.T) {
	var schema map[string]any
	if err := json.Unmarshal(Schema(), &schema); err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	defs := schema["$defs"].(map[string]any)
	resolve := func(s map[string]any) map[string]any {
		for {
			ref, ok := s["$ref"].(string)
			if !ok {
				return s
			}
			s = defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		}
	}
	var walk func(path string, typ reflect.Type, s map[string]any)
	walk = func(path string, typ reflect.Type, s map[string]any) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
			if items, ok := resolve(s)["items"].(map[string]any); ok {
				s = items
			}
		}
		if typ.Kind() != reflect.Struct || typ.PkgPath() != reflect.TypeOf(Report{}).PkgPath() {
			return
		}
		s = resolve(s)
		props, _ := s["properties"].(map[string]any)
		fields := map[string]bool{}
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = true
			ps, ok := props[name].(map[string]any)
			if !ok {
				t.Errorf("schema lacks %s.%s", path, name)
				continue
			}
			walk(path+"."+name, f.Type, ps)
		}
		var extra []string
		for name := range props {
			if !fields[name] {
				extra = append(extra, name)
			}
		}
		slices.Sort(extra)
		for _, name := range extra {
			t.Errorf("schema describes %s.%s, which the model does not have", path, name)
		}
	}
	walk("report", reflect.TypeOf(Report{}), schema)
}

// TestSchemaRejects: the schema is strict enough to catch broken reports.
func TestSchemaRejects(t *testing.T) {
	schemaOnce.Do(loadSchemas)
	if reportErr != nil {
		t.Fatal(reportErr)
	}
	good := renderFormat(t, "json", waiversReport())
	tests := []struct {
		name   string
		change func(m map[string]any)
	}{
		{"no schemaVersion", func(m map[string]any) { delete(m, "schemaVersion") }},
		{"newer schemaVersion", func(m map[string]any) { m["schemaVersion"] = 2 }},
		{"unknown status", func(m map[string]any) { resultAt(m, 0)["status"] = "maybe" }},
		{"unknown severity", func(m map[string]any) { resultAt(m, 0)["severity"] = "urgent" }},
		{"no fingerprint", func(m map[string]any) { delete(resultAt(m, 0), "fingerprint") }},
		{"bad fingerprint", func(m map[string]any) { resultAt(m, 0)["fingerprint"] = "not hex!" }},
		{"waived without waiver", func(m map[string]any) {
			for _, r := range m["results"].([]any) {
				if r := r.(map[string]any); r["status"] == "waived" {
					delete(r, "waiver")
				}
			}
		}},
		{"bad time", func(m map[string]any) { m["startedAt"] = "yesterday" }},
		{"null results", func(m map[string]any) { m["results"] = nil }},
		{"unknown target kind", func(m map[string]any) { m["target"].(map[string]any)["kind"] = "cloud" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(good, &m); err != nil {
				t.Fatal(err)
			}
			tc.change(m)
			b, _ := json.Marshal(m)
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if err := reportSch.Validate(inst); err == nil {
				t.Error("the schema accepted a broken report")
			}
		})
	}
}

func resultAt(m map[string]any, i int) map[string]any {
	return m["results"].([]any)[i].(map[string]any)
}
