// Package cli is the command-line plumbing that arcagent and arcserver
// share: it runs a cobra root, turns every error into one
// "error: ARCxxxx: message" line with the code's remedy and exit status,
// classifies usage errors by type (flag errors through cobra's flag error
// hook, argument and unknown-command errors as *UsageError, never by
// matching cobra's message text), suggests the command meant by a
// mistyped one, gives the root a --version flag that prints what the
// version command prints, and holds the terminal check, the confirmation
// prompt and the one timestamp format of human output.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/arcagent/arcagent/errcode"
)

// Interrupted is the code of a command stopped by Ctrl-C or SIGTERM
// (ARC0050–ARC0059 are the CLI's codes).
const Interrupted errcode.Code = "ARC0050"

func init() {
	errcode.Register(errcode.Info{Code: Interrupted, Exit: errcode.ExitFailed, Title: "the command was interrupted",
		Remedy: "run it again; state files are replaced atomically, so none was left half-written"})
}

// UsageError is a mistake in how a command was called: an unknown
// command, wrong positional arguments, a bad flag. It maps to
// errcode.Usage (exit 2).
type UsageError struct {
	Cmd         string   // the command path, e.g. "arcagent fleet"
	Err         error    // what was wrong
	Suggestions []string // commands the user may have meant
}

func (e *UsageError) Error() string {
	msg := e.Cmd + ": " + e.Err.Error()
	if len(e.Suggestions) > 0 {
		msg += "; did you mean " + strings.Join(quoteAll(e.Suggestions), " or ") + "?"
	}
	return msg
}

func (e *UsageError) Unwrap() error { return e.Err }

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

// ExitError ends a command with an exit status and no message: the
// command already printed its verdict (e.g. an audit with findings).
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Args wraps a cobra positional-argument validator so that its error is a
// *UsageError. A nil validator stays nil.
func Args(f cobra.PositionalArgs) cobra.PositionalArgs {
	if f == nil {
		return nil
	}
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		var ue *UsageError
		if err == nil || errors.As(err, &ue) {
			return err
		}
		var ce *errcode.Error
		if errors.As(err, &ce) {
			return err
		}
		return &UsageError{Cmd: cmd.CommandPath(), Err: err}
	}
}

// ExactArgs is cobra.ExactArgs with a typed usage error.
func ExactArgs(n int) cobra.PositionalArgs { return Args(cobra.ExactArgs(n)) }

// RangeArgs is cobra.RangeArgs with a typed usage error.
func RangeArgs(min, max int) cobra.PositionalArgs { return Args(cobra.RangeArgs(min, max)) }

// Prepare readies a fully built root for Run: typed flag and argument
// errors on every command, "did you mean" for unknown commands at every
// level, help for a command group called without a subcommand, and a
// --version flag on the root that runs the root's "version" subcommand
// (so that both print the same, -j included).
func Prepare(root *cobra.Command) {
	root.SilenceErrors, root.SilenceUsage = true, true
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &UsageError{Cmd: c.CommandPath(), Err: err}
	})
	root.SetHelpCommand(helpCommand(root))
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	// Groups become runnable below (to check their arguments); their usage
	// still shows only "CMD [command]", not a "CMD [flags]" line.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	var version bool
	if vc := findSub(root, "version"); vc != nil && root.Flags().Lookup("version") == nil {
		root.Flags().BoolVar(&version, "version", false, "print the version (what the version command prints; -j for JSON)")
		root.RunE = func(cmd *cobra.Command, args []string) error {
			if version {
				return vc.RunE(vc, nil)
			}
			return cmd.Help()
		}
	}
	walk(root, func(c *cobra.Command) {
		c.Args = Args(c.Args)
		if !c.HasSubCommands() {
			return
		}
		c.SuggestionsMinimumDistance = 2
		if !c.Runnable() {
			// A group's own argument check never ran (cobra printed help
			// and exited 0 for any argument): it runs now.
			c.Args = unknownCommand
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		} else if c.Args == nil {
			c.Args = unknownCommand
		}
	})
}

// helpCommand is "help [command]" with the same unknown-command error
// (and suggestions) as the commands themselves.
func helpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "help prints the help of any command: " + root.Name() + " help [path to command].",
		RunE: func(_ *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err != nil {
				return &UsageError{Cmd: root.Name() + " help", Err: err}
			}
			if len(rest) > 0 {
				return unknownCommand(target, rest)
			}
			target.InitDefaultHelpFlag()
			return target.Help()
		},
	}
}

func findSub(c *cobra.Command, name string) *cobra.Command {
	for _, s := range c.Commands() {
		if s.Name() == name && s.RunE != nil {
			return s
		}
	}
	return nil
}

func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, s := range c.Commands() {
		walk(s, f)
	}
}

