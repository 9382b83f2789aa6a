// Package errcode holds arcagent's stable error codes. Each code has a fixed
// process exit code and a remedy that tells the reader what to do; packages
// return *Error values and the CLI prints them and exits with Exit.
package errcode

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Process exit codes shared by every command.
const (
	ExitOK       = 0 // success
	ExitFindings = 1 // the command ran and its verdict is negative (findings, invalid signature)
	ExitUsage    = 2 // bad usage or bad input (flags, values, rule/waiver/baseline files)
	ExitFailed   = 3 // the command could not complete (I/O, permissions, corrupt state)
)

// Code is a stable identifier such as "ARC0018".
type Code string

// Info describes a code: its exit status and what to do about it.
type Info struct {
	Code   Code   `json:"code"`
	Exit   int    `json:"exit"`
	Title  string `json:"title"`
	Remedy string `json:"remedy"`
}

// The codes. Never renumber: scripts and documentation depend on them.
const (
	Usage            Code = "ARC0001"
	Internal         Code = "ARC0002"
	UnknownProperty  Code = "ARC0010"
	InvalidValue     Code = "ARC0011"
	NotAList         Code = "ARC0012"
	AddRemoveBoth    Code = "ARC0013"
	MonitorModeLock  Code = "ARC0014"
	ConfigCorrupt    Code = "ARC0015"
	ConfigUnreadable Code = "ARC0016"
	ConfigLocked     Code = "ARC0017"
	PermissionDenied Code = "ARC0018"
	WriteFailed      Code = "ARC0019"
	// NotOnWindows: a daemon or a Linux-only verb run on Windows, where
	// only the configuration and the pre-onboarding audit work yet.
	NotOnWindows Code = "ARC0560"
)

var registry = map[Code]Info{}

// Register adds a code to the registry. Packages register their own codes
// from init; registering a code twice panics (a programming error).
func Register(i Info) {
	if _, dup := registry[i.Code]; dup {
		panic("errcode: duplicate code " + string(i.Code))
	}
	registry[i.Code] = i
}

func init() {
	for _, i := range []Info{
		{Usage, ExitUsage, "bad command-line usage", "run the command with --help to see its flags and arguments"},
		{Internal, ExitFailed, "internal error", "this is a bug: report it with the output of `arcagent version` and the command you ran"},
		{UnknownProperty, ExitUsage, "unknown configuration property", "run `arcagent config info` to list every property"},
		{InvalidValue, ExitUsage, "invalid configuration value", "run `arcagent config info PROPERTY` to see the allowed values"},
		{NotAList, ExitUsage, "--add/--remove used on a property that is not a list", "use `arcagent config set PROPERTY VALUE` for single-valued properties"},
		{AddRemoveBoth, ExitUsage, "--add and --remove given together", "run one `config set` with --add and another with --remove"},
		{MonitorModeLock, ExitUsage, "extension lists are locked in monitor mode", "run `arcagent config set config.mode full` first; your lists are kept"},
		{ConfigCorrupt, ExitFailed, "localconfig.json is not valid", "fix the JSON by hand, or run `arcagent config clear --all`: it keeps the bad file as localconfig.json.bad-<time> and writes the defaults"},
		{ConfigUnreadable, ExitFailed, "localconfig.json cannot be read", "check the file's permissions, or run the command as root"},
		{ConfigLocked, ExitFailed, "another process is changing the configuration", "wait for the other arcagent process to finish and try again"},
		{PermissionDenied, ExitFailed, "permission denied", "run the command as root (sudo arcagent …), or use --root DIR for a tree you own"},
		{WriteFailed, ExitFailed, "the file could not be written", "check free disk space and the directory's permissions; the previous file is unchanged"},
		{NotOnWindows, ExitUsage, "not supported on Windows", "on Windows only `config` and `audit` (of the configuration, or --config FILE) work yet; run this on the Linux machine"},
	} {
		Register(i)
	}
}

