package main

import (
	"bytes"
	"context"
	"os"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/extd"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/audit"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/buildinfo"
	"github.com/arcagent/arcagent/reports"
)

// uploadReport sends r's JSON report to the control plane the machine is
// connected to, signed with the machine key (as the heartbeats are).
func (a *app) uploadReport(ctx context.Context, r *reports.Report) (apiv1.AuditReportInfo, error) {
	var none apiv1.AuditReportInfo
	if r.Target.Kind == reports.TargetPlanned {
		return none, errcode.New(extd.CodeUploadPlanned, "this audit checked a planned configuration (--config, or the default one because no agent is installed), not the machine")
	}
	l := a.layout()
	if os.Geteuid() != 0 && l.IsSystemRoot() {
		return none, errcode.New(extd.CodeUploadNotRoot, "the machine key (%s) is readable by root only", l.MachineKey())
	}
	cfg, err := himds.LoadAgentConfig(l)
	if err != nil {
		return none, errcode.Wrap(extd.CodeUploadNotConnected, err, "read the registration")
	}
	if cfg == nil {
		return none, errcode.New(extd.CodeUploadNotConnected, "no registration in %s", l.AgentConfig())
	}
	settings, _, err := config.NewStore(l).Load()
	if err != nil {
		return none, err
	}
	m, err := himds.MachineClient(l, cfg, settings, "arcagent-audit/"+buildinfo.Get().Version)
	if err != nil {
		return none, errcode.Wrap(extd.CodeUploadFailed, err, "prepare the upload to %s", cfg.Server)
	}
	var buf bytes.Buffer
	if err := (reports.JSONWriter{}).Write(&buf, r); err != nil {
		return none, errcode.Wrap(extd.CodeUploadFailed, err, "encode the report")
	}
	info, err := m.UploadAudit(ctx, buf.Bytes())
	if err != nil {
		return none, errcode.Wrap(extd.CodeUploadFailed, err, "upload the audit report to %s", cfg.Server)
	}
	return info, nil
}

// periodicAudit is extd's periodic audit: every built-in rule pack but the
// host profile (the default of `arcagent audit`), report only, uploaded.
func (a *app) periodicAudit(ctx context.Context) error {
	rs, err := loadRules("")
	if err != nil {
		return err
	}
	res, err := audit.Run(ctx, audit.RunOptions{
		Collect: audit.Options{Root: a.root},
		Rules:   rs,
		FailOn:  reports.FailOnNever,
		Warn:    func(s string) { a.log.Warn("periodic audit", "warning", s) },
	})
	if err != nil {
		return err
	}
	info, err := a.uploadReport(ctx, res.Report)
	if err != nil {
		return err
	}
	a.log.Info("audit report uploaded", "report", info.ID, "profile", info.Profile, "failed", info.Failed)
	return nil
}
