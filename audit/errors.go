package audit

import (
	"context"
	"errors"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/rules"
)

// Error codes of the audit engine (ARC0030–ARC0039).
const (
	CodeRuleFile    errcode.Code = "ARC0030"
	CodeWaiverFile  errcode.Code = "ARC0031"
	CodeBaseline    errcode.Code = "ARC0032"
	CodeTarget      errcode.Code = "ARC0033"
	CodeSelection   errcode.Code = "ARC0034"
	CodeIncomplete  errcode.Code = "ARC0035"
	CodeInterrupted errcode.Code = "ARC0036"
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeRuleFile, Exit: errcode.ExitUsage, Title: "a rule file is invalid", Remedy: "fix the rule at the file, line and column shown; `arcagent rules list --rules DIR` checks a directory without auditing"},
		{Code: CodeWaiverFile, Exit: errcode.ExitUsage, Title: "the waiver file is invalid", Remedy: "every waiver needs rule, justification and expires (YYYY-MM-DD); see examples/waivers.yaml"},
		{Code: CodeBaseline, Exit: errcode.ExitUsage, Title: "the baseline report cannot be used", Remedy: "pass a JSON report written by `arcagent audit -o json=FILE`"},
		{Code: CodeTarget, Exit: errcode.ExitUsage, Title: "the audit target cannot be read", Remedy: "check the --root directory, or fix the --config file you gave (the audit never changes it; `arcagent config info PROPERTY` lists the allowed values)"},
		{Code: CodeSelection, Exit: errcode.ExitUsage, Title: "bad rule selection", Remedy: "run `arcagent rules list` to see rule ids and profiles"},
		{Code: CodeIncomplete, Exit: errcode.ExitFailed, Title: "the audit could not complete", Remedy: "fix what the named rules could not read (the report's collector errors say what and where), or run with --dump-facts to see the facts; a rule over its evaluation budget must be simplified"},
		{Code: CodeInterrupted, Exit: errcode.ExitFailed, Title: "the audit was interrupted", Remedy: "run the audit again and let it finish; nothing was written"},
	} {
		errcode.Register(i)
	}
}

// Classify wraps an error from Run in its stable code.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	// A target that cannot be read is bad input (exit 2) even when the
	// cause carries a code of its own: an invalid --config file is the
	// user's to fix, and the host's config remedies do not apply to it.
	var te *TargetError
	if errors.As(err, &te) {
		return errcode.Wrap(CodeTarget, err, "target")
	}
	if _, coded := errcode.CodeOf(err); coded {
		return err
	}
	var le *rules.LoadError
	var we *WaiverError
	var be *BaselineError
	var ue *UsageError
	switch {
	case errors.As(err, &le):
		return errcode.Wrap(CodeRuleFile, err, "rule file")
	case errors.As(err, &we):
		return errcode.Wrap(CodeWaiverFile, err, "waivers")
	case errors.As(err, &be):
		return errcode.Wrap(CodeBaseline, err, "baseline")
	case errors.As(err, &ue):
		return errcode.Wrap(CodeSelection, err, "selection")
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return errcode.Wrap(CodeInterrupted, err, "audit")
	}
	return errcode.Wrap(CodeIncomplete, err, "audit")
}
