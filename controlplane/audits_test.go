package controlplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/reports"
)

// auditReport is a JSON report of host with one result per (rule,
// status) pair; rules are ARC-T-<rule> with severity high, or low for
// rules starting with "L".
func auditReport(t testing.TB, host string, at time.Time, results ...[2]string) []byte {
	t.Helper()
	r := &reports.Report{
		SchemaVersion: reports.SchemaVersion, Tool: reports.Tool{Name: "arcagent", Version: "test"}, RunID: "run-" + host,
		StartedAt: at, Target: reports.Target{Kind: reports.TargetHost, Host: host}, Profiles: []string{"tier0", "baseline"}, FailOn: reports.SeverityHigh,
	}
	seen := map[string]bool{}
	for _, rs := range results {
		id := "ARC-T-" + rs[0]
		sev := reports.SeverityHigh
		if strings.HasPrefix(rs[0], "L") {
			sev = reports.SeverityLow
		}
		if !seen[id] {
			seen[id] = true
			r.Rules = append(r.Rules, reports.Rule{ID: id, Title: "rule " + rs[0], Severity: sev, Remediation: "fix " + rs[0]})
		}
		r.Results = append(r.Results, reports.Result{RuleID: id, Severity: sev, Status: reports.Status(rs[1]), Message: rs[0] + " on " + host, Resource: "res-" + rs[0], Fingerprint: reports.Fingerprint(id, host, rs[0])})
	}
	r.Summarize()
	r.SortResults()
	var b bytes.Buffer
	if err := (reports.JSONWriter{}).Write(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func findingNames(fs []apiv1.AuditFinding) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.MachineName+":"+f.RuleID+":"+f.Severity)
	}
	return strings.Join(out, " ")
}

