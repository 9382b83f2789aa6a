package main

import "github.com/spf13/cobra"

func init() { extraCommands = append(extraCommands, newGuestConfigCmd) }

// guestconfigCommands are the subcommands of `arcagent guestconfig`; each
// verb's file adds its own from init.
var guestconfigCommands []func(*app) *cobra.Command

func newGuestConfigCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "guestconfig",
		Short: "Guest configuration on this machine: assignments, compliance, configuration packages",
		Long: `Guest configuration (arcagent daemon gcad) evaluates the configuration
packages the control plane assigns, in Audit, ApplyAndMonitor or
ApplyAndAutoCorrect mode, and reports compliance per resource. It is off
when guestconfiguration.enabled is false (Tier 0 servers keep it off).`,
	}
	for _, add := range guestconfigCommands {
		cmd.AddCommand(add(a))
	}
	return cmd
}
