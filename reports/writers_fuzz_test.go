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
// panic or fail, SARIF and JSON must stay JSON, JUnit must stay XML, and no
// control, bidi or invalid byte may reach a human-readable output.
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
	f.Add([]byte(`{"schemaVersion":1,"target":{"host":"h\u001b[2J\u0007","note":"a\rb"},"results":[{"ruleId":"R\u202e","severity":"high","status":"fail","resource":"\u009b","message":"m\u001b]0;t\u0007","evidence":{"k\u0000":["\u2066x"]}}],"rules":[{"id":"R\u202e","title":"\u001b[8m","remediation":"a\u001bb"}]}`))
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
			if name != "json" && name != "sarif" {
				if c, bad := unsafeRune(buf.Bytes()); bad {
					t.Fatalf("%U reached the %s output", c, name)
				}
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
