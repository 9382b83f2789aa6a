// Package errcode holds arcagent's stable error codes. Each code has a fixed
// process exit code and a remedy that tells the reader what to do; packages
// return *Error values and the CLI prints them and exits with Exit.
package errcode

import (
	"errors"
	"fmt"
	"sort"
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
	} {
		Register(i)
	}
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
	sort.Slice(out, func(a, b int) bool { return out[a].Code < out[b].Code })
	return out
}

// Error is an error with a stable code. Message says what went wrong in
// this instance; the code's remedy says what to do. Kind, when set, is the
// class of the error (a package's sentinel, for errors.Is); Err is the
// cause.
type Error struct {
	Code    Code
	Message string
	Kind    error
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

func (e *Error) Error() string {
	msg := e.Message
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return fmt.Sprintf("%s: %s", e.Code, msg)
}

// Unwrap exposes the class and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	out := make([]error, 0, 2)
	for _, x := range []error{e.Kind, e.Err} {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
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

// ExitCode returns the process exit code for any error: the code's exit
// status for an *Error anywhere in the chain, ExitFailed otherwise.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Exit()
	}
	var x interface{ ExitCode() int }
	if errors.As(err, &x) {
		return x.ExitCode()
	}
	return ExitFailed
}
