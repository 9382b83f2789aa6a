package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/errcode"
)

// windowsVerbs are the verbs that work on Windows: the local controls
// (config, in the Windows layout), the pre-onboarding audit of the
// configuration, and what only reads files the user names. The daemons,
// connect, extensions, packages, trust, logs and show need the Linux
// agent: they stop with ARC0560 (exit 2) before doing anything.
var windowsVerbs = map[string]bool{
	"config": true, "audit": true, "report": true, "version": true,
	"help": true, "completion": true, "__complete": true, "__completeNoDesc": true,
}

// platformAllows refuses, on Windows, a verb that is not one of
// windowsVerbs.
func platformAllows(cmd *cobra.Command) error {
	top := cmd
	for top.HasParent() && top.Parent().HasParent() {
		top = top.Parent()
	}
	if !top.HasParent() || windowsVerbs[top.Name()] {
		return nil
	}
	return errcode.Unsupported("`" + strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ") + "`")
}

// windowsHelp turns the Linux paths and extension names of a help text
// into those of Windows.
var windowsHelp = strings.NewReplacer(
	"/var/opt/azcmagent/localconfig.json", `%ProgramData%\AzureConnectedMachineAgent\Config\localconfig.json`,
	"AzureMonitorLinuxAgent", "AzureMonitorWindowsAgent",
	"MDE.Linux", "MDE.Windows",
)

// platformHelp is a help text for Windows.
func platformHelp(s string) string { return windowsHelp.Replace(s) }
