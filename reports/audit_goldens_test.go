package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// auditGoldens are the JSON reports the audit engine's own golden tests
// write from its fixtures: real engine output.
const auditGoldens = "../audit/testdata/golden/*.json"

// TestAuditGoldensValidate: every report the audit engine writes for its
// fixtures validates against the published schema, and renders in every
// format; its SARIF validates against the SARIF schema.
func TestAuditGoldensValidate(t *testing.T) {
	files, _ := filepath.Glob(auditGoldens)
	if len(files) == 0 {
		t.Skipf("no audit golden reports at %s", auditGoldens)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			validateReportJSON(t, f, b)
			r, err := ReadJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			checkGitHubSARIF(t, r)
			for _, gf := range goldenFormats {
				out := renderFormat(t, gf.format, r)
				if gf.format == "sarif" {
					validateSARIF(t, f+" as SARIF", out)
				}
			}
		})
	}
}
