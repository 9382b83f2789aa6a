package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	_ "github.com/arcagent/arcagent/controlplane/apiv1" // registers the ARC02xx codes
	"github.com/arcagent/arcagent/internal/buildinfo"
	"github.com/arcagent/arcagent/internal/cli"
)

// app holds global flags and the process's streams.
type app struct {
	json   bool
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func (a *app) printJSON(v any) error { return cli.PrintJSON(a.stdout, v) }

func newRootCmd(a *app) *cobra.Command {
	var out *cli.Output
	cmd := &cobra.Command{
		Use:   "arcserver",
		Short: "The arcagent control plane",
		Long: `arcserver is the control plane that arcagent machines connect to: an HTTPS
REST/JSON API with subscriptions, resource groups and machines, role-based
access control, onboarding credentials, heartbeats, desired state and a token
issuer for machine managed identities.

Start with:
  arcserver init --data /var/lib/arcserver
  arcserver serve --data /var/lib/arcserver --listen 127.0.0.1:8443`,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Resolve(cmd); err != nil {
				return err
			}
			return cli.CheckFlags(cmd)
		},
	}
	cmd.SetIn(a.stdin)
	cmd.SetOut(a.stdout)
	cmd.SetErr(a.stderr)
	cmd.SetGlobalNormalizationFunc(cli.NormalizeOutput)
	out = cli.OutputFlags(cmd.PersistentFlags(), &a.json)
	cmd.AddCommand(newInitCmd(a), newServeCmd(a), newBackupCmd(a), newKeysCmd(a), newTokensCmd(a), newLoadgenCmd(a), newMigrateCmd(a), newVersionCmd(a))
	cli.Prepare(cmd)
	return cmd
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			i := buildinfo.Get()
			if a.json {
				return a.printJSON(i)
			}
			fmt.Fprintf(a.stdout, "arcserver %s (commit %s, %s)\n", i.Version, i.Commit, i.GoVersion)
			return nil
		},
	}
}

// tuneGC trades memory for CPU: the server's garbage is short-lived
// request state, and collecting it less often saves about a tenth of the
// CPU per heartbeat. GOGC in the environment still wins.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// run executes the CLI and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Run(ctx, newRootCmd(a), args, stderr)
}

// usageArgs types a validator's error as a usage error.
func usageArgs(f cobra.PositionalArgs) cobra.PositionalArgs { return cli.Args(f) }
