package reports

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzWriters feeds arbitrary saved reports (what `arcagent report
// convert` reads from an untrusted file) through every writer: none may
// panic or fail, SARIF and JSON must stay JSON, and JUnit must stay XML.
//
//	go test ./reports/ -run '^$' -fuzz FuzzWriters -fuzztime 60s
func FuzzWriters(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"schemaVersion":1,"results":[{"ruleId":"X","severity":"bogus","status":"weird","location":{"path":"../../..","line":-5}}],"rules":[{"id":"X","profiles":null}]}`))
	f.Add([]byte(`{"schemaVersion":1,"results":[{"ruleId":"","status":"waived","evidence":{"a":[1,{"b":null}]}}],"baseline":{"fixed":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadJSON(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, name := range []string{"json", "sarif", "junit", "markdown", "html", "table"} {
			w, _ := New(name, Options{})
			var buf bytes.Buffer
			if err := w.Write(&buf, r); err != nil {
				t.Fatalf("%s writer failed: %v", name, err)
			}
			switch name {
			case "json", "sarif":
				if !json.Valid(buf.Bytes()) {
					t.Fatalf("%s output is not JSON", name)
				}
			case "junit":
				d := xml.NewDecoder(&buf)
				for {
					if _, err := d.Token(); err == io.EOF {
						break
					} else if err != nil {
						t.Fatalf("JUnit output is not XML: %v", err)
					}
				}
			}
		}
	})
}
