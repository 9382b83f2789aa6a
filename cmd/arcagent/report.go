package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/table"
	"github.com/arcagent/arcagent/reports"
)

func init() { extraCommands = append(extraCommands, newReportCmd) }

// Error codes of `arcagent report`.
const (
	CodeReportUnreadable errcode.Code = "ARC0040"
	CodeReportNewer      errcode.Code = "ARC0041"
)

func init() {
	errcode.Register(errcode.Info{Code: CodeReportUnreadable, Exit: errcode.ExitUsage, Title: "the JSON report cannot be read",
		Remedy: "pass a JSON report written by `arcagent audit -o json=FILE` (or - for standard input)"})
	errcode.Register(errcode.Info{Code: CodeReportNewer, Exit: errcode.ExitUsage, Title: "the JSON report is from a newer arcagent",
		Remedy: "convert it with the arcagent version that wrote it, or upgrade arcagent"})
}

func newReportCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Render saved audit reports in other formats",
		Long: `Work with the JSON reports that "arcagent audit -o json=FILE" writes, without
access to the audited host.`,
	}
	cmd.AddCommand(newReportConvertCmd(a), newReportSchemaCmd(a))
	return cmd
}

type convertFlags struct {
	outputs []string
	failOn  string
}

func newReportConvertCmd(a *app) *cobra.Command {
	f := &convertFlags{}
	cmd := &cobra.Command{
		Use:   "convert REPORT.json",
		Short: "Render a saved JSON report as table, JSON, CSV, SARIF, JUnit, Markdown or HTML",
		Long: `Convert reads a JSON report written by "arcagent audit -o json=FILE" (or - for
standard input) and writes it in one or more formats, exactly as the audit
would have. Give -o FORMAT for standard output or -o FORMAT=FILE for a file;
repeat -o to write several. Files are replaced atomically.

Exit codes: 0 written; 2 the report is missing, not an arcagent JSON report,
from a newer arcagent, or a format is unknown; 3 an output could not be
written. With --fail-on the gate is evaluated again at that severity, as
"arcagent audit" does: 1 when a failure is at or above it, 3 when a rule at
or above it could not be evaluated. Without --fail-on, convert does not gate.`,
		Example: `  arcagent report convert audit.json -o sarif=audit.sarif -o junit=junit.xml
  arcagent report convert audit.json -o markdown >> "$GITHUB_STEP_SUMMARY"
  arcagent report convert audit.json -o html=audit.html --fail-on critical
  arcagent audit -o json | arcagent report convert - -o table`,
		Args: exactArgs(1),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return []string{"json"}, cobra.ShellCompDirectiveFilterFileExt
		},
		RunE: func(cmd *cobra.Command, args []string) error { return a.runConvert(args[0], f) },
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.outputs, "format", "o", nil, "output FORMAT[=FILE], repeatable: "+strings.Join(reports.Formats(), ", ")+" (default table, or json with -j)")
	fl.StringVar(&f.failOn, "fail-on", "", "evaluate the gate again: exit 1 when a failure is at or above this severity (critical, high, medium, low, info), or never (report only)")
	_ = cmd.RegisterFlagCompletionFunc("format", completeFormats(reports.Formats))
	_ = cmd.RegisterFlagCompletionFunc("fail-on", completeFixed(append(severityNames(), string(reports.FailOnNever))...))
	return cmd
}

func (a *app) runConvert(path string, f *convertFlags) error {
	var failOn reports.Severity
	if f.failOn != "" {
		s, err := parseFailOn(f.failOn)
		if err != nil {
			return err
		}
		failOn = s
	}
	outs, err := a.outputs(f.outputs)
	if err != nil {
		return err
	}
	r, err := reports.OpenReport(path, a.stdin)
	if err != nil {
		name := path
		if path == "-" {
			name = "standard input"
		}
		if errors.Is(err, reports.ErrNewerSchema) {
			return errcode.Wrap(CodeReportNewer, err, "%s", name)
		}
		if errors.Is(err, os.ErrNotExist) {
			return errcode.Wrap(CodeReportUnreadable, err, "no report at %s", name)
		}
		return errcode.Wrap(CodeReportUnreadable, err, "%s", name)
	}
	if failOn != "" {
		r.FailOn = failOn
		r.Summarize()
	} else if r.Summary.ByStatus == nil {
		// A hand-made report without a summary: count it as the audit would.
		r.Summarize()
	}
	if err := reports.WriteAll(r, outs, a.stdout, reports.Options{Color: a.color(), Width: table.Width(a.stdout)}); err != nil {
		return errcode.Wrap(errcode.WriteFailed, err, "report")
	}
	if failOn == "" {
		return nil
	}
	return gateError(r)
}

func newReportSchemaCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema (draft 2020-12) of the JSON report",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := a.stdout.Write(reports.Schema())
			if err != nil {
				return fmt.Errorf("write the schema: %w", err)
			}
			return nil
		},
	}
}
