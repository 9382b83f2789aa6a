package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/gcad"
	"github.com/arcagent/arcagent/agent/guestconfig"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/internal/safetext"
)

func init() {
	guestconfigCommands = append(guestconfigCommands, newGuestConfigListCmd, newGuestConfigShowCmd)
}

func newGuestConfigListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the guest configuration assignments of this machine and their compliance",
		Long: `Lists what gcad keeps in /var/lib/GuestConfig/gc_agent/state.json: every
assignment of the desired state with its policy, version and mode, the
compliance of its last evaluation, how many resources are not compliant and
when it was last evaluated. It reads the state only (root: the directory is
root:root 0700).`,
		Example: "  arcagent guestconfig list\n  arcagent guestconfig list -j",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := gcad.List(a.layout())
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(a.stdout, "no guest configuration assignments (gcad has not seen any)")
				return nil
			}
			var t [][]string
			for _, r := range rows {
				row := []string{r.Name, r.Policy, r.Version, r.Mode, r.Compliance, strconv.Itoa(r.NonCompliant), gcWhen(r.Evaluated), r.Message}
				for i := range row {
					row[i] = safetext.Line(row[i]) // the state quotes the target's files
				}
				t = append(t, row)
			}
			return a.printTable([]string{"NAME", "POLICY", "VERSION", "MODE", "COMPLIANCE", "NON-COMPLIANT", "LAST EVALUATED", "MESSAGE"}, t, "MESSAGE")
		},
	}
}

func gcWhen(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func newGuestConfigShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show the last evaluation of one assignment: every resource with its reason, evidence and steps",
		Long: `Shows the last report gcad kept for the assignment
(/var/lib/GuestConfig/gc_agent/reports/NAME.json): for every resource its
compliance, the reason it is not compliant, the evidence it saw and the
steps (test, set, retest) with their outcome and duration.`,
		Example: "  arcagent guestconfig show ssh-baseline\n  arcagent guestconfig show ssh-baseline -j",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := gcad.Show(a.layout(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(d)
			}
			// Reasons, evidence and messages quote the target's files
			// (written by their owners): every text is escaped.
			sl := safetext.Line
			w := a.stdout
			fmt.Fprintf(w, "%s: %s %s, mode %s\n", sl(d.Name), sl(d.Policy), sl(d.Version), sl(d.Mode))
			fmt.Fprintf(w, "compliance: %s (%d not compliant), last evaluated %s\n", sl(d.Compliance), d.NonCompliant, gcWhen(d.Evaluated))
			if d.Message != "" {
				fmt.Fprintf(w, "message: %s\n", sl(d.Message))
			}
			if d.Report == nil {
				return nil
			}
			fmt.Fprintf(w, "applied in this pass: %t, duration %.1f ms\n", d.Report.Applied, d.Report.Duration)
			if d.Report.Backups != "" {
				fmt.Fprintf(w, "backups: %s\n", sl(d.Report.Backups))
			}
			for _, r := range d.Report.Resources {
				gcShowResource(a, r)
			}
			return nil
		},
	}
}

func gcShowResource(a *app, r guestconfig.ResourceReport) {
	w, sl := a.stdout, safetext.Line
	fmt.Fprintf(w, "\n%s (%s): %s", sl(r.ID), sl(r.Type), sl(r.Compliance))
	if r.Changed {
		fmt.Fprint(w, ", changed")
	}
	fmt.Fprintln(w)
	if r.Title != "" {
		fmt.Fprintf(w, "  title: %s\n", sl(r.Title))
	}
	if r.Reason != "" {
		fmt.Fprintf(w, "  reason: %s\n", sl(r.Reason))
	}
	if len(r.Evidence) > 0 {
		keys := make([]string, 0, len(r.Evidence))
		for k := range r.Evidence {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, sl(k)+"="+sl(r.Evidence[k]))
		}
		fmt.Fprintf(w, "  evidence: %s\n", strings.Join(parts, " "))
	}
	for _, s := range r.Steps {
		fmt.Fprintf(w, "  step %s: %s (%.1f ms)", sl(s.Name), sl(s.Outcome), s.Duration)
		if s.Message != "" {
			fmt.Fprintf(w, ": %s", sl(s.Message))
		}
		fmt.Fprintln(w)
	}
	if r.Remediation != "" && !apiv1.GuestConfigResourceCompliant(r.Compliance) {
		fmt.Fprintf(w, "  remediation: %s\n", sl(r.Remediation))
	}
}
