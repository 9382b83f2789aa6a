package cloud

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// UploadAudit sends an audit's JSON report (the bytes `arcagent audit -o
// json` writes) as the machine. The server keeps it as the machine's latest
// report of its profiles, with a bounded history.
func (m *Machine) UploadAudit(ctx context.Context, report []byte) (apiv1.AuditReportInfo, error) {
	var out apiv1.AuditReportInfo
	a, err := m.assertion()
	if err != nil {
		return out, err
	}
	_, _, err = m.c.call(ctx, http.MethodPost, m.path("/audits"), nil, a, nil, json.RawMessage(report), &out)
	return out, err
}

// AuditFindingsQuery narrows FleetAuditFindings; empty fields match all.
type AuditFindingsQuery struct {
	SubscriptionID, ResourceGroup string
	RuleID                        string
	Severity                      string // minimum severity
	Profile                       string
}

// FleetAuditFindings lists the failing rules of every readable machine's
// latest uploaded audit reports.
func (o *Operator) FleetAuditFindings(ctx context.Context, q AuditFindingsQuery) ([]apiv1.AuditFinding, error) {
	var out apiv1.List[apiv1.AuditFinding]
	v := scopeQuery(q.SubscriptionID, q.ResourceGroup)
	for k, s := range map[string]string{"rule": q.RuleID, "severity": q.Severity, "profile": q.Profile} {
		if s != "" {
			v.Set(k, s)
		}
	}
	err := o.do(ctx, http.MethodGet, "/v1/audits/findings", v, nil, &out)
	return out.Value, err
}

// MachineAudits lists a machine's uploaded reports, newest first
// (profile "" = every profile).
func (o *Operator) MachineAudits(ctx context.Context, machineID, profile string) ([]apiv1.AuditReportInfo, error) {
	var out apiv1.List[apiv1.AuditReportInfo]
	var q url.Values
	if profile != "" {
		q = url.Values{"profile": {profile}}
	}
	err := o.do(ctx, http.MethodGet, "/v1/machines/"+url.PathEscape(machineID)+"/audits", q, nil, &out)
	return out.Value, err
}

// MachineAuditReport returns one stored report as uploaded.
func (o *Operator) MachineAuditReport(ctx context.Context, machineID, reportID string) (json.RawMessage, error) {
	var out json.RawMessage
	err := o.do(ctx, http.MethodGet, "/v1/machines/"+url.PathEscape(machineID)+"/audits/"+url.PathEscape(reportID), nil, nil, &out)
	return out, err
}
