package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/buildinfo"
	"github.com/arcagent/arcagent/internal/suggest"
	"github.com/arcagent/arcagent/reports"
	"github.com/arcagent/arcagent/rules"
)

// Selection chooses which rules run.
type Selection struct {
	Profiles    []string // empty or "all": every profile
	Rules       []string // only these rule ids (empty: all selected by profile)
	SkipRules   []string
	MinSeverity reports.Severity // "" = info
}

// RunOptions configure one audit.
type RunOptions struct {
	Collect   Options
	Rules     []rules.Rule // the rule set to select from (built-in + --rules)
	Select    Selection
	Waivers   []Waiver
	Baseline  *reports.Report
	BaseFile  string
	FailOn    reports.Severity
	RunID     string
	Warn      func(string) // warnings for the person running the audit
	KeepFacts bool         // return the collected facts too
}

// Result is the outcome of Run.
type Result struct {
	Report *reports.Report
	Facts  *Facts
}

// UsageError is bad input from the person running the audit: exit 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ExitCode implements the CLI's exit-code hook.
func (e *UsageError) ExitCode() int { return errcode.ExitUsage }

// SelectRules applies a selection to rs. Unknown profiles or rule ids are
// usage errors.
func SelectRules(rs []rules.Rule, sel Selection) ([]rules.Rule, []string, error) {
	known := rules.Profiles(rs)
	profiles := map[string]bool{}
	var names []string
	for _, p := range sel.Profiles {
		for _, q := range strings.Split(p, ",") {
			q = strings.ToLower(strings.TrimSpace(q))
			if q == "" {
				continue
			}
			if q != "all" && !slices.Contains(known, q) {
				return nil, nil, &UsageError{fmt.Errorf("unknown profile %q (known: all, %s)", q, strings.Join(known, ", "))}
			}
			profiles[q] = true
		}
	}
	byDefault := len(profiles) == 0
	if byDefault || profiles["all"] {
		profiles = map[string]bool{}
		names = []string{"all"}
	} else {
		for p := range profiles {
			names = append(names, p)
		}
		slices.Sort(names)
	}
	ids := map[string]bool{}
	for _, r := range rs {
		ids[r.ID] = true
	}
	only, skip := map[string]bool{}, map[string]bool{}
	for _, list := range []struct {
		in  []string
		out map[string]bool
	}{{sel.Rules, only}, {sel.SkipRules, skip}} {
		for _, s := range list.in {
			for _, id := range strings.Split(s, ",") {
				id = strings.ToUpper(strings.TrimSpace(id))
				if id == "" {
					continue
				}
				if !ids[id] {
					all := make([]string, 0, len(rs))
					for _, r := range rs {
						all = append(all, r.ID)
					}
					return nil, nil, &UsageError{fmt.Errorf("unknown rule %q%s: run `arcagent rules list` to see the rule ids", id, suggest.DidYouMean(id, all))}
				}
				list.out[id] = true
			}
		}
	}
	minRank := 0
	if sel.MinSeverity != "" {
		minRank = sel.MinSeverity.Rank()
	}
	var out []rules.Rule
	for _, r := range rs {
		if len(only) > 0 && !only[r.ID] || skip[r.ID] || r.Severity.Rank() < minRank {
			continue
		}
		if len(profiles) > 0 && !anyIn(r.Profiles, profiles) {
			continue
		}
		// The host profile judges the host, not the agent: it runs when
		// named (or with "all"), never by default.
		if byDefault && len(only) == 0 && slices.Equal(r.Profiles, []string{HostProfile}) {
			continue
		}
		out = append(out, r)
	}
	return out, names, nil
}

func anyIn(l []string, set map[string]bool) bool {
	for _, x := range l {
		if set[x] {
			return true
		}
	}
	return false
}