// Unsupported is the error of something that does not work on Windows
// (yet): what names it ("the himdsd daemon", "peer credentials").
func Unsupported(what string) *Error {
	return New(NotOnWindows, "%s is not supported on Windows", what)
}

// Lookup returns the registered info for c.
func Lookup(c Code) (Info, bool) {
	i, ok := registry[c]
	return i, ok
}

// All returns every registered code, sorted.
func All() []Info {
	out := make([]Info, 0, len(registry))
	for _, i := range registry {
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b Info) int { return cmp.Compare(a.Code, b.Code) })
	return out
}

// Error makes a Code usable as an errors.Is target: errors.Is(err, code)
// is true when an *Error in err's chain has that code.
func (c Code) Error() string { return string(c) }

// Error is an error with a stable code. Message says what went wrong in
// this instance; the code's remedy says what to do; Err is the cause.
// Error() is the message and the cause, without the code: the CLI prints
// the code in front (see Format), and callers match on the code with Is,
// never on the text.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// New returns an *Error with a formatted message.
func New(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error that wraps err.
func Wrap(c Code, err error, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...), Err: err}
}

// Error is the message, then the cause.
func (e *Error) Error() string {
	switch {
	case e.Err == nil:
		return e.Message
	case e.Message == "":
		return e.Err.Error()
	}
	return e.Message + ": " + e.Err.Error()
}

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Is matches a target of the same code: a Code, or an *Error (whose
// message is ignored), so errors.Is(err, errcode.New(c, "")) and
// errors.Is(err, c) both ask "does err carry code c?".
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Code:
		return e.Code == t
	case *Error:
		return t != nil && e.Code == t.Code
	}
	return false
}

// ErrorCode is the code; it makes *Error a Coder.
func (e *Error) ErrorCode() Code { return e.Code }

// Coder is an error that carries a stable code. *Error is one; a package
// may give its own error type an ErrorCode method to be one too.
type Coder interface {
	error
	ErrorCode() Code
}

// Is reports whether any error in err's chain carries code c.
func Is(err error, c Code) bool {
	found := false
	walk(err, func(e error) bool {
		if ce, ok := e.(Coder); ok && ce.ErrorCode() == c {
			found = true
		}
		return !found
	})
	return found
}

// CodeOf returns the code of the first error in err's chain that carries
// one.
func CodeOf(err error) (Code, bool) {
	var c Coder
	if errors.As(err, &c) {
		return c.ErrorCode(), true
	}
	return "", false
}

// Format is err as the CLI prints it: "ARCxxxx: message" when err carries a
// code, err.Error() otherwise.
func Format(err error) string {
	if err == nil {
		return ""
	}
	if c, ok := CodeOf(err); ok {
		return string(c) + ": " + err.Error()
	}
	return err.Error()
}

// RemedyOf is the remedy of err's code, or "".
func RemedyOf(err error) string {
	if c, ok := CodeOf(err); ok {
		return registry[c].Remedy
	}
	return ""
}

// walk calls f on err and every error it wraps, depth first, until f
// returns false.
func walk(err error, f func(error) bool) bool {
	if err == nil {
		return true
	}
	if !f(err) {
		return false
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return walk(u.Unwrap(), f)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if !walk(e, f) {
				return false
			}
		}
	}
	return true
}

// Remedy is what the reader should do next.
func (e *Error) Remedy() string {
	if i, ok := registry[e.Code]; ok {
		return i.Remedy
	}
	return ""
}

// Exit is the process exit code for e.
func (e *Error) Exit() int {
	if i, ok := registry[e.Code]; ok {
		return i.Exit
	}
	return ExitFailed
}

// ExitCode returns the process exit code for any error: the exit status of
// the first code in the chain (an *Error or another Coder), ExitFailed
// otherwise.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	if c, ok := CodeOf(err); ok {
		if i, ok := registry[c]; ok {
			return i.Exit
		}
		return ExitFailed
	}
	var x interface{ ExitCode() int }
	if errors.As(err, &x) {
		return x.ExitCode()
	}
	return ExitFailed
}
