package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/extd"
	"github.com/arcagent/arcagent/audit"
	"github.com/arcagent/arcagent/audit/cloudfacts"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/buildinfo"
	"github.com/arcagent/arcagent/internal/table"
	"github.com/arcagent/arcagent/reports"
	"github.com/arcagent/arcagent/rules"
)

func init() { extraCommands = append(extraCommands, newAuditCmd) }

type auditFlags struct {
	profiles    []string
	onlyRules   []string
	skipRules   []string
	minSeverity string
	rulesDir    string
	planned     string
	waivers     string
	baseline    string
	failOn      string
	outputs     []string
	dumpFacts   bool
	quiet       bool
	host        string
	strict      bool
	upload      bool
	releases    releaseFlags // release source for the currency rules (fleet_currency.go)
}

func newAuditCmd(a *app) *cobra.Command {
	f := &auditFlags{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Audit this machine, a root tree or a planned configuration against the rule packs",
		Long: `Audit checks the local security controls, the privilege layout, installed
extensions and their signatures, credentials left on disk and (when a source
is configured) version currency, against the built-in rule packs:
tier0, baseline, privilege and extensions.

Targets: the live host (default); --root DIR, an image or fixture tree;
--config FILE, a planned localconfig.json before onboarding. With no agent
installed, the default configuration is audited as the planned one.

Exit codes, the first that holds: 2 bad usage or input (flags, rule,
waiver, baseline or --config files); 3 the audit could not complete (a rule
at or above --fail-on could not be evaluated: this wins over findings);
1 findings at or above --fail-on; 0 otherwise. --fail-on never reports
without gating: exit 0 whatever was found or could not be evaluated (those
are still listed, and warned about on stderr), 2 for bad usage or input, 3
only when the audit was interrupted or a report could not be written.

Extensions: ARC-EX-001/002 check the signature and files of every
extension installed by this agent (through the extension manager or
package install, which write an install record). A tree under
/var/lib/waagent without a record fails ARC-EX-004 (medium, "not installed
by this agent"); --strict makes it a critical signature and tamper failure
as well (facts.options.strict in rules), on the host and under --root.

Cloud facts: on a connected machine, the tier0 rules ARC-T0-006/007/008
ask the control plane, as the machine (an assertion signed with the
machine key, so as root), who holds which role over the machine and how
many other machines share its subscription (GET /v1/machines/{id}/cloudFacts,
at most 10 seconds). --offline skips that: the three rules are then not
applicable. A control plane that cannot be asked makes them errors that
name the server.

-q/--quiet prints one verdict line on stdout instead of the report, and
errors on stderr (no warnings); reports to files (-o FORMAT=FILE) are still
written.

--upload sends the JSON report to the control plane this machine is
connected to, signed with the machine key (root only), after the -o
outputs were written; the server keeps it as the machine's latest report
of its profiles. The exit code keeps its meaning; a failed upload exits 3
(ARC0612) even when the gate passed, with the reports already written.`,
		Example: `  arcagent audit
  sudo arcagent audit --upload -q --fail-on never
  arcagent audit --profile tier0 -o table -o sarif=audit.sarif -o json=audit.json
  arcagent audit --config planned-localconfig.json --fail-on critical
  arcagent audit -q -o sarif=audit.sarif --fail-on never
  arcagent audit --root /mnt/image --waivers waivers.yaml --baseline last.json
  arcagent audit --profile extensions --strict
  arcagent audit --offline -o sarif=audit.sarif`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runAudit(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.profiles, "profile", nil, "profiles to run: tier0, baseline, privilege, extensions, host, all (repeatable; default all but host)")
	fl.StringSliceVar(&f.onlyRules, "rule", nil, "run only these rule ids (repeatable)")
	fl.StringSliceVar(&f.skipRules, "skip-rule", nil, "skip these rule ids (repeatable)")
	fl.StringVar(&f.minSeverity, "min-severity", "info", "skip rules below this severity: critical, high, medium, low, info")
	fl.StringVar(&f.rulesDir, "rules", "", "directory of extra *.yaml rule files (a rule with a built-in id replaces it)")
	fl.StringVar(&f.planned, "config", "", "audit a planned localconfig.json instead of this machine's configuration")
	fl.StringVar(&f.waivers, "waivers", "", "YAML file of waivers (rule, host, resource, justification, expires)")
	fl.StringVar(&f.baseline, "baseline", "", "previous JSON report: mark findings new, unchanged or fixed")
	fl.StringVar(&f.failOn, "fail-on", "high", "exit 1 when a finding is at or above this severity: critical, high, medium, low, info, or never (report only)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the verdict (one line) and errors; reports to files are still written")
	fl.StringArrayVarP(&f.outputs, "format", "o", nil, "output FORMAT[=FILE], repeatable: "+strings.Join(reports.Formats(), ", ")+" (default table, or json with -j)")
	fl.StringVar(&f.host, "host", "", "name of the target in reports and fingerprints (default: the host name; with --config, the file's base name)")
	fl.BoolVar(&f.strict, "strict", false, "judge extension trees this agent did not install (no install record) as critical signature and tamper failures too (ARC-EX-001/002), not only as ARC-EX-004")
	fl.BoolVar(&f.upload, "upload", false, "send the JSON report to the control plane the machine is connected to (root: signed with the machine key)")
	fl.BoolVar(&f.dumpFacts, "dump-facts", false, "print the collected facts as JSON (what rules see as the variable facts) and exit")
	f.releases.register(fl)
	fl.Lookup("offline").Usage = "no network: use only the GitHub responses cached by an earlier run, and do not ask the control plane for the cloud facts of ARC-T0-006/007/008 (they are then not applicable)"
	registerAuditCompletions(cmd, func() string { return f.rulesDir })
	return cmd
}

// registerAuditCompletions completes rule ids (--rule, --skip-rule, also
// those of --rules DIR when given first), profiles, -o formats and
// severities.
func registerAuditCompletions(cmd *cobra.Command, rulesDir func() string) {
	ruleIDs := completeRuleIDs(rulesDir)
	_ = cmd.RegisterFlagCompletionFunc("rule", ruleIDs)
	_ = cmd.RegisterFlagCompletionFunc("skip-rule", ruleIDs)
	_ = cmd.RegisterFlagCompletionFunc("profile", completeProfiles(rulesDir))
	_ = cmd.RegisterFlagCompletionFunc("format", completeFormats(reports.Formats))
	_ = cmd.RegisterFlagCompletionFunc("fail-on", completeFixed(append(severityNames(), string(reports.FailOnNever))...))
	_ = cmd.RegisterFlagCompletionFunc("min-severity", completeFixed(severityNames()...))
	_ = cmd.RegisterFlagCompletionFunc("rules", completeDirs)
}

// The completion functions below are shared by audit, rules, report
// convert and fleet currency.

// severityNames are the severities from the highest, as flags spell them.
func severityNames() []string {
	out := make([]string, 0, len(reports.Severities))
	for _, s := range reports.Severities {
		out = append(out, string(s))
	}
	return out
}

// completeFixed completes one of vals.
func completeFixed(vals ...string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return vals, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeDirs completes a directory name.
func completeDirs(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveFilterDirs
}

// completeRuleIDs completes rule ids with their titles, the built-in ones
// and those of rulesDir() (the --rules flag, when given before).
func completeRuleIDs(rulesDir func() string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		rs, err := loadRules(rulesDir())
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		out := make([]string, 0, len(rs))
		for _, r := range rs {
			out = append(out, r.ID+"\t"+r.Title)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeProfiles completes profile names, all included.
func completeProfiles(rulesDir func() string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		rs, err := loadRules(rulesDir())
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		return append([]string{"all"}, rules.Profiles(rs)...), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeFormats completes -o FORMAT and FORMAT=, then a file name after
// the "=".
func completeFormats(formats func() []string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if strings.Contains(toComplete, "=") {
			return nil, cobra.ShellCompDirectiveDefault // a file name
		}
		var out []string
		for _, f := range formats() {
			out = append(out, f, f+"=")
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
}

// parseFailOn parses a --fail-on severity or never (report only).
func parseFailOn(v string) (reports.Severity, error) {
	if strings.EqualFold(strings.TrimSpace(v), string(reports.FailOnNever)) {
		return reports.FailOnNever, nil
	}
	s, err := parseSeverityFlag("fail-on", v)
	if err != nil {
		return "", errcode.New(errcode.Usage, "--fail-on %q: use critical, high, medium, low, info, or never (report only)", v)
	}
	return s, nil
}

func parseSeverityFlag(name, v string) (reports.Severity, error) {
	s, ok := reports.ParseSeverity(strings.ToLower(strings.TrimSpace(v)))
	if !ok {
		return "", errcode.New(errcode.Usage, "--%s %q: use critical, high, medium, low or info", name, v)
	}
	return s, nil
}

// outputs parses -o specs for report formats; none means the table (JSON
// with -j) on stdout.
func (a *app) outputs(specs []string) ([]reports.Output, error) {
	outs, err := reports.ParseOutputs(a.defaultOutputs(specs))
	if err != nil {
		return nil, errcode.Wrap(errcode.Usage, err, "-o")
	}
	return outs, nil
}

// defaultOutputs is specs, or the table (JSON with -j) when none was given.
func (a *app) defaultOutputs(specs []string) []string {
	if len(specs) > 0 {
		return specs
	}
	if a.json {
		return []string{"json"}
	}
	return []string{"table"}
}

// loadRules returns the built-in rules plus those of --rules DIR.
func loadRules(dir string) ([]rules.Rule, error) {
	rs, err := rules.Builtin()
	if err != nil {
		return nil, errcode.Wrap(errcode.Internal, err, "built-in rules")
	}
	host, err := audit.HostRules()
	if err != nil {
		return nil, errcode.Wrap(errcode.Internal, err, "built-in host rules")
	}
	rs = append(rs, host...)
	if dir == "" {
		return rs, nil
	}
	user, err := rules.LoadDir(dir)
	if err != nil {
		return nil, audit.Classify(err)
	}
	return rules.Merge(rs, user), nil
}

func (a *app) runAudit(cmd *cobra.Command, f *auditFlags) error {
	if f.planned != "" && cmd.Flags().Changed("root") {
		return errcode.New(errcode.Usage, "--root and --config are alternatives: --root audits a tree, --config a planned localconfig.json")
	}
	failOn, err := parseFailOn(f.failOn)
	if err != nil {
		return err
	}
	minSev, err := parseSeverityFlag("min-severity", f.minSeverity)
	if err != nil {
		return err
	}
	if f.upload && f.planned != "" {
		return errcode.New(extd.CodeUploadPlanned, "--upload sends an audit of this machine: it cannot be combined with --config")
	}
	if f.upload && f.dumpFacts {
		return errcode.New(errcode.Usage, "--upload and --dump-facts are alternatives: --dump-facts prints the facts")
	}
	if f.quiet && f.dumpFacts {
		return errcode.New(errcode.Usage, "--quiet and --dump-facts are alternatives: --dump-facts prints the facts")
	}
	outs, err := a.outputs(f.outputs)
	if err != nil {
		return err
	}
	if f.quiet {
		// Quiet: no report on stdout, only the files asked for.
		if len(f.outputs) > 0 {
			for _, o := range outs {
				if o.ToStdout() {
					return errcode.New(errcode.Usage, "-q/--quiet prints only the verdict on standard output: write -o %s to a file (-o %s=FILE)", o.Format, o.Format)
				}
			}
		} else {
			outs = nil
		}
	}
	rs, err := loadRules(f.rulesDir)
	if err != nil {
		return err
	}
	opts := audit.RunOptions{
		Collect: audit.Options{Root: a.root, PlannedConfig: f.planned, HostName: f.host, Strict: f.strict},
		Rules:   rs,
		Select:  audit.Selection{Profiles: f.profiles, Rules: f.onlyRules, SkipRules: f.skipRules, MinSeverity: minSev},
		FailOn:  failOn,
		Warn: func(s string) {
			if !f.quiet {
				a.warnf("%s", s)
			}
		},
	}
	if opts.Collect.Releases, err = f.releases.collector(cmd.Context(), a); err != nil {
		return err
	}
	if !f.releases.offline && f.planned == "" {
		opts.Collect.Cloud = &cloudfacts.Collector{Root: a.root, UserAgent: "arcagent-audit/" + buildinfo.Get().Version}
	}
	if f.waivers != "" {
		if opts.Waivers, err = audit.LoadWaivers(f.waivers); err != nil {
			return audit.Classify(err)
		}
	}
	if f.baseline != "" {
		if opts.Baseline, err = audit.LoadBaseline(f.baseline); err != nil {
			return audit.Classify(err)
		}
		opts.BaseFile = f.baseline
	}
	if f.dumpFacts {
		facts, err := audit.Collect(cmd.Context(), opts.Collect)
		if err != nil {
			return audit.Classify(err)
		}
		return a.printJSON(facts)
	}
	res, err := audit.Run(cmd.Context(), opts)
	if err != nil {
		return audit.Classify(err)
	}
	a.log.Debug("audit finished", "results", res.Report.Summary.Total, "ms", res.Report.DurationMs)
	if err := reports.WriteAll(res.Report, outs, a.stdout, reports.Options{Color: a.color(), Width: table.Width(a.stdout)}); err != nil {
		return errcode.Wrap(errcode.WriteFailed, err, "report")
	}
	if f.upload {
		info, err := a.uploadReport(cmd.Context(), res.Report)
		if err != nil {
			return err
		}
		if !f.quiet {
			fmt.Fprintf(a.stderr, "uploaded audit report %s (profile %s, %d failing rules)\n", info.ID, info.Profile, info.Failed)
		}
	}
	if f.quiet {
		fmt.Fprintln(a.stdout, verdictLine(res.Report))
	}
	if res.Report.FailOn == reports.FailOnNever {
		if n := res.Report.Summary.ByStatus[reports.StatusError]; n > 0 && !f.quiet {
			a.warnf("%d results could not be evaluated; --fail-on never does not gate on them", n)
		}
		return nil
	}
	return gateError(res.Report)
}

// verdictLine is what --quiet prints: the gate's verdict and the counts it
// rests on, in one line.
func verdictLine(r *reports.Report) string {
	s := r.Summary
	var atOrAbove int
	for _, sev := range reports.Severities {
		if r.FailOn != reports.FailOnNever && sev.Rank() >= r.FailOn.Rank() {
			atOrAbove += s.BySeverity[sev]
		}
	}
	counts := fmt.Sprintf("%d failed, %d errors, %d waived, %d not applicable, %d passed",
		s.ByStatus[reports.StatusFail], s.ByStatus[reports.StatusError], s.ByStatus[reports.StatusWaived], s.ByStatus[reports.StatusNotApplicable], s.ByStatus[reports.StatusPass])
	switch {
	case r.FailOn == reports.FailOnNever:
		return "report only (--fail-on never): " + counts
	case r.ExitCode() == errcode.ExitFailed:
		return fmt.Sprintf("INCOMPLETE: rules at or above %s could not be evaluated (%s)", r.FailOn, counts)
	case r.ExitCode() == errcode.ExitFindings:
		return fmt.Sprintf("FAILED: %d findings at or above %s (%s)", atOrAbove, r.FailOn, counts)
	}
	return fmt.Sprintf("passed: nothing at or above %s (%s)", r.FailOn, counts)
}

// gateError turns a finished report's verdict into the process outcome: a
// silent exit 1 for findings (the report already shows them), and ARC0035
// naming the rules that could not be evaluated for an incomplete audit.
func gateError(r *reports.Report) error {
	switch r.ExitCode() {
	case errcode.ExitOK:
		return nil
	case errcode.ExitFindings:
		return silentError{errcode.ExitFindings}
	}
	var ids []string
	for _, res := range r.Results {
		if res.Status == reports.StatusError && res.Severity.Rank() >= r.FailOn.Rank() {
			ids = append(ids, res.RuleID+" ("+res.Reason+")")
			if len(ids) == 3 {
				ids = append(ids, "…")
				break
			}
		}
	}
	return errcode.New(audit.CodeIncomplete, "rules at or above %s could not be evaluated: %s", r.FailOn, strings.Join(ids, "; "))
}

func newRulesCmd(a *app) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "List and describe the audit rules",
	}
	cmd.PersistentFlags().StringVar(&dir, "rules", "", "also load *.yaml rule files from this directory (and check that they compile)")
	_ = cmd.RegisterFlagCompletionFunc("rules", completeDirs)
	list := &cobra.Command{
		Use:   "list",
		Short: "List every rule with its id, severity and profiles",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			rs, err := loadRules(dir)
			if err != nil {
				return err
			}
			if _, err := rules.Compile(rs); err != nil {
				return audit.Classify(err)
			}
			if a.json {
				return a.printJSON(rs)
			}
			rows := make([][]string, 0, len(rs))
			for _, r := range rs {
				rows = append(rows, []string{r.ID, string(r.Severity), strings.Join(r.Profiles, ","), r.Title})
			}
			return a.printTable([]string{"ID", "SEVERITY", "PROFILES", "TITLE"}, rows, "TITLE")
		},
	}
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one rule: rationale, checks and remediation",
		Args:  exactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return completeRuleIDs(func() string { return dir })(cmd, args, toComplete)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := loadRules(dir)
			if err != nil {
				return err
			}
			for _, r := range rs {
				if strings.EqualFold(r.ID, args[0]) {
					if a.json {
						return a.printJSON(r)
					}
					fix := audit.PreviewRemediation(cmd.Context(), r)
					fmt.Fprintf(a.stdout, "%s  %s\nseverity:  %s\nprofiles:  %s\nsource:    %s\n\n%s\n\nremediation (on a Linux host; an audit prints it for its target):\n  %s\n",
						r.ID, r.Title, r.Severity, strings.Join(r.Profiles, ", "), r.Source, strings.TrimSpace(r.Rationale),
						strings.ReplaceAll(strings.TrimSpace(fix), "\n", "\n  "))
					if r.Applies != "" {
						fmt.Fprintf(a.stdout, "\napplies:   %s\n", r.Applies)
					}
					if r.ForEach != "" {
						fmt.Fprintf(a.stdout, "for each:  %s\n", r.ForEach)
					}
					fmt.Fprintf(a.stdout, "check:     %s\n", r.Check)
					for _, ref := range r.References {
						fmt.Fprintf(a.stdout, "see:       %s\n", ref)
					}
					return nil
				}
			}
			return errcode.New(audit.CodeSelection, "unknown rule %q", args[0])
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

func init() { extraCommands = append(extraCommands, newRulesCmd) }
