package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/errcode"
)

func init() { extraCommands = append(extraCommands, newConfigCmd) }

func newConfigCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show and change the local security controls (localconfig.json)",
		Long: platformHelp(`Local security controls decide what this machine allows, whatever the control
plane asks for. They live in /var/opt/azcmagent/localconfig.json (under --root).

Lists are given as one comma-separated value, with or without spaces:
  arcagent config set extensions.allowlist "Microsoft.Azure.Monitor/AzureMonitorLinuxAgent, Contoso/Backup"
"set" replaces a list; --add appends to it and --remove removes from it.`),
	}
	cmd.AddCommand(newConfigListCmd(a), newConfigGetCmd(a), newConfigSetCmd(a), newConfigClearCmd(a), newConfigInfoCmd(a))
	return cmd
}

// loadSettings reads localconfig.json and prints its warnings.
func (a *app) loadSettings() (*config.Settings, error) {
	s, warnings, err := config.NewStore(a.layout()).Load()
	for _, w := range warnings {
		a.warnf("%s", w)
	}
	return s, err
}

func completeProperties(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return config.Names(), cobra.ShellCompDirectiveNoFileComp
}

type localSettings struct {
	LocalSettings []config.Setting `json:"LocalSettings"`
}

func newConfigListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every property with its configured and effective value",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.loadSettings()
			if err != nil {
				return err
			}
			all := s.All()
			if a.json {
				return a.printJSON(localSettings{all})
			}
			rows := make([][]string, 0, len(all))
			for _, st := range all {
				conf := displayValue(st.Configured)
				if !st.IsSet {
					conf += " (default)"
				}
				eff := displayValue(st.Effective)
				if st.Reason != "" {
					eff += " (" + st.Reason + ")"
				}
				rows = append(rows, []string{st.Name, conf, eff})
			}
			return a.printTable([]string{"PROPERTY", "CONFIGURED", "EFFECTIVE"}, rows, "EFFECTIVE")
		},
	}
}

func newConfigGetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "get PROPERTY",
		Short:             "Print one property's configured value",
		Args:              exactArgs(1),
		ValidArgsFunction: completeProperties,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := config.Find(args[0])
			if err != nil {
				return err
			}
			s, err := a.loadSettings()
			if err != nil {
				return err
			}
			eff, why := s.Effective(p.Name)
			if a.json {
				return a.printJSON(localSettings{[]config.Setting{{Name: p.Name, Configured: s.Value(p.Name), Effective: eff, Reason: why}}})
			}
			fmt.Fprintln(a.stdout, config.FormatValue(s.Value(p.Name)))
			if why != "" {
				a.warnf("the effective value is %q: %s", config.FormatValue(eff), why)
			}
			return nil
		},
	}
}

func newConfigSetCmd(a *app) *cobra.Command {
	var add, remove bool
	cmd := &cobra.Command{
		Use:   "set PROPERTY VALUE",
		Short: "Set a property; lists are replaced unless --add or --remove is given",
		Example: platformHelp(`  arcagent config set incomingconnections.enabled false
  arcagent config set guestconfiguration.enabled false
  arcagent config set extensions.allowlist "Microsoft.Azure.Monitor/AzureMonitorLinuxAgent,Microsoft.Azure.AzureDefenderForServers/MDE.Linux"
  arcagent config set extensions.blocklist --add Microsoft.Compute/CustomScriptExtension
  arcagent config set extensions.allowlist Allow/None`),
		Args:              usageArgs(cobra.MinimumNArgs(2)),
		ValidArgsFunction: completeProperties,
		RunE: func(cmd *cobra.Command, args []string) error {
			if add && remove {
				return errcode.New(errcode.AddRemoveBoth, "--add and --remove cannot be used together")
			}
			op := config.OpSet
			switch {
			case add:
				op = config.OpAdd
			case remove:
				op = config.OpRemove
			}
			// Extra arguments are list items split by the shell ("a, b").
			value := strings.Join(args[1:], ",")
			return a.changeConfig(cmd, config.Change{Op: op, Property: args[0], Value: value})
		},
	}
	cmd.Flags().BoolVarP(&add, "add", "a", false, "add the values to a list property")
	cmd.Flags().BoolVarP(&remove, "remove", "r", false, "remove the values from a list property")
	return cmd
}