func TestAuditUploadAndFleetReads(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "web", "db")
	web1 := e.mustRegister(sub, "web", "web1")
	web2 := e.mustRegister(sub, "web", "web2")
	db1 := e.mustRegister(sub, "db", "db1")
	now := e.clock.Now()

	info, err := web1.m.UploadAudit(ctx, auditReport(t, "web1", now, [2]string{"A", "fail"}, [2]string{"A", "fail"}, [2]string{"B", "pass"}, [2]string{"LC", "fail"}, [2]string{"D", "error"}, [2]string{"E", "waived"}))
	if err != nil {
		t.Fatal(err)
	}
	if info.Failed != 2 || info.Profile != "baseline,tier0" || info.MachineID != web1.reg.MachineID || !info.CreatedAt.Equal(now) {
		t.Fatalf("upload answer: %+v", info)
	}
	if _, err := web2.m.UploadAudit(ctx, auditReport(t, "web2", now, [2]string{"A", "fail"})); err != nil {
		t.Fatal(err)
	}
	if _, err := db1.m.UploadAudit(ctx, auditReport(t, "db1", now, [2]string{"A", "fail"}, [2]string{"B", "fail"})); err != nil {
		t.Fatal(err)
	}

	fs, err := e.owner.FleetAuditFindings(ctx, cloudQuery{}.q())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := findingNames(fs), "db1:ARC-T-A:high web1:ARC-T-A:high web2:ARC-T-A:high db1:ARC-T-B:high web1:ARC-T-LC:low"; got != want {
		t.Fatalf("findings:\n got %s\nwant %s", got, want)
	}
	var a apiv1.AuditFinding
	for _, f := range fs {
		if f.MachineName == "web1" && f.RuleID == "ARC-T-A" {
			a = f
		}
	}
	if a.Message != "res-A: A on web1\nres-A: A on web1" || a.Title != "rule A" || a.Remediation != "fix A" || a.ResourceGroup != "web" || a.ResourceID != web1.reg.ResourceID {
		t.Fatalf("finding: %+v", a)
	}
	for _, tc := range []struct {
		name string
		q    cloudQuery
		want string
	}{
		{"rule", cloudQuery{rule: "arc-t-b"}, "db1:ARC-T-B:high"},
		{"severity", cloudQuery{severity: "high", rg: "web"}, "web1:ARC-T-A:high web2:ARC-T-A:high"},
		{"profile", cloudQuery{profile: "host"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			if q.rg != "" {
				q.sub = sub
			}
			fs, err := e.owner.FleetAuditFindings(ctx, q.q())
			if err != nil {
				t.Fatal(err)
			}
			if got := findingNames(fs); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	_, err = e.owner.FleetAuditFindings(ctx, cloudQuery{severity: "urgent"}.q())
	wantCode(t, err, http.StatusBadRequest, apiv1.CodeBadRequest, "severity")

	// RBAC: a Reader of resource group web sees only its machines.
	webReader := e.operatorFor("web-reader", rbac.Reader, rbac.ResourceGroupScope(sub, "web"))
	fs, err = webReader.FleetAuditFindings(ctx, cloudQuery{}.q())
	if err != nil {
		t.Fatal(err)
	}
	if got := findingNames(fs); got != "web1:ARC-T-A:high web2:ARC-T-A:high web1:ARC-T-LC:low" {
		t.Fatalf("web reader sees %s", got)
	}
	_, err = webReader.FleetAuditFindings(ctx, cloudQuery{sub: sub, rg: "db"}.q())
	wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden)
	_, err = webReader.MachineAudits(ctx, db1.reg.MachineID, "")
	wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden)
	nobody := e.operatorFor("nobody", "", "")
	_, err = nobody.FleetAuditFindings(ctx, cloudQuery{}.q())
	wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden)

	// History: newest first; the stored document is the one uploaded.
	later := auditReport(t, "web1", now.Add(time.Minute), [2]string{"B", "fail"})
	if _, err := web1.m.UploadAudit(ctx, later); err != nil {
		t.Fatal(err)
	}
	hist, err := webReader.MachineAudits(ctx, web1.reg.MachineID, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || !hist[0].CreatedAt.Equal(now.Add(time.Minute)) || hist[0].Failed != 1 {
		t.Fatalf("history: %+v", hist)
	}
	doc, err := webReader.MachineAuditReport(ctx, web1.reg.MachineID, hist[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	_ = json.Compact(&want, later) // the client sends the report compacted
	if !bytes.Equal(doc, want.Bytes()) {
		t.Fatalf("stored report differs from the upload")
	}
	if _, err := reports.ReadJSON(bytes.NewReader(doc)); err != nil {
		t.Fatalf("stored report: %v", err)
	}
	_, err = e.owner.MachineAuditReport(ctx, web2.reg.MachineID, hist[0].ID)
	wantCode(t, err, http.StatusNotFound, apiv1.CodeNotFound)
	// The latest report replaced web1's findings.
	fs, _ = e.owner.FleetAuditFindings(ctx, cloudQuery{sub: sub, rg: "web"}.q())
	if got := findingNames(fs); got != "web2:ARC-T-A:high web1:ARC-T-B:high" {
		t.Fatalf("after a newer report: %s", got)
	}

	// The history is bounded (20 by default).
	for i := range 25 {
		if _, err := web2.m.UploadAudit(ctx, auditReport(t, "web2", now.Add(time.Duration(i+1)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	if hist, _ := e.owner.MachineAudits(ctx, web2.reg.MachineID, "baseline,tier0"); len(hist) != controlplane.DefaultAuditHistory || !hist[0].CreatedAt.Equal(now.Add(25*time.Second)) {
		t.Fatalf("history of %d reports, newest %v", len(hist), hist[0].CreatedAt)
	}

	// Deleting a machine deletes its reports.
	if err := e.owner.DeleteMachine(ctx, db1.reg.MachineID); err != nil {
		t.Fatal(err)
	}
	fs, _ = e.owner.FleetAuditFindings(ctx, cloudQuery{}.q())
	if strings.Contains(findingNames(fs), "db1") {
		t.Fatalf("deleted machine still listed: %s", findingNames(fs))
	}
}

func TestAuditUploadRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "web")
	m := e.mustRegister(sub, "web", "web1")
	other := e.mustRegister(sub, "web", "web2")
	now := e.clock.Now()
	good := auditReport(t, "web1", now, [2]string{"A", "fail"})
	var doc map[string]any
	if err := json.Unmarshal(good, &doc); err != nil {
		t.Fatal(err)
	}
	with := func(k string, v any) []byte {
		d := map[string]any{}
		for kk, vv := range doc {
			d[kk] = vv
		}
		d[k] = v
		b, _ := json.Marshal(d)
		return b
	}
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"garbage", []byte("not json"), "not an arcagent JSON report"},
		{"array", []byte("[1,2]"), "not an arcagent JSON report"},
		{"no schema", with("schemaVersion", 0), "schemaVersion is missing"},
		{"newer schema", with("schemaVersion", 2), "upgrade arcserver"},
		{"planned", with("target", map[string]any{"kind": "planned", "host": "x"}), "planned configuration"},
		{"future", with("startedAt", now.Add(2*time.Hour)), "ahead of the server's clock"},
		{"bad status", with("results", []any{map[string]any{"ruleId": "ARC-T-A", "severity": "high", "status": "broken", "message": "m", "location": map[string]any{"path": "", "line": 1}, "fingerprint": "00000000000000000000"}}), "status \"broken\""},
		{"unknown rule", with("results", []any{map[string]any{"ruleId": "ARC-X", "severity": "high", "status": "fail", "message": "m", "location": map[string]any{"path": "", "line": 1}, "fingerprint": "00000000000000000000"}}), "do not describe it"},
		{"duplicate key", append([]byte(`{"schemaVersion":1,"schemaVersion":1,`), good[1:]...), "twice"},
		{"trailing", append(append([]byte{}, good...), []byte("{}")...), "data after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.m.UploadAudit(ctx, tc.body)
			if tc.name == "garbage" || tc.name == "trailing" {
				// The client refuses to send invalid JSON; send it raw.
				tok, _ := m.assertionFor(t)
				code, _, ae, _ := e.raw(http.MethodPost, "/v1/machines/"+m.reg.MachineID+"/audits", tok, "application/json", strings.NewReader(string(tc.body)))
				if code != http.StatusBadRequest || !strings.Contains(ae.Message, tc.want) {
					t.Fatalf("HTTP %d %+v", code, ae)
				}
				return
			}
			wantCode(t, err, http.StatusBadRequest, apiv1.CodeBadRequest, tc.want)
		})
	}
	// Unknown properties (a newer agent's additions) are accepted.
	if _, err := m.m.UploadAudit(ctx, with("somethingNew", true)); err != nil {
		t.Fatalf("unknown property: %v", err)
	}
	// Too large.
	tok, _ := m.assertionFor(t)
	big := bytes.Repeat([]byte(" "), controlplane.MaxAuditBody+1)
	if code, _, ae, _ := e.raw(http.MethodPost, "/v1/machines/"+m.reg.MachineID+"/audits", tok, "application/json", bytes.NewReader(big)); code != http.StatusRequestEntityTooLarge || !strings.Contains(ae.Message, "8 MiB") {
		t.Fatalf("too large: HTTP %d %+v", code, ae)
	}
	// A machine uploads only for itself; operators cannot upload.
	tok, _ = m.assertionFor(t)
	if code, _, ae, _ := e.raw(http.MethodPost, "/v1/machines/"+other.reg.MachineID+"/audits", tok, "application/json", bytes.NewReader(good)); code != http.StatusForbidden {
		t.Fatalf("other machine: HTTP %d %+v", code, ae)
	}
	if code, _, _, _ := e.raw(http.MethodPost, "/v1/machines/"+m.reg.MachineID+"/audits", e.ownerT, "application/json", bytes.NewReader(good)); code != http.StatusUnauthorized {
		t.Fatalf("operator upload: HTTP %d", code)
	}
	tok, _ = m.assertionFor(t)
	if code, _, _, _ := e.raw(http.MethodPost, "/v1/machines/"+m.reg.MachineID+"/audits", tok, "text/plain", bytes.NewReader(good)); code != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: HTTP %d", code)
	}
}

// cloudQuery builds the operator client's query in table tests.
type cloudQuery struct{ sub, rg, rule, severity, profile string }

func (c cloudQuery) q() cloud.AuditFindingsQuery {
	return cloud.AuditFindingsQuery{SubscriptionID: c.sub, ResourceGroup: c.rg, RuleID: c.rule, Severity: c.severity, Profile: c.profile}
}

// assertionFor signs a fresh assertion of the machine for raw requests.
func (m testMachine) assertionFor(t *testing.T) (string, error) {
	t.Helper()
	a, err := cloud.SignAssertion(m.key, m.reg.MachineID, m.reg.Audience, m.m.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return a, nil
}
