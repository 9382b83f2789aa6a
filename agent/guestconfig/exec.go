package guestconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/arcagent/arcagent/errcode"
)

func init() { Register("exec", decodeExec) }

// Exit codes of the exec resource's scripts (the OS Config contract).
const (
	// ExecInDesiredState: validate found the target in the desired state;
	// enforce succeeded.
	ExecInDesiredState = 100
	// ExecNotInDesiredState: validate found the target not in the desired
	// state.
	ExecNotInDesiredState = 101
)

// maxExecTimeout bounds the timeout a document may give a script.
const maxExecTimeout = time.Hour

// stderrInReason is how much of a failing script's stderr a reason quotes.
const stderrInReason = 1 << 10

// ExecSpec is the body of an exec resource: a validate script and an
// optional enforce script, inline or as files of the package.
type ExecSpec struct {
	Validate     string `yaml:"validate"`
	ValidateFile string `yaml:"validateFile"`
	Enforce      string `yaml:"enforce"`
	EnforceFile  string `yaml:"enforceFile"`
	// Interpreter runs the script (default /bin/sh): an absolute path on
	// the host running the agent.
	Interpreter string `yaml:"interpreter"`
	// Timeout bounds each run ("30s", "5m"); default and upper bound are
	// the Env's command timeout.
	Timeout string `yaml:"timeout"`
}

type execResource struct {
	s        ExecSpec
	validate []byte
	enforce  []byte // nil: the resource only audits
	timeout  time.Duration
	params   []string // ARCAGENT_PARAM_<name>=<value>, sorted
}

// errUnsignedExec is the guard: scripts only come from verified packages.
var errUnsignedExec = errcode.New(CodePackage, "exec resources run scripts as root and are accepted only from a configuration package whose signature verified against the trust store; this document was not loaded from one (the built-in baseline, `audit --rules` and `guestconfig check` of a local file never run scripts): build it with `arcagent guestconfig build`, sign it with `arcagent package sign --kind guestconfig` and assign it")

func decodeExec(body *yaml.Node, c CompileContext) (Resource, error) {
	if !c.Signed {
		return nil, errUnsignedExec
	}
	var s ExecSpec
	if err := DecodeBody(body, &s); err != nil {
		return nil, err
	}
	r := &execResource{s: s}
	for k, v := range c.Params {
		r.params = append(r.params, "ARCAGENT_PARAM_"+k+"="+v)
	}
	sort.Strings(r.params)
	var err error
	if r.validate, err = execScript("validate", s.Validate, s.ValidateFile, c); err != nil {
		return nil, err
	}
	if r.validate == nil {
		return nil, errors.New("give validate (an inline script) or validateFile (a file of the package)")
	}
	if r.enforce, err = execScript("enforce", s.Enforce, s.EnforceFile, c); err != nil {
		return nil, err
	}
	if s.Interpreter == "" {
		r.s.Interpreter = "/bin/sh"
	} else if !path.IsAbs(s.Interpreter) || path.Clean(s.Interpreter) != s.Interpreter || strings.ContainsAny(s.Interpreter, " \t\x00") {
		return nil, fmt.Errorf("interpreter %q must be a clean absolute path such as /bin/sh or /usr/bin/python3 (no arguments)", s.Interpreter)
	}
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil || d <= 0 || d > maxExecTimeout {
			return nil, fmt.Errorf("timeout %q: use a duration such as \"30s\" or \"5m\", at most %s", s.Timeout, maxExecTimeout)
		}
		r.timeout = d
	}
	return r, nil
}

// execScript picks the inline script or the package file; nil when
// neither is given.
func execScript(what, inline, file string, c CompileContext) ([]byte, error) {
	switch {
	case inline != "" && file != "":
		return nil, fmt.Errorf("give %s or %sFile, not both", what, what)
	case file != "":
		b, ok := c.Files[file]
		if !ok {
			return nil, fmt.Errorf("%sFile %q is not a file of the package", what, file)
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("%sFile %q is empty", what, file)
		}
		return b, nil
	case inline != "":
		return []byte(inline), nil
	}
	return nil, nil
}

