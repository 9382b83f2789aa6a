package guestconfig

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// Mode is an assignment's mode.
type Mode string

// The three modes of an assignment.
const (
	// Audit tests and never sets.
	Audit Mode = "Audit"
	// ApplyAndMonitor sets once (on assignment or a version change), then
	// only reports drift.
	ApplyAndMonitor Mode = "ApplyAndMonitor"
	// ApplyAndAutoCorrect sets whenever a test fails.
	ApplyAndAutoCorrect Mode = "ApplyAndAutoCorrect"
)

// ParseMode accepts the three mode names (case-insensitively).
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{Audit, ApplyAndMonitor, ApplyAndAutoCorrect} {
		if equalFold(string(m), s) {
			return m, nil
		}
	}
	return "", fmt.Errorf("mode %q: use Audit, ApplyAndMonitor or ApplyAndAutoCorrect", s)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Compliance values of a resource and of a whole report: the wire
// values of controlplane/apiv1.
const (
	Compliant    = apiv1.GuestConfigCompliant
	NonCompliant = apiv1.GuestConfigNonCompliant
	Error        = apiv1.GuestConfigError
	// Skipped: not evaluated because an earlier resource failed to set
	// (a resource error stops its policy in the enforcing modes) or the
	// evaluation was cancelled.
	Skipped = apiv1.GuestConfigSkipped
	// Pending: assigned, not evaluated yet (control plane and status only).
	Pending = apiv1.GuestConfigPending
	// NotApplicable: the resource's onlyIfExists path is missing; it
	// counts as compliant.
	NotApplicable = apiv1.GuestConfigNotApplicable
	// NotApplied: disabled by local configuration or refused before
	// evaluation (status only).
	NotApplied = apiv1.GuestConfigNotApplied
)

// Step is one step of a resource's evaluation.
type Step struct {
	Name     string  `json:"name"` // test, set, retest
	Outcome  string  `json:"outcome"`
	Message  string  `json:"message,omitempty"`
	Duration float64 `json:"durationMs"`
}

// ResourceReport is the outcome of one resource.
type ResourceReport struct {
	ID          string   `json:"id"`
	Type        string   `json:"type"`
	Title       string   `json:"title,omitempty"`
	Severity    string   `json:"severity,omitempty"`
	Compliance  string   `json:"complianceStatus"`
	Reason      string   `json:"reason,omitempty"`
	Evidence    Evidence `json:"evidence,omitempty"`
	Changed     bool     `json:"changed,omitempty"` // a set ran and succeeded
	Steps       []Step   `json:"steps"`
	Duration    float64  `json:"durationMs"`
	Remediation string   `json:"remediation,omitempty"`
}

// Report is the outcome of one evaluation of a document.
type Report struct {
	Name       string           `json:"name"`
	Version    string           `json:"version"`
	Mode       Mode             `json:"mode"`
	Applied    bool             `json:"applied"` // sets were allowed in this pass
	Compliance string           `json:"complianceStatus"`
	Message    string           `json:"message,omitempty"`
	StartedAt  time.Time        `json:"startedAt"`
	Duration   float64          `json:"durationMs"`
	Resources  []ResourceReport `json:"resources"`
	Backups    string           `json:"backups,omitempty"` // where this pass kept previous files
}

// Counts returns how many resources are in each compliance state.
func (r *Report) Counts() map[string]int {
	out := map[string]int{}
	for _, x := range r.Resources {
		out[x.Compliance]++
	}
	return out
}

