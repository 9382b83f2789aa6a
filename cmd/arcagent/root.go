package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
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
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// color reports whether output may use ANSI colours.
func (a *app) color() bool {
	if a.noColor || os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := a.stdout.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func newRootCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "arcagent",
		Short: "Hybrid server agent and security-posture auditor",
		Long: `arcagent connects a server to an arcagent control plane (arcserver) and
audits its security posture against Tier 0 and shared-responsibility rules.

Local security controls set with "arcagent config" override anything the
control plane asks for.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.root == "" {
				a.root = os.Getenv("ARCAGENT_ROOT")
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
			return nil
		},
	}
	cmd.SetIn(a.stdin)
	cmd.SetOut(a.stdout)
	cmd.SetErr(a.stderr)
	pf := cmd.PersistentFlags()
	pf.StringVar(&a.root, "root", "", "root prefix for every agent path (also ARCAGENT_ROOT); default /")
	pf.BoolVarP(&a.json, "json", "j", false, "print machine-readable JSON")
	pf.BoolVar(&a.noColor, "no-color", false, "never colour the output (also NO_COLOR)")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "print debug logs to stderr")
	pf.BoolVar(&a.logStderr, "log-stderr", false, "write logs to stderr")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return errcode.Wrap(errcode.Usage, err, "bad flag")
	})

	cmd.AddCommand(newVersionCmd(a))
	for _, add := range extraCommands {
		cmd.AddCommand(add(a))
	}
	return cmd
}

// extraCommands lets verb files register themselves from init, so that
// adding a verb touches only its own file.
var extraCommands []func(*app) *cobra.Command

// run executes the CLI and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cmd := newRootCmd(a)
	cmd.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return errcode.ExitOK
	}
	return a.report(err)
}

// report prints err for the person reading it and returns the exit code.
func (a *app) report(err error) int {
	var silent silentError
	if errors.As(err, &silent) {
		return silent.code
	}
	if _, coded := errcode.CodeOf(err); !coded && isCobraUsage(err) {
		err = errcode.Wrap(errcode.Usage, err, "bad usage")
	}
	// "ARCxxxx: message", then what to do.
	fmt.Fprintf(a.stderr, "error: %s\n", errcode.Format(err))
	if r := errcode.RemedyOf(err); r != "" {
		fmt.Fprintf(a.stderr, "what to do: %s\n", r)
	}
	return errcode.ExitCode(err)
}

// silentError carries an exit code for a command that already printed its
// verdict (e.g. an audit with findings).
type silentError struct{ code int }

func (s silentError) Error() string { return fmt.Sprintf("exit status %d", s.code) }

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "requires at most", "invalid argument", "flag needs an argument", "if any flags in the group"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// exactArgs is cobra.ExactArgs with the error typed as a usage error.
func exactArgs(n int) cobra.PositionalArgs { return usageArgs(cobra.ExactArgs(n)) }

// rangeArgs is cobra.RangeArgs with the error typed as a usage error.
func rangeArgs(min, max int) cobra.PositionalArgs { return usageArgs(cobra.RangeArgs(min, max)) }

func usageArgs(f cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := f(cmd, args); err != nil {
			return errcode.Wrap(errcode.Usage, err, "%s", cmd.CommandPath())
		}
		return nil
	}
}