// run runs one script: written 0700 into a private 0700 temporary
// directory and passed to the interpreter as its only argument, with stdin
// empty, the working directory the target root and ARCAGENT_ROOT /
// ARCAGENT_MODE / ARCAGENT_PARAM_<name> in the environment, through Env.Run (timeout, bounded
// output, the daemon's cgroup).
func (r *execResource) run(ctx context.Context, env *Env, mode string, script []byte) (CommandResult, error) {
	dir, err := os.MkdirTemp("", "arcagent-gc-exec-")
	if err != nil {
		return CommandResult{}, errcode.Wrap(CodeResource, err, "prepare the %s script", mode)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, mode+".script")
	if err := os.WriteFile(file, script, 0o700); err != nil {
		return CommandResult{}, errcode.Wrap(CodeResource, err, "prepare the %s script", mode)
	}
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	res, err := env.Run(ctx, Command{
		Path: r.s.Interpreter,
		Args: []string{file},
		Env:  append([]string{"ARCAGENT_ROOT=" + env.Root(), "ARCAGENT_MODE=" + mode}, r.params...),
		Dir:  env.Root(),
	})
	if err != nil {
		if r.timeout > 0 && ctx.Err() != nil {
			return res, errcode.Wrap(CodeResource, err, "the %s script did not finish within its timeout of %s", mode, r.timeout)
		}
		return res, errcode.Wrap(CodeResource, err, "the %s script could not run (interpreter %s)", mode, r.s.Interpreter)
	}
	return res, nil
}

// firstLine is the first line of b, trimmed and bounded, for evidence.
func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return clip(strings.TrimSpace(string(line)), 200)
}

// clip bounds s to n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// stderrHint quotes the first KiB of stderr for a reason.
func stderrHint(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return " (no output on stderr)"
	}
	return ": " + clip(s, stderrInReason)
}

func execEvidence(res CommandResult) Evidence {
	return Evidence{"exitCode": strconv.Itoa(res.ExitCode), "stdout": firstLine(res.Stdout)}
}

func (r *execResource) Get(ctx context.Context, env *Env) (Evidence, error) {
	obs, err := r.Test(ctx, env)
	return obs.Evidence, err
}

// Test runs the validate script: exit 100 is compliant, 101 is not (the
// first line of stdout is the reason), anything else is an error.
func (r *execResource) Test(ctx context.Context, env *Env) (Observation, error) {
	res, err := r.run(ctx, env, "validate", r.validate)
	ev := execEvidence(res)
	if err != nil {
		return Observation{Evidence: ev}, err
	}
	switch res.ExitCode {
	case ExecInDesiredState:
		return Observation{Compliant: true, Evidence: ev}, nil
	case ExecNotInDesiredState:
		reason := "the validate script reports the target is not in the desired state (exit 101)"
		if l := ev["stdout"]; l != "" {
			reason += ": " + l
		}
		return Observation{Reason: reason, Evidence: ev}, nil
	}
	return Observation{Evidence: ev}, errcode.New(CodeResource, "the validate script exited %d (100 means in the desired state, 101 not in it, anything else is an error)%s", res.ExitCode, stderrHint(res.Stderr))
}

// Set runs the enforce script: exit 100 is success (the engine tests
// again), anything else an error. A resource without one cannot be set.
func (r *execResource) Set(ctx context.Context, env *Env) error {
	if r.enforce == nil {
		return errcode.New(CodeResource, "this exec resource has no enforce script: it can only audit")
	}
	if !env.CanWrite() {
		return errcode.New(CodeResource, "refusing to run the enforce script: this evaluation may not change the target (Audit mode)")
	}
	res, err := r.run(ctx, env, "enforce", r.enforce)
	if err != nil {
		return err
	}
	if res.ExitCode != ExecInDesiredState {
		return errcode.New(CodeResource, "the enforce script exited %d (100 means success)%s", res.ExitCode, stderrHint(res.Stderr))
	}
	return nil
}