// EvalOptions says how to evaluate.
type EvalOptions struct {
	Mode Mode
	// Apply says whether sets are allowed in this pass: always for
	// ApplyAndAutoCorrect, on the first pass after assignment or a version
	// change for ApplyAndMonitor, never for Audit (ignored there).
	Apply bool
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Evaluate evaluates a compiled document against env. Audit (and a
// monitoring pass) only tests, and evaluates every resource even after an
// error. Enforcing tests, sets what is not compliant, then tests again;
// a resource whose set fails is an Error and stops the document: the
// resources after it are Skipped. Cancelling ctx skips the rest.
func Evaluate(ctx context.Context, env *Env, c *Compiled, o EvalOptions) *Report {
	now := env.o.Now
	start := now()
	enforce := o.Mode == ApplyAndAutoCorrect || (o.Mode == ApplyAndMonitor && o.Apply)
	rep := &Report{Name: c.Doc.Name, Version: c.Doc.Version, Mode: o.Mode, Applied: enforce, StartedAt: start.UTC()}
	stopped := ""
	for _, cr := range c.Resources {
		e := cr.Entry
		rr := ResourceReport{ID: e.ID, Type: e.Type, Title: e.Title, Severity: e.Severity, Remediation: c.Expand(e.Remediation), Steps: []Step{}}
		if stopped == "" && ctx.Err() != nil {
			stopped = "the evaluation was cancelled"
		}
		if stopped != "" {
			rr.Compliance, rr.Reason = Skipped, stopped
			rep.Resources = append(rep.Resources, rr)
			continue
		}
		t0 := now()
		if p := e.OnlyIfExists; p != "" {
			if _, err := env.Lstat(p); err != nil {
				rr.Compliance, rr.Reason = NotApplicable, p+" does not exist on this target"
				if !errors.Is(err, fs.ErrNotExist) {
					rr.Compliance, rr.Reason = Error, err.Error()
				}
				rr.Duration = ms(now().Sub(t0))
				rep.Resources = append(rep.Resources, rr)
				continue
			}
		}
		obs, err := test(ctx, env, cr.Resource, &rr, "test")
		switch {
		case err != nil:
			rr.Compliance, rr.Reason = Error, err.Error()
		case obs.Compliant:
			rr.Compliance = Compliant
		case !enforce:
			rr.Compliance, rr.Reason = NonCompliant, obs.Reason
		default:
			ts := now()
			serr := cr.Resource.Set(ctx, env)
			st := Step{Name: "set", Outcome: "ok", Duration: ms(now().Sub(ts))}
			if serr != nil {
				st.Outcome, st.Message = Error, serr.Error()
				rr.Steps = append(rr.Steps, st)
				rr.Compliance, rr.Reason = Error, "set failed: "+serr.Error()
				stopped = "not evaluated: resource " + e.ID + " failed to set"
				break
			}
			rr.Steps = append(rr.Steps, st)
			rr.Changed = true
			obs2, err := test(ctx, env, cr.Resource, &rr, "retest")
			switch {
			case err != nil:
				rr.Compliance, rr.Reason = Error, err.Error()
				stopped = "not evaluated: resource " + e.ID + " failed after its set"
			case obs2.Compliant:
				rr.Compliance, rr.Reason = Compliant, "corrected: "+obs.Reason
			default:
				rr.Compliance, rr.Reason = NonCompliant, "still not compliant after set: "+obs2.Reason
			}
		}
		rr.Duration = ms(now().Sub(t0))
		rep.Resources = append(rep.Resources, rr)
	}
	rep.Duration = ms(now().Sub(start))
	rep.Compliance = overall(rep.Resources)
	rep.Backups = env.BackupPath()
	return rep
}

func test(ctx context.Context, env *Env, r Resource, rr *ResourceReport, name string) (Observation, error) {
	t := env.o.Now()
	obs, err := r.Test(ctx, env)
	st := Step{Name: name, Duration: ms(env.o.Now().Sub(t))}
	switch {
	case err != nil:
		st.Outcome, st.Message = Error, err.Error()
	case obs.Compliant:
		st.Outcome = Compliant
	default:
		st.Outcome, st.Message = NonCompliant, obs.Reason
	}
	rr.Steps = append(rr.Steps, st)
	if obs.Evidence != nil {
		rr.Evidence = obs.Evidence
	}
	return obs, err
}

// overall: Error if any resource errored or was skipped, else NonCompliant
// if any is not compliant, else Compliant (NotApplicable counts as
// compliant).
func overall(rs []ResourceReport) string {
	out := Compliant
	for _, r := range rs {
		switch r.Compliance {
		case Error, Skipped:
			return Error
		case NonCompliant:
			out = NonCompliant
		}
	}
	return out
}