// compileAndCollect compiles the selected rules while the collectors read
// the target: compiling is CPU (CEL parsing and checking), collecting is
// mostly waiting on reads, so on two cores the audit takes about the longer
// of the two instead of their sum. A rule that does not compile stops the
// collection and is the error returned, as when compiling came first.
func compileAndCollect(ctx context.Context, selected []rules.Rule, co Options) (*rules.Set, *Facts, error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type compiled struct {
		set *rules.Set
		err error
	}
	done := make(chan compiled, 1)
	go func() {
		set, err := rules.Compile(selected)
		if err != nil {
			cancel()
		}
		done <- compiled{set, err}
	}()
	facts, err := Collect(cctx, co)
	c := <-done
	if c.err != nil {
		return nil, nil, &UsageError{c.err}
	}
	if err != nil {
		return nil, nil, err
	}
	return c.set, facts, nil
}

// Run collects, evaluates, waives and compares, and returns the report.
func Run(ctx context.Context, o RunOptions) (*Result, error) {
	start := o.Collect.Now
	if start.IsZero() {
		start = time.Now()
		o.Collect.Now = start
	}
	warn := o.Warn
	if warn == nil {
		warn = func(string) {}
	}
	selected, profileNames, err := SelectRules(o.Rules, o.Select)
	if err != nil {
		return nil, err
	}
	readsCloud := false
	for _, r := range selected {
		if slices.Contains(r.Profiles, HostProfile) {
			o.Collect.HostConfig = true
		}
		readsCloud = readsCloud || ruleReads(r, "facts.cloud")
	}
	if !readsCloud {
		o.Collect.Cloud = nil // no selected rule needs the control plane
	}
	set, facts, err := compileAndCollect(ctx, selected, o.Collect)
	if err != nil {
		return nil, err
	}
	doc, err := factsDocument(facts)
	if err != nil {
		return nil, err
	}
	warnUnknownKeys(facts, warn)
	rep := &reports.Report{
		SchemaVersion: reports.SchemaVersion,
		Tool:          reports.Tool{Name: "arcagent", Version: buildinfo.Get().Version, InformationURI: "https://github.com/arcagent/arcagent"},
		RunID:         o.RunID,
		StartedAt:     start.UTC(),
		Target:        targetOf(facts),
		Profiles:      profileNames,
		FailOn:        o.FailOn,
		Rules:         []reports.Rule{},
		Waivers:       []reports.AppliedWaiver{},
	}
	if rep.RunID == "" {
		rep.RunID = newRunID()
	}
	if rep.FailOn == "" {
		rep.FailOn = reports.SeverityHigh
	}
	planned := ""
	if rep.Target.Kind == reports.TargetPlanned {
		planned = plannedLocation(rep.Target.Planned)
	}
	for _, c := range set.Rules {
		fix, err := c.RenderRemediation(ctx, doc)
		if err != nil {
			warn(err.Error())
		}
		rep.Rules = append(rep.Rules, reports.Rule{ID: c.ID, Title: c.Title, Severity: c.Severity, Profiles: c.Profiles,
			Rationale: c.Rationale, Remediation: adaptRemedy(fix, rep.Target, facts.Target.IDs), References: c.References, Source: c.Source})
		for _, oc := range c.EvalContext(ctx, doc) {
			loc := reports.Location{Path: oc.Path, Line: oc.Line}
			if planned != "" && loc.Path == facts.Config.Path {
				// The planned file is what the finding is about, as the
				// user named it: CI annotates it in the pull request.
				loc.Path = planned
			} else if facts.Target.OS == "windows" {
				loc.Path = windowsLocation(loc.Path)
			}
			rep.Results = append(rep.Results, reports.Result{
				RuleID: c.ID, Severity: c.Severity, Status: oc.Status, Message: oc.Message, Resource: oc.Resource,
				Location: loc, Evidence: oc.Evidence, Reason: oc.Reason,
				Fingerprint: reports.Fingerprint(c.ID, facts.Host.Name, oc.Resource),
			})
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("the audit was interrupted while evaluating %s: %w", c.ID, err)
		}
	}
	rep.Waivers = applyWaivers(rep, o.Waivers, facts.Host.Name, start, warn)
	if o.Baseline != nil {
		applyBaseline(rep, o.Baseline, o.BaseFile)
	}
	for _, e := range facts.Errors {
		rep.CollectorErrors = append(rep.CollectorErrors, reports.CollectorError{Collector: e.Collector, Path: e.Path, Error: e.Error})
	}
	rep.SortResults()
	rep.Summarize()
	rep.DurationMs = time.Since(start).Milliseconds()
	if rep.DurationMs < 0 {
		rep.DurationMs = 0
	}
	res := &Result{Report: rep}
	if o.KeepFacts {
		res.Facts = facts
	}
	return res, nil
}

