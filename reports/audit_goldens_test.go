package reports

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// auditGoldens are the JSON reports the audit engine's own golden tests
// write from its fixtures: real engine output.
const auditGoldens = "../audit/testdata/golden/*.json"

// TestAuditGoldensValidate: every report the audit engine writes for its
// fixtures validates against the published schema, survives a read and
// write unchanged, and renders in every format as testdata/audit/ holds;
// its SARIF validates against the SARIF schema and GitHub's rules. When the
// audit goldens change, refresh these with
//
//	go test ./reports/ -run AuditGoldens -update
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
			base := strings.TrimSuffix(filepath.Base(f), ".json")
			for _, gf := range goldenFormats {
				out := renderFormat(t, gf.format, r)
				switch gf.format {
				case "json":
					// What convert reads, it writes back unchanged.
					var in, back any
					if json.Unmarshal(b, &in) != nil || json.Unmarshal(out, &back) != nil || !reflect.DeepEqual(in, back) {
						t.Errorf("the JSON report does not survive a read and write:\n%s", firstDiff(b, out))
					}
					continue
				case "sarif":
					validateSARIF(t, f+" as SARIF", out)
				}
				checkGolden(t, filepath.Join("audit", base+"."+gf.ext), out)
			}
		})
	}
}