func newConfigClearCmd(a *app) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "clear [PROPERTY]",
		Short: "Reset a property to its default (--all: reset every property)",
		Long: `Reset a property to its default value.

With --all, every property is reset: the current localconfig.json is kept
beside it as localconfig.json.bad-<time> (even when it is corrupt) and a file
with only the defaults is written. This is the repair for a corrupt file.`,
		Args:              rangeArgs(0, 1),
		ValidArgsFunction: completeProperties,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) == 1) {
				return errcode.New(errcode.Usage, "give either one PROPERTY or --all")
			}
			if all {
				aside, err := config.NewStore(a.layout()).Reset(cmd.Context(), time.Now())
				if err != nil {
					return err
				}
				if aside != "" {
					fmt.Fprintf(a.stdout, "previous settings kept in %s\n", aside)
				}
				fmt.Fprintln(a.stdout, "every property is back to its default")
				return nil
			}
			return a.changeConfig(cmd, config.Change{Op: config.OpClear, Property: args[0]})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "reset every property, keeping the old file beside the new one")
	return cmd
}

// changeConfig applies one change under the file lock and reports it.
func (a *app) changeConfig(cmd *cobra.Command, c config.Change) error {
	var result config.Setting
	var applyWarnings []string
	loadWarnings, err := config.NewStore(a.layout()).Update(cmd.Context(), func(s *config.Settings) error {
		w, err := s.Apply(c)
		applyWarnings = w
		if err != nil {
			return err
		}
		p, _ := config.Lookup(c.Property)
		eff, why := s.Effective(p.Name)
		result = config.Setting{Name: p.Name, Configured: s.Value(p.Name), Effective: eff, Reason: why}
		return nil
	})
	for _, w := range append(loadWarnings, applyWarnings...) {
		a.warnf("%s", w)
	}
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(localSettings{[]config.Setting{result}})
	}
	fmt.Fprintf(a.stdout, "%s = %s\n", result.Name, config.FormatValue(result.Configured))
	return nil
}

type propertyInfo struct {
	config.Property
	AllowedValues string `json:"allowedValues"`
}

func newConfigInfoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:               "info [PROPERTY]",
		Short:             "Describe the properties: type, default, allowed values and meaning",
		Args:              rangeArgs(0, 1),
		ValidArgsFunction: completeProperties,
		RunE: func(cmd *cobra.Command, args []string) error {
			props := config.Properties()
			if len(args) == 1 {
				p, err := config.Find(args[0])
				if err != nil {
					return err
				}
				props = []config.Property{p}
			}
			if a.json {
				out := make([]propertyInfo, 0, len(props))
				for _, p := range props {
					out = append(out, propertyInfo{p, p.AllowedText()})
				}
				if len(args) == 1 {
					return a.printJSON(out[0])
				}
				return a.printJSON(out)
			}
			if len(args) == 1 {
				p := props[0]
				fmt.Fprintf(a.stdout, "%s\n  type:    %s\n  default: %s\n  allowed: %s\n\n  %s\n", p.Name, p.Type, p.DefaultText(), p.AllowedText(), p.Help)
				return nil
			}
			rows := make([][]string, 0, len(props))
			for _, p := range props {
				rows = append(rows, []string{p.Name, string(p.Type), p.DefaultText(), p.AllowedText()})
			}
			return a.printTable([]string{"PROPERTY", "TYPE", "DEFAULT", "ALLOWED VALUES"}, rows, "ALLOWED VALUES")
		},
	}
}

// displayValue renders a value for a table cell; empty shows as "(none)".
func displayValue(v any) string {
	if s := config.FormatValue(v); s != "" {
		return s
	}
	return "(none)"
}
