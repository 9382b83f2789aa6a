package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/netcheck"
	"github.com/arcagent/arcagent/agent/onboard"
	"github.com/arcagent/arcagent/errcode"
)

func init() { extraCommands = append(extraCommands, newConnectCmd, newDisconnectCmd) }

func newServiceLogger(a *app) *slog.Logger {
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// serviceLogger is the logger of a daemon: a service always logs (stderr
// goes to the journal under systemd), at debug level with -v.
func (a *app) serviceLogger() *slog.Logger {
	if a.logStderr || a.verbose {
		return a.log
	}
	return newServiceLogger(a)
}

func newConnectCmd(a *app) *cobra.Command {
	var f onboard.File
	var configFile string
	var ignoreCheck bool
	cmd := &cobra.Command{
		Use:   "connect --server URL --onboarding-token T --resource-group RG",
		Short: "Connect this machine to a control plane",
		Long: `connect generates the machine key pair on this machine (the private key
never leaves it; certs/machine.key, himds:himds 0600), registers the machine
with an onboarding credential, writes agentconfig.json and tells a running
HIMDS to pick the new identity up. If a step fails, it undoes the others.
Before anything, it runs the network check of "arcagent check" against the
server and stops, printing the check's table, when an endpoint is
unreachable (--ignore-network-check skips it).

Keep the credential out of shell history with --config FILE: a JSON or YAML
file whose keys are the flag names (server, onboarding-token,
resource-group, ca-file, name, tags). Delete the file after use.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := connectOptions(cmd, a, f, configFile)
			if err != nil {
				return err
			}
			o.IgnoreNetworkCheck = ignoreCheck
			res, err := onboard.Connect(cmd.Context(), o)
			if failed, ok := errors.AsType[*netcheck.Failed](err); ok {
				if perr := a.printCheck(failed.Report); perr != nil {
					return perr
				}
			}
			if err != nil {
				return err
			}
			c := res.Config
			if a.json {
				return a.printJSON(map[string]any{"machineId": c.MachineID, "resourceId": c.ResourceID, "name": c.Name, "server": c.Server, "himdsNotified": res.HIMDSNotified})
			}
			fmt.Fprintf(a.stdout, "Connected %s as %s\n", c.Name, c.ResourceID)
			if !res.HIMDSNotified {
				fmt.Fprintf(a.stdout, "HIMDS is not running: start it to send heartbeats and serve tokens: %s\n", a.himdsStartCommand())
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Server, "server", "", "control plane URL, https://HOST:PORT")
	fl.StringVar(&f.OnboardingToken, "onboarding-token", "", "onboarding credential (prefer --config FILE)")
	fl.StringVar(&f.ResourceGroup, "resource-group", "", "resource group the credential is scoped to")
	fl.StringVar(&f.CAFile, "ca-file", "", "PEM CA bundle that signs the server certificate (default: system roots)")
	fl.StringVar(&f.Name, "name", "", "machine name (default: the host name)")
	fl.StringVar(&f.Tags, "tags", "", "tags, k=v,k2=v2")
	fl.BoolVar(&ignoreCheck, "ignore-network-check", false, "connect without checking first that the control plane's endpoints are reachable")
	fl.StringVar(&configFile, "config", "", "JSON or YAML file with the flags above (keys = flag names)")
	return cmd
}

// himdsStartCommand is how to start HIMDS for this layout: under --root,
// the same --root.
func (a *app) himdsStartCommand() string {
	if l := a.layout(); !l.IsSystemRoot() {
		return "arcagent --root " + shellQuote(l.Root()) + " daemon himds"
	}
	return "sudo systemctl start himdsd, or sudo arcagent daemon himds"
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// connectOptions fills unset flags from --config and checks the required ones.
func connectOptions(cmd *cobra.Command, a *app, f onboard.File, configFile string) (onboard.Options, error) {
	if configFile != "" {
		data, err := os.ReadFile(configFile)
		if err != nil {
			return onboard.Options{}, errcode.Wrap(himds.CodeConnectConfig, err, "read --config %s", configFile)
		}
		fromFile, err := onboard.ParseFile(data)
		if err != nil {
			return onboard.Options{}, fmt.Errorf("parse --config %s: %w", configFile, err)
		}
		if fi, err := os.Stat(configFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			a.warnf("%s is readable by other users (mode %04o): the credential in it may already be exposed; keep such files 0600", configFile, fi.Mode().Perm())
		}
		for _, v := range []struct {
			name     string
			dst      *string
			fromFile string
		}{{"server", &f.Server, fromFile.Server}, {"onboarding-token", &f.OnboardingToken, fromFile.OnboardingToken},
			{"resource-group", &f.ResourceGroup, fromFile.ResourceGroup}, {"ca-file", &f.CAFile, fromFile.CAFile},
			{"name", &f.Name, fromFile.Name}, {"tags", &f.Tags, fromFile.Tags}} {
			if !cmd.Flags().Changed(v.name) && v.fromFile != "" {
				*v.dst = v.fromFile
			}
		}
		a.warnf("%s holds a credential: delete it once the machine is connected (shred -u %s)", configFile, configFile)
	}
	var missing []string
	for _, r := range []struct{ name, v string }{{"--server", f.Server}, {"--onboarding-token", f.OnboardingToken}, {"--resource-group", f.ResourceGroup}} {
		if r.v == "" {
			missing = append(missing, r.name)
		}
	}
	if len(missing) > 0 {
		return onboard.Options{}, errcode.New(errcode.Usage, "connect needs %s (as flags or in --config FILE)", strings.Join(missing, ", "))
	}
	tags, err := onboard.ParseTags(f.Tags)
	if err != nil {
		return onboard.Options{}, err
	}
	o := onboard.Options{Layout: a.layout(), Server: f.Server, OnboardingToken: f.OnboardingToken, ResourceGroup: f.ResourceGroup,
		Name: f.Name, Tags: tags, Warn: func(msg string) { a.warnf("%s", msg) }}
	if f.CAFile != "" {
		if o.CAPEM, err = os.ReadFile(f.CAFile); err != nil {
			return o, errcode.Wrap(errcode.Usage, err, "read --ca-file")
		}
	}
	return o, nil
}

func newDisconnectCmd(a *app) *cobra.Command {
	var localOnly bool
	cmd := &cobra.Command{
		Use:   "disconnect [--force-local-only]",
		Short: "Delete this machine from the control plane and reset the local state",
		Long: `disconnect deletes the machine resource on the control plane (signed with
the machine key), then removes agentconfig.json, the machine key and the
server CA, and tells a running HIMDS. With --force-local-only it only
resets the local state: use it when the server is gone or the identity
has expired, and delete the resource with "arcagent fleet machines delete".`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := onboard.Disconnect(cmd.Context(), onboard.DisconnectOptions{Layout: a.layout(), LocalOnly: localOnly})
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"disconnected": true, "localOnly": localOnly, "himdsNotified": res.HIMDSNotified})
			}
			if res.Config == nil {
				fmt.Fprintln(a.stdout, "Local state reset")
				return nil
			}
			fmt.Fprintf(a.stdout, "Disconnected %s\n", res.Config.ResourceID)
			if localOnly {
				fmt.Fprintf(a.stdout, "The resource still exists on %s: delete it with `arcagent fleet machines delete %s`\n", res.Config.Server, res.Config.MachineID)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&localOnly, "force-local-only", false, "reset the local state without contacting the control plane")
	return cmd
}