// unknownCommand is the argument check of a command group: any argument
// left after cobra found no subcommand is an unknown command.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return &UsageError{
		Cmd:         cmd.CommandPath(),
		Err:         fmt.Errorf("unknown command %q (run %s --help for the list)", args[0], cmd.CommandPath()),
		Suggestions: cmd.SuggestionsFor(args[0]),
	}
}

// CheckFlags runs cobra's required-flag and flag-group checks and types
// their errors as usage errors. Call it from the root's PersistentPreRunE,
// which runs before cobra's own (untyped) checks.
func CheckFlags(cmd *cobra.Command) error {
	for _, check := range []func() error{cmd.ValidateRequiredFlags, cmd.ValidateFlagGroups} {
		if err := check(); err != nil {
			return &UsageError{Cmd: cmd.CommandPath(), Err: err}
		}
	}
	return nil
}

// Run executes the prepared root with args and returns the exit status,
// after printing any error to stderr.
func Run(ctx context.Context, root *cobra.Command, args []string, stderr io.Writer) int {
	root.SetArgs(args)
	return Report(stderr, root.ExecuteContext(ctx))
}

// Report prints err for the person reading stderr, as
// "error: ARCxxxx: message" and "what to do: remedy", and returns the exit
// status of its code. A nil error is exit 0; an ExitError prints nothing.
func Report(stderr io.Writer, err error) int {
	if err == nil {
		return errcode.ExitOK
	}
	var silent ExitError
	if errors.As(err, &silent) {
		return silent.Code
	}
	ce := Classify(err)
	// The code comes first; Error() of a coded error never carries it.
	fmt.Fprintf(stderr, "error: %s: %s\n", ce.Code, err.Error())
	if r := ce.Remedy(); r != "" {
		fmt.Fprintf(stderr, "what to do: %s\n", r)
	}
	var x interface{ ExitCode() int }
	if _, coded := errcode.CodeOf(err); !coded && errors.As(err, &x) {
		return x.ExitCode()
	}
	return ce.Exit()
}

// Classify returns the coded error that err carries: the first
// *errcode.Error in its chain; errcode.Usage for a *UsageError;
// Interrupted for a canceled context; errcode.PermissionDenied for a
// permission error; errcode.Internal for
// anything else (an uncoded error is a bug to report).
func Classify(err error) *errcode.Error {
	var ue *UsageError
	if c, ok := errcode.CodeOf(err); ok {
		return &errcode.Error{Code: c, Err: err}
	}
	switch {
	case errors.As(err, &ue):
		return errcode.Wrap(errcode.Usage, err, "bad usage")
	case errors.Is(err, context.Canceled):
		return errcode.Wrap(Interrupted, err, "interrupted")
	case errors.Is(err, fs.ErrPermission):
		return errcode.Wrap(errcode.PermissionDenied, err, "permission denied")
	}
	return errcode.Wrap(errcode.Internal, err, "internal error")
}

// Output is the -o/--output choice every command takes: table (the
// default, for people) or json (what -j prints).
type Output struct {
	json   *bool
	format string
	flag   *pflag.Flag
}

// OutputFlags adds -j/--json (into json) and -o/--output to fs, a root's
// persistent flags. Commands that write several formats define their own
// -o, which hides this one on them.
func OutputFlags(fs *pflag.FlagSet, json *bool) *Output {
	o := &Output{json: json}
	fs.BoolVarP(json, "json", "j", false, "print machine-readable JSON (same as -o json)")
	fs.StringVarP(&o.format, "output", "o", "", "output format: table or json (json is what -j prints)")
	o.flag = fs.Lookup("output")
	return o
}

// Resolve checks the -o value and folds -o json into the JSON flag. Call
// it from the root's PersistentPreRunE; cmd is the command being run.
func (o *Output) Resolve(cmd *cobra.Command) error {
	if cmd.Flags().Lookup("output") != o.flag {
		return nil // the command's own -o (audit, report convert, fleet currency)
	}
	switch strings.ToLower(o.format) {
	case "", "table":
	case "json":
		*o.json = true
	default:
		return &UsageError{Cmd: cmd.CommandPath(), Err: fmt.Errorf("-o/--output %q: use table or json", o.format)}
	}
	return nil
}

// NormalizeOutput makes --format a synonym of --output, so that -o,
// --output and --format name the same flag on every command. Install it
// with root.SetGlobalNormalizationFunc; cobra renames flags already
// defined and those of subcommands added later.
func NormalizeOutput(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if name == "format" {
		name = "output"
	}
	return pflag.NormalizedName(name)
}

// Time formats t for human output: RFC 3339 in UTC, "-" for the zero time.
func Time(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// PrintJSON writes v to w as indented JSON: what -j and -o json print.
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
