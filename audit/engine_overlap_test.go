package audit

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/arcagent/arcagent/audit/fixture"
	"github.com/arcagent/arcagent/reports"
	"github.com/arcagent/arcagent/rules"
)

// Rules compile while the target is collected: a rule that does not
// compile is still the error Run returns (a usage error), even when the
// collection fails too, as when compiling came first.
func TestRunCompileErrorWinsOverCollect(t *testing.T) {
	root := t.TempDir()
	fixture.New(t, root).DefaultInstall()
	good := rules.Rule{ID: "ARC-TEST-001", Title: "ok", Severity: reports.SeverityLow, Profiles: []string{"test"}, Check: "true", Message: "m"}
	bad := good
	bad.ID, bad.Check = "ARC-TEST-002", "facts.config +"
	missing := filepath.Join(root, "no-such-localconfig.json")
	for _, tc := range []struct {
		name      string
		rule      rules.Rule
		collect   Options
		wantErr   bool
		wantUsage bool
	}{
		{"good rule, tree", good, Options{Root: root, Now: testNow}, false, false},
		{"bad rule, tree", bad, Options{Root: root, Now: testNow}, true, true},
		{"bad rule, unreadable planned file", bad, Options{PlannedConfig: missing, Now: testNow}, true, true},
		{"good rule, unreadable planned file", good, Options{PlannedConfig: missing, Now: testNow}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), RunOptions{Collect: tc.collect, Rules: []rules.Rule{tc.rule}})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			var ue *UsageError
			if errors.As(err, &ue) != tc.wantUsage {
				t.Errorf("err = %v (%T), want usage error %v", err, err, tc.wantUsage)
			}
		})
	}
}
