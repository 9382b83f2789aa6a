package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestReportConvertEscapesControlCharacters: a saved report is untrusted
// input; what `report convert` prints for a person shows its control and
// bidi characters as escapes instead of sending them to the terminal.
func TestReportConvertEscapesControlCharacters(t *testing.T) {
	const saved = `{"schemaVersion":1,"tool":{"name":"arcagent","version":"0.3.0"},
"target":{"kind":"host","host":"evil\u001b[2J\u001b[H","note":"ring\u0007"},"profiles":["tier0"],"failOn":"high",
"rules":[{"id":"ARC-T0-002","title":"t\u001b]0;owned\u0007","severity":"high","profiles":["tier0"],"rationale":"r","remediation":"fix\u001b[8m"}],
"results":[{"ruleId":"ARC-T0-002","severity":"high","status":"fail","message":"bad\rgate: passed \u202eexe.txt","resource":"res\u009b2J","location":{"path":"etc/x","line":1},"fingerprint":"f"}]}`
	for _, format := range []string{"table", "markdown", "html", "junit", "csv"} {
		t.Run(format, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run([]string{"report", "convert", "-", "-o", format}, strings.NewReader(saved), &stdout, &stderr)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			out := stdout.String()
			if i := strings.IndexAny(out, "\x1b\x07\r\u009b\u202e"); i >= 0 {
				t.Fatalf("a control or bidi character reached the %s output: ...%q...", format, out[max(0, i-30):min(len(out), i+30)])
			}
			if !strings.Contains(out, `x1b[2J`) || !strings.Contains(out, `u202eexe.txt`) {
				t.Errorf("the %s output does not show the escapes:\n%s", format, out)
			}
			// Escaped once: Markdown does not double the backslash of an escape.
			if format == "markdown" && (!strings.Contains(out, `| Target | host: evil\x1b\[2J\x1b\[H |`) || strings.Contains(out, `\\x1b`)) {
				t.Errorf("the Markdown target is not escaped once:\n%s", out)
			}
		})
	}
}
