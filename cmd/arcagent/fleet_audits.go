package main

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/buildinfo"
	"github.com/arcagent/arcagent/internal/table"
	"github.com/arcagent/arcagent/reports"
)

func init() { fleetCommands = append(fleetCommands, newFleetAuditsCmd) }

type fleetAuditsFlags struct {
	rule, severity, profile string
	sub, rg                 string
	outputs                 []string
	output                  string
}

func newFleetAuditsCmd(a *app) *cobra.Command {
	f := &fleetAuditsFlags{}
	cmd := &cobra.Command{
		Use:   "audits",
		Short: "List the failing rules of the machines' uploaded audits, in any report format",
		Long: `audits lists the failing rules (status fail) of the latest audit report each
machine uploaded (arcagent audit --upload, or extd's periodic audit with
audit.upload.enabled) for each of its profiles, across every machine you
may read (Microsoft.HybridCompute/machines/read): ordered by severity, rule
and machine.

-o takes every format of arcagent audit. SARIF has one run per machine (its
properties.machine names it), JSON is the list of findings, the other
formats show one report whose resources are the machines. The exit code is
0 whatever was found (a listing, not a gate).`,
		Example: `  arcagent fleet audits
  arcagent fleet audits --severity high --resource-group web
  arcagent fleet audits --rule ARC-T0-001 -o csv --file failing.csv
  arcagent fleet audits -o sarif=fleet.sarif -o html=fleet.html`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runFleetAudits(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.rule, "rule", "", "only this rule id (case-insensitive)")
	fl.StringVar(&f.severity, "severity", "", "only findings at or above this severity: critical, high, medium, low, info")
	fl.StringVar(&f.profile, "profile", "", "only reports of this profile (as the server keys it, e.g. all, or baseline,tier0)")
	fl.StringVar(&f.sub, "subscription", "", "only machines of this subscription (id or name)")
	fl.StringVar(&f.rg, "resource-group", "", "only machines of this resource group (needs --subscription when the name is not unique)")
	fl.StringArrayVarP(&f.outputs, "format", "o", nil, "output FORMAT[=FILE], repeatable: "+strings.Join(reports.Formats(), ", ")+" (default table, or json with -j)")
	fl.StringVar(&f.output, "file", "", "write the one -o format to this file instead of standard output (same as -o FORMAT=FILE; --output is -o)")
	_ = cmd.RegisterFlagCompletionFunc("format", completeFormats(reports.Formats))
	_ = cmd.RegisterFlagCompletionFunc("severity", completeFixed(severityNames()...))
	return cmd
}

func (a *app) runFleetAudits(cmd *cobra.Command, f *fleetAuditsFlags) error {
	specs := a.defaultOutputs(f.outputs)
	if f.output != "" {
		if len(specs) != 1 || strings.Contains(specs[0], "=") {
			return errcode.New(errcode.Usage, "--file FILE needs exactly one -o FORMAT without a file (or use -o FORMAT=FILE)")
		}
		specs = []string{specs[0] + "=" + f.output}
	}
	outs, err := a.outputs(specs)
	if err != nil {
		return err
	}
	q := cloud.AuditFindingsQuery{RuleID: strings.TrimSpace(f.rule), Profile: strings.TrimSpace(f.profile)}
	var scope []string
	if f.severity != "" {
		sev, err := parseSeverityFlag("severity", f.severity)
		if err != nil {
			return err
		}
		q.Severity = string(sev)
		scope = append(scope, "severity "+q.Severity+" and above")
	}
	op, _, err := a.fleetOperator()
	if err != nil {
		return err
	}
	if q.SubscriptionID, q.ResourceGroup, err = op.ResolveListScope(cmd.Context(), f.sub, f.rg); err != nil {
		return err
	}
	for _, s := range []struct{ k, v string }{{"rule", q.RuleID}, {"profile", q.Profile}, {"subscription", q.SubscriptionID}, {"resource group", q.ResourceGroup}} {
		if s.v != "" {
			scope = append(scope, s.k+" "+s.v)
		}
	}
	fs, err := op.FleetAuditFindings(cmd.Context(), q)
	if err != nil {
		return err
	}
	bi := buildinfo.Get()
	fr := &reports.FleetReport{
		Tool:        reports.Tool{Name: "arcagent", Version: bi.Version, InformationURI: "https://github.com/arcagent/arcagent"},
		GeneratedAt: time.Now().UTC().Truncate(time.Second),
		Scope:       strings.Join(scope, ", "),
	}
	for _, x := range fs {
		fr.Findings = append(fr.Findings, reports.FleetFinding{
			Machine: x.MachineName, MachineID: x.MachineID, ResourceID: x.ResourceID, SubscriptionID: x.SubscriptionID, ResourceGroup: x.ResourceGroup,
			Profile: x.Profile, RuleID: x.RuleID, Severity: reports.Severity(x.Severity), Title: x.Title, Message: x.Message, Remediation: x.Remediation, ReportedAt: x.ReportedAt,
		})
	}
	if err := reports.WriteFleetAll(fr, outs, a.stdout, reports.Options{Color: a.color(), Width: table.Width(a.stdout)}); err != nil {
		return errcode.Wrap(errcode.WriteFailed, err, "report")
	}
	return nil
}
