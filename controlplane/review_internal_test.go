package controlplane

import (
	"strings"
	"testing"
	"time"
)

// TestParseAuditUploadResource: a failing result's resource joins the
// stored message, which `arcagent fleet audits` and the dashboard show:
// control and invisible characters in it (a file a local user named with
// a terminal's escape codes or a line break that forges a finding) are
// escaped, not stored raw, and the report is still kept; one too long is
// refused.
func TestParseAuditUploadResource(t *testing.T) {
	base := `{"schemaVersion":1,"tool":{"name":"arcagent"},"startedAt":"2026-01-01T00:00:00Z","target":{"kind":"host"},"rules":[{"id":"R1","severity":"high","title":"t"}],"results":[{"ruleId":"R1","severity":"high","status":"fail","message":"m","resource":RES}]}`
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for res, want := range map[string]string{
		`"\u001b[31mred"`:         `\x1b[31mred: m`,
		`"a\nR2 critical forged"`: `a\nR2 critical forged: m`,
		`"x\u202ey"`:              `x\u202ey: m`,
		`"/etc/ssh/sshd_config"`:  `/etc/ssh/sshd_config: m`,
	} {
		pa, err := ParseAuditUpload([]byte(strings.Replace(base, "RES", res, 1)), now)
		if err != nil || pa.Findings[0].Message != want {
			t.Errorf("resource %s: %+v %v, want message %q", res, pa, err, want)
		}
	}
	_, err := ParseAuditUpload([]byte(strings.Replace(base, "RES", `"`+strings.Repeat("r", 5000)+`"`, 1)), now)
	if err == nil || !strings.Contains(err.Error(), "resource is 5000 bytes") {
		t.Errorf("a 5000-byte resource: %v", err)
	}
}

// TestParseAuditUploadMessage: a failing result's message quotes values
// from the host (a local user can put escape codes in a file the audit
// reads): it is stored escaped, line breaks kept, and the report is kept,
// so that nobody on the host can stop its audit upload.
func TestParseAuditUploadMessage(t *testing.T) {
	base := `{"schemaVersion":1,"tool":{"name":"arcagent"},"startedAt":"2026-01-01T00:00:00Z","target":{"kind":"host"},"rules":[{"id":"R1","severity":"high","title":"t"}],"results":[{"ruleId":"R1","severity":"high","status":"fail","message":MSG}]}`
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for msg, want := range map[string]string{
		`"PermitRootLogin is \u001b[2Jyes"`: `PermitRootLogin is \x1b[2Jyes`,
		`"two\nlines"`:                      "two\nlines",
		`"plain"`:                           `plain`,
	} {
		pa, err := ParseAuditUpload([]byte(strings.Replace(base, "MSG", msg, 1)), now)
		if err != nil || len(pa.Findings) != 1 || pa.Findings[0].Message != want {
			t.Errorf("message %s: %+v %v, want %q", msg, pa, err, want)
		}
	}
	_, err := ParseAuditUpload([]byte(strings.Replace(base, "MSG", `"`+strings.Repeat("m", maxAuditText+1)+`"`, 1)), now)
	if err == nil || !strings.Contains(err.Error(), "message is") {
		t.Errorf("a message over the limit: %v", err)
	}
}
