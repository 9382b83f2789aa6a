package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/gcad"
	"github.com/arcagent/arcagent/agent/guestconfig"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// TestGuestconfigShowEscapesControlCharacters: evidence, reasons and
// messages quote the target's files (a keyvalue line, a script's output),
// which their owners write; `guestconfig show` and `list` print them for a
// person with control and bidi characters as escapes, never raw.
func TestGuestconfigShowEscapesControlCharacters(t *testing.T) {
	root := t.TempDir()
	l := layout.New(root)
	const evil = "x\x1b]0;owned\x07\x1b[2J\r\u202eexe"
	st := gcad.State{Version: 1, Desired: []apiv1.GuestConfigurationAssignment{}, Assignments: []gcad.Entry{{
		Name: "ssh", Policy: "Contoso.Baseline.SSH", Version: "1.0.0", Mode: "Audit", LastEvaluation: time.Now(),
		Status: apiv1.GuestConfigurationStatus{Name: "ssh", Compliance: guestconfig.NonCompliant, Message: "m" + evil},
	}}}
	rep := guestconfig.Report{Name: "SSH", Version: "1.0.0", Mode: guestconfig.Audit, Compliance: guestconfig.NonCompliant, Resources: []guestconfig.ResourceReport{{
		ID: "banner", Type: "keyvalue", Title: "t" + evil, Compliance: guestconfig.NonCompliant, Reason: "r" + evil,
		Evidence: guestconfig.Evidence{"raw": "Banner " + evil, "k" + evil: "v"}, Remediation: "fix" + evil,
		Steps: []guestconfig.Step{{Name: "test", Outcome: guestconfig.NonCompliant, Message: "s" + evil}},
	}}}
	for p, v := range map[string]any{gcad.StatePath(l): st, gcad.ReportPath(l, "ssh"): rep} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A document's titles are its author's: `guestconfig check` escapes them.
	doc := filepath.Join(t.TempDir(), "guestconfig.yaml")
	if err := os.WriteFile(doc, []byte("apiVersion: arcagent.dev/guestconfig/v1\nname: SSH\nversion: 1.0.0\nresources:\n  - id: a\n    title: \"t\\e]0;owned\\a\\e[2J\"\n    file: {path: /etc/x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"guestconfig", "show", "ssh", "--root", root}, {"guestconfig", "list", "--root", root}, {"guestconfig", "check", doc}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, strings.NewReader(""), &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		out := stdout.String()
		if i := strings.IndexAny(out, "\x1b\x07\r\u202e"); i >= 0 {
			t.Fatalf("%v: a control or bidi character reached the output: ...%q...", args, out[max(0, i-30):min(len(out), i+30)])
		}
		if !strings.Contains(out, `x1b]0;owned`) {
			t.Errorf("%v: the output does not show the escapes:\n%s", args, out)
		}
	}
}
