package testutil

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	sarifOnce sync.Once
	sarifSch  *jsonschema.Schema
	sarifErr  error
)

// SARIFSchemaPath is the copy of the SARIF 2.1.0 schema in the repository.
func SARIFSchemaPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "reports", "testdata", "sarif-schema-2.1.0.json")
}

// ValidateSARIF fails t unless b is a SARIF 2.1.0 log valid against the
// schema (never a JSON-only check: a missing schema fails too).
func ValidateSARIF(t testing.TB, b []byte) {
	t.Helper()
	sarifOnce.Do(func() {
		data, err := os.ReadFile(SARIFSchemaPath())
		if err != nil {
			sarifErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			sarifErr = err
			return
		}
		c := jsonschema.NewCompiler()
		const url = "file:///sarif-schema-2.1.0.json"
		if sarifErr = c.AddResource(url, doc); sarifErr == nil {
			sarifSch, sarifErr = c.Compile(url)
		}
	})
	if sarifErr != nil {
		t.Fatalf("load the SARIF schema: %v", sarifErr)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("SARIF is not JSON: %v\n%s", err, b)
	}
	if err := sarifSch.Validate(inst); err != nil {
		t.Fatalf("SARIF does not validate: %v", err)
	}
}
