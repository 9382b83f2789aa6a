package reports

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/internal/testutil"
)

// A streamed run has the audit's model: rules, levels, fingerprints; past
// its limit it keeps the first results and says how many it left out; the
// notes and properties known only at the end come after the results.
func TestSARIFStream(t *testing.T) {
	rules := fixtureRules()[:2]
	var b bytes.Buffer
	s, err := NewSARIFStream(&b, SARIFRun{Tool: Tool{Name: "arcagent", Version: "1.2.3"}, Rules: rules, AutomationID: "arcagent/test/", MaxResults: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, host := range []string{"a", "b", "c"} {
		res := Result{RuleID: rules[i%2].ID, Severity: rules[i%2].Severity, Status: StatusFail, Message: "m " + host, Resource: "r"}
		if err := s.Result(host, &res); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Result("x", &Result{RuleID: "ARC-NOPE"}); err == nil {
		t.Error("a result of a rule the run does not describe was written")
	}
	if err := s.Close([]SARIFNote{{Level: "note", Text: "hello", Descriptor: "arcagent/test"}}, map[string]int{"n": 3}); err != nil {
		t.Fatal(err)
	}
	testutil.ValidateSARIF(t, b.Bytes())
	var log struct {
		Runs []struct {
			Tool struct {
				Driver struct{ Rules []struct{ ID string } }
			}
			Results []struct {
				RuleID              string
				Level               string
				PartialFingerprints map[string]string
			}
			Invocations []struct {
				ToolExecutionNotifications []struct{ Message struct{ Text string } }
			}
			Properties map[string]int
		}
	}
	if err := json.Unmarshal(b.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	if len(run.Tool.Driver.Rules) != 2 || len(run.Results) != 2 || run.Results[0].Level != sarifLevel(rules[0].Severity) ||
		run.Results[1].PartialFingerprints["arcagentFingerprint/v1"] != Fingerprint(rules[1].ID, "b", "r") || run.Properties["n"] != 3 {
		t.Errorf("run %+v", run)
	}
	notes := run.Invocations[0].ToolExecutionNotifications
	if len(notes) != 2 || !strings.Contains(notes[0].Message.Text, "1 findings were left out") || notes[1].Message.Text != "hello" {
		t.Errorf("notifications %+v", notes)
	}
	if bytes.Index(b.Bytes(), []byte(`"results"`)) > bytes.Index(b.Bytes(), []byte(`"invocations"`)) {
		t.Error("invocations before the streamed results")
	}
}
