package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/extd"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/buildinfo"
	"github.com/arcagent/arcagent/internal/sealed"
	"github.com/arcagent/arcagent/signing"
)

func init() { extraCommands = append(extraCommands, newExtensionCmd) }

// manager is the extension manager of the layout, with the trust store
// and, when connected, the machine key to open protected settings; o
// carries the daemon's tuning (timeouts, cgroup root, retry delay).
func (a *app) manager(o extd.Options) *extd.Manager {
	o.Layout = a.layout()
	o.Trust = func() (*signing.TrustStore, error) { return a.loadTrust("") }
	o.Unseal = func(name, v string) ([]byte, error) { return unseal(a, name, v) }
	o.Log = a.log
	return extd.New(o)
}

// unseal opens protected settings with the machine key of the registration.
func unseal(a *app, name, v string) ([]byte, error) {
	l := a.layout()
	cfg, err := himds.LoadAgentConfig(l)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, errcode.New(extd.CodeNotConnected, "protected settings need the machine key of a connected machine")
	}
	key, err := himds.LoadMachineKey(l)
	if err != nil {
		return nil, err
	}
	return sealed.Open(key, cfg.MachineID, name, v)
}

func newExtensionCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "extension",
		Short: "List and remove the extensions on this machine (offline)",
		Long: `The extension manager (arcagent daemon extd) installs, enables, updates and
removes the extensions the control plane assigns, after the local controls
(extensions.enabled, the allow- and blocklists, monitor mode) and the trust
store allowed them. These verbs work on this machine alone, without the
control plane.`,
	}
	cmd.AddCommand(newExtensionListCmd(a), newExtensionRemoveCmd(a))
	mapPermissionErrors(cmd)
	return cmd
}

func newExtensionListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List installed extensions and their state",
		Long: `Lists what the extension manager installed (from the control plane or with
arcagent package install), the state it last reported, and any tree under
/var/lib/waagent that it did not install (source "unmanaged").`,
		Example: "  arcagent extension list\n  arcagent extension list -j",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := extd.List(a.manager(extd.Options{}))
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(a.stdout, "no extensions are installed")
				return nil
			}
			var t [][]string
			for _, r := range rows {
				msg := r.Message
				if r.Degraded != "" {
					msg += " (degraded: " + r.Degraded + ")"
				}
				t = append(t, []string{r.Name, r.Publisher + "/" + r.Type, r.Version, r.Source, r.State, strconv.Itoa(r.Sequence), msg})
			}
			return a.printTable([]string{"NAME", "EXTENSION", "VERSION", "SOURCE", "STATE", "SEQ", "MESSAGE"}, t, "MESSAGE")
		},
	}
}

func newExtensionRemoveCmd(a *app) *cobra.Command {
	var names []string
	var all bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "remove --name NAME | --all",
		Short: "Disable, uninstall and delete extensions on this machine",
		Long: `Runs the extension's disable and uninstall commands, then deletes its tree
and install record, as a removal by the control plane does. Removal is
always allowed. While the control plane still assigns the extension, a
running extd installs it again at once unless the local controls refuse
it: remove the assignment (arcagent fleet extensions remove) or block it
(arcagent config set extensions.blocklist --add Publisher/Type).`,
		Example: "  arcagent extension remove --name ama\n  arcagent extension remove --all",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all == (len(names) > 0) {
				return errcode.New(errcode.Usage, "extension remove needs --name NAME (repeatable) or --all, not both")
			}
			if os.Geteuid() != 0 && a.layout().IsSystemRoot() {
				return errcode.New(errcode.PermissionDenied, "extension remove runs handler commands as root: run it as root (or use --root DIR)")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			removed, err := a.manager(extd.Options{}).Remove(ctx, names, all)
			if a.json && err == nil {
				return a.printJSON(map[string]any{"removed": removed})
			}
			for _, n := range removed {
				fmt.Fprintf(a.stdout, "removed %s\n", n)
			}
			if err == nil && len(removed) == 0 {
				fmt.Fprintln(a.stdout, "no extensions are installed")
			}
			return err
		},
	}
	cmd.Flags().StringSliceVar(&names, "name", nil, "extension to remove (its assignment name, or Publisher.Type-Version)")
	cmd.Flags().BoolVar(&all, "all", false, "remove every extension")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "give up after this long (the handler commands have their own timeouts)")
	return cmd
}

// extdVersion is the user agent of the extension manager.
func extdVersion() string { return "arcagent-extd/" + buildinfo.Get().Version }