// warnUnknownKeys warns about keys of the audited configuration that are
// no property (they are kept, but they configure nothing), with the
// property a near miss probably meant.
func warnUnknownKeys(f *Facts, warn func(string)) {
	file := filepath.Join(f.Target.Root, "/"+f.Config.Path)
	switch {
	case f.Target.Kind == reports.TargetPlanned:
		file = f.Target.Planned
	case f.Target.OS == "windows":
		file = windowsLocation(f.Config.Path)
	}
	for _, k := range f.Config.UnknownKeys {
		at := file
		if line, ok := f.Config.Lines[k]; ok {
			at = fmt.Sprintf("%s:%d", file, line)
		}
		warn(fmt.Sprintf("%s: unknown key %q configures nothing (it is kept but ignored)%s", at, k, suggest.DidYouMean(k, config.Names())))
	}
}

// factsDocument turns Facts into the plain JSON values CEL evaluates.
func factsDocument(f *Facts) (map[string]any, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode facts: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decode facts: %w", err)
	}
	return doc, nil
}

// DefaultInstallNote is shown when no agent is installed.
const DefaultInstallNote = "no agent is installed: before you connect, this is what a default install would allow"

func targetOf(f *Facts) reports.Target {
	t := reports.Target{Kind: f.Target.Kind, Host: f.Host.Name, MachineID: f.Host.MachineID, OS: f.Host.OS}
	switch f.Target.Kind {
	case reports.TargetRoot:
		t.Root = f.Target.Root
	case reports.TargetPlanned:
		t.Planned = f.Target.Planned
	}
	if f.Target.DefaultInstall {
		t.Note = DefaultInstallNote
	}
	return t
}

func applyWaivers(rep *reports.Report, ws []Waiver, host string, now time.Time, warn func(string)) []reports.AppliedWaiver {
	out := []reports.AppliedWaiver{}
	for _, w := range ws {
		aw := reports.AppliedWaiver{RuleID: w.Rule, Host: w.Host, Resource: w.Resource, Justification: w.Justification, Expires: w.ExpiresAt().UTC()}
		if _, _, ok := rep.RuleByID(strings.ToUpper(w.Rule)); !ok {
			warn(fmt.Sprintf("waiver for %s matches no rule in this run", w.Rule))
		}
		if now.After(w.ExpiresAt()) {
			aw.Expired = true
			warn(fmt.Sprintf("waiver for %s (%s) expired on %s: it no longer waives anything", w.Rule, w.Justification, w.ExpiresAt().Format("2006-01-02")))
			out = append(out, aw)
			continue
		}
		for i := range rep.Results {
			res := &rep.Results[i]
			if res.Status != reports.StatusFail || !w.Matches(res.RuleID, host, res.Resource) {
				continue
			}
			res.Status = reports.StatusWaived
			res.Waiver = &reports.WaiverRef{Justification: w.Justification, Expires: w.ExpiresAt().UTC()}
			aw.Matched++
		}
		out = append(out, aw)
	}
	return out
}

func newRunID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ruleReads reports whether any expression of r mentions name.
func ruleReads(r rules.Rule, name string) bool {
	exprs := []string{r.Applies, r.ForEach, r.Check, r.Message, r.Location.Path, r.Location.Line, r.Remediation}
	for _, e := range r.Evidence {
		exprs = append(exprs, e)
	}
	return slices.ContainsFunc(exprs, func(e string) bool { return strings.Contains(e, name) })
}
