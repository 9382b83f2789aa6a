package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/internal/cli"
)

// app holds the global flags and the process's streams. Every verb gets it.
type app struct {
	root      string
	json      bool
	noColor   bool
	verbose   bool
	logStderr bool

	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
}

// layout returns the on-disk layout under the --root prefix.
func (a *app) layout() layout.Layout { return layout.New(a.root) }

// warnf prints a warning for the person at the terminal.
func (a *app) warnf(format string, args ...any) {
	fmt.Fprintf(a.stderr, "warning: "+format+"\n", args...)
}

// printJSON writes v as indented JSON to stdout.
func (a *app) printJSON(v any) error { return cli.PrintJSON(a.stdout, v) }

// color reports whether output may use ANSI colours: only on a terminal.
func (a *app) color() bool {
	return !a.noColor && os.Getenv("NO_COLOR") == "" && cli.IsTerminal(a.stdout)
}

func newRootCmd(a *app) *cobra.Command {
	var out *cli.Output
	cmd := &cobra.Command{
		Use:   "arcagent",
		Short: "Hybrid server agent and security-posture auditor",
		Long: `arcagent connects a server to an arcagent control plane (arcserver) and
audits its security posture against Tier 0 and shared-responsibility rules.

Local security controls set with "arcagent config" override anything the
control plane asks for.`,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.root == "" {
				a.root = os.Getenv("ARCAGENT_ROOT")
			}
			if err := platformAllows(cmd); err != nil {
				return err
			}
			level := slog.LevelInfo
			if a.verbose {
				level = slog.LevelDebug
			}
			var w io.Writer = io.Discard
			if a.logStderr || a.verbose {
				w = a.stderr
			}
			a.log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
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
	pf := cmd.PersistentFlags()
	pf.StringVar(&a.root, "root", "", "root prefix for every agent path (also ARCAGENT_ROOT); default /")
	out = cli.OutputFlags(pf, &a.json)
	pf.BoolVar(&a.noColor, "no-color", false, "never colour the output (also NO_COLOR)")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "print debug logs to stderr")
	pf.BoolVar(&a.logStderr, "log-stderr", false, "write logs to stderr")

	cmd.AddCommand(newVersionCmd(a))
	for _, add := range extraCommands {
		cmd.AddCommand(add(a))
	}
	cli.Prepare(cmd)
	return cmd
}

// extraCommands lets verb files register themselves from init, so that
// adding a verb touches only its own file.
var extraCommands []func(*app) *cobra.Command

// run executes the CLI and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Run(ctx, newRootCmd(a), args, stderr)
}

// silentError carries an exit code for a command that already printed its
// verdict (e.g. an audit with findings).
type silentError struct{ code int }

func (s silentError) Error() string { return fmt.Sprintf("exit status %d", s.code) }
func (s silentError) Unwrap() error { return cli.ExitError{Code: s.code} }

// exactArgs is cobra.ExactArgs with the error typed as a usage error.
func exactArgs(n int) cobra.PositionalArgs { return cli.ExactArgs(n) }

// rangeArgs is cobra.RangeArgs with the error typed as a usage error.
func rangeArgs(min, max int) cobra.PositionalArgs { return cli.RangeArgs(min, max) }

// usageArgs types a validator's error as a usage error.
func usageArgs(f cobra.PositionalArgs) cobra.PositionalArgs { return cli.Args(f) }
