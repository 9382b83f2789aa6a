package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// sarifSchemaPath is the OASIS SARIF 2.1.0 JSON schema (errata 01), kept
// in testdata/ so that the tests need nothing outside the repository.
var sarifSchemaPath = filepath.Join("testdata", "sarif-schema-2.1.0.json")

// goldenFormats are the formats of this package's golden files, with the
// file extension each is stored under.
var goldenFormats = []struct{ format, ext string }{
	{"json", "json"},
	{"sarif", "sarif"},
	{"junit", "junit.xml"},
	{"markdown", "md"},
	{"html", "html"},
	{"csv", "csv"},
	{"table", "txt"},
}

var (
	schemaOnce  sync.Once
	reportSch   *jsonschema.Schema
	sarifSch    *jsonschema.Schema
	sarifSchErr error
	reportErr   error
)

func loadSchemas() {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		reportErr = err
	} else if err := c.AddResource(SchemaID, doc); err != nil {
		reportErr = err
	} else {
		reportSch, reportErr = c.Compile(SchemaID)
	}

	b, err := os.ReadFile(sarifSchemaPath)
	if err != nil {
		sarifSchErr = err
		return
	}
	sdoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		sarifSchErr = err
		return
	}
	// The schema's own id, so that references inside it resolve to itself.
	const url = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	if err := c.AddResource(url, sdoc); err != nil {
		sarifSchErr = err
		return
	}
	sarifSch, sarifSchErr = c.Compile(url)
}

// validateReportJSON validates a JSON report against the published schema.
func validateReportJSON(t *testing.T, name string, b []byte) {
	t.Helper()
	schemaOnce.Do(loadSchemas)
	if reportErr != nil {
		t.Fatalf("compile the report schema: %v", reportErr)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not JSON: %v", name, err)
	}
	if err := reportSch.Validate(inst); err != nil {
		t.Errorf("%s does not validate against reports/schema/report.schema.json:\n%v", name, err)
	}
}

// validateSARIF validates SARIF against the SARIF 2.1.0 schema.
func validateSARIF(t *testing.T, name string, b []byte) {
	t.Helper()
	schemaOnce.Do(loadSchemas)
	if sarifSchErr != nil {
		t.Fatalf("load the SARIF schema from %s: %v", sarifSchemaPath, sarifSchErr)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not JSON: %v", name, err)
	}
	if err := sarifSch.Validate(inst); err != nil {
		t.Errorf("%s does not validate against sarif-schema-2.1.0.json:\n%v", name, err)
	}
}

func renderFormat(t testing.TB, format string, r *Report) []byte {
	t.Helper()
	w, err := New(format, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := w.Write(&buf, r); err != nil {
		t.Fatalf("write %s: %v", format, err)
	}
	return buf.Bytes()
}

// TestGoldens renders every fixture in every format, compares the output
// with testdata/, validates JSON and SARIF against their schemas, and
// checks that rendering from the saved JSON (what `arcagent report
// convert` does) gives the same bytes as rendering the report directly.
func TestGoldens(t *testing.T) {
	for _, fx := range fixtures {
		for _, f := range goldenFormats {
			t.Run(fx.name+"/"+f.format, func(t *testing.T) {
				r := fx.report()
				got := renderFormat(t, f.format, r)
				name := fx.name + "." + f.ext
				checkGolden(t, name, got)
				switch f.format {
				case "json":
					validateReportJSON(t, name, got)
				case "sarif":
					validateSARIF(t, name, got)
				}
				saved, err := ReadJSON(bytes.NewReader(renderFormat(t, "json", r)))
				if err != nil {
					t.Fatalf("read back the JSON report: %v", err)
				}
				if again := renderFormat(t, f.format, saved); !bytes.Equal(again, got) {
					t.Errorf("%s rendered from the saved JSON report differs from the direct rendering:\n%s", f.format, firstDiff(got, again))
				}
			})
		}
	}
}

// TestGoldenFilesValidate validates every JSON and SARIF file under
// testdata/, including goldens other tests (or the audit fixtures) add.
func TestGoldenFilesValidate(t *testing.T) {
	for _, pat := range []string{"*.sarif", "*.json"} {
		files, err := filepath.Glob(filepath.Join("testdata", "**", pat))
		if err != nil {
			t.Fatal(err)
		}
		top, _ := filepath.Glob(filepath.Join("testdata", pat))
		files = append(files, top...)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if pat == "*.sarif" {
				validateSARIF(t, f, b)
			} else if bytes.Contains(b, []byte(`"schemaVersion"`)) {
				validateReportJSON(t, f, b)
			}
		}
	}
}

// TestWritersDoNotChangeTheReport: writers get a shared report (one run
// writes several formats), so none may modify it.
func TestWritersDoNotChangeTheReport(t *testing.T) {
	for _, f := range goldenFormats {
		r := waiversReport()
		before := renderFormat(t, "json", r)
		renderFormat(t, f.format, r)
		if after := renderFormat(t, "json", r); !bytes.Equal(before, after) {
			t.Errorf("the %s writer changed the report", f.format)
		}
	}
}
