package audit

import (
	"context"

	"github.com/arcagent/arcagent/agent/guestconfig"
)

// HostConfigFacts is the built-in Linux security baseline of guest
// configuration evaluated in Audit mode against the target (the `host`
// profile): one result per baseline resource.
type HostConfigFacts struct {
	Section
	Document string             `json:"document,omitempty"`
	Version  string             `json:"version,omitempty"`
	Results  []HostConfigResult `json:"results"`
}

// HostConfigResult is one baseline resource's verdict. A resource that
// could not be evaluated carries the reason in Error (an error result);
// one whose onlyIfExists path is missing is NotApplicable.
type HostConfigResult struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Status    string            `json:"status"` // the guestconfig compliance value
	Compliant bool              `json:"compliant"`
	Reason    string            `json:"reason,omitempty"`
	Path      string            `json:"path,omitempty"`
	Evidence  map[string]string `json:"evidence"`
	Error     string            `json:"error,omitempty"`
}

// collectHostConfig evaluates the baseline when a host rule is selected.
func (c *collector) collectHostConfig(ctx context.Context) {
	f := &c.facts.HostConfig
	f.Results = []HostConfigResult{}
	if !c.opts.HostConfig {
		f.Reason = "the host profile was not selected"
		return
	}
	doc, err := guestconfig.Baseline()
	if err != nil {
		f.Reason, f.Error = "the built-in baseline does not parse: "+err.Error(), true
		return
	}
	comp, err := guestconfig.Compile(doc, nil, guestconfig.CompileContext{})
	if err != nil {
		f.Reason, f.Error = "the built-in baseline does not compile: "+err.Error(), true
		return
	}
	env, err := guestconfig.NewEnv(c.l.Root(), guestconfig.EnvOptions{})
	if err != nil {
		f.Reason, f.Error = err.Error(), true
		c.errorf("host_config", "", "%v", err)
		return
	}
	defer env.Close()
	rep := guestconfig.Evaluate(ctx, env, comp, guestconfig.EvalOptions{Mode: guestconfig.Audit})
	f.Available, f.Document, f.Version = true, rep.Name, rep.Version
	for i, r := range rep.Resources {
		hr := HostConfigResult{ID: r.ID, Type: r.Type, Status: r.Compliance, Compliant: r.Compliance == guestconfig.Compliant, Reason: r.Reason, Evidence: map[string]string(r.Evidence)}
		if hr.Evidence == nil {
			hr.Evidence = map[string]string{}
		}
		hr.Path = resourcePath(comp.Resources[i].Entry, r.Evidence)
		switch r.Compliance {
		case guestconfig.Error, guestconfig.Skipped:
			hr.Error = r.Reason
		}
		f.Results = append(f.Results, hr)
	}
}

// resourcePath is the file a finding points at: the evidence's path, or
// the onlyIfExists path.
func resourcePath(e *guestconfig.Entry, ev guestconfig.Evidence) string {
	if p := ev["path"]; p != "" {
		return p
	}
	return e.OnlyIfExists
}
