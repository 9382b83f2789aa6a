package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	_ "github.com/arcagent/arcagent/controlplane/apiv1" // registers the ARC02xx codes
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/buildinfo"
)

// app holds global flags and the process's streams.
type app struct {
	json   bool
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newRootCmd(a *app) *cobra.Command {
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
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	cmd.SetIn(a.stdin)
	cmd.SetOut(a.stdout)
	cmd.SetErr(a.stderr)
	cmd.PersistentFlags().BoolVarP(&a.json, "json", "j", false, "print machine-readable JSON")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return errcode.Wrap(errcode.Usage, err, "bad flag")
	})
	cmd.AddCommand(newInitCmd(a), newServeCmd(a), newBackupCmd(a), newKeysCmd(a), newTokensCmd(a), newLoadgenCmd(a), newVersionCmd(a))
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
	cmd := newRootCmd(a)
	cmd.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return errcode.ExitOK
	}
	if _, coded := errcode.CodeOf(err); !coded && isCobraUsage(err) {
		err = errcode.Wrap(errcode.Usage, err, "bad usage")
	}
	// "ARCxxxx: message", then what to do.
	fmt.Fprintf(stderr, "error: %s\n", errcode.Format(err))
	if r := errcode.RemedyOf(err); r != "" {
		fmt.Fprintf(stderr, "what to do: %s\n", r)
	}
	return errcode.ExitCode(err)
}

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "flag needs an argument", "invalid argument", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func usageArgs(f cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := f(cmd, args); err != nil {
			return errcode.Wrap(errcode.Usage, err, "%s", cmd.CommandPath())
		}
		return nil
	}
}
