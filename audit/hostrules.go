package audit

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/arcagent/arcagent/agent/guestconfig"
	"github.com/arcagent/arcagent/reports"
	"github.com/arcagent/arcagent/rules"
)

// HostProfile is the profile of the rules that judge the host itself
// through the built-in Linux baseline. It is opt-in: an audit without
// --profile runs every other profile; --profile host or --profile all
// runs it.
const HostProfile = "host"

// hostSource names where the host rules come from.
const hostSource = "builtin:linux-baseline.yaml"

// HostRuleID is the audit rule id of a baseline resource id
// ("ssh-root-login" → "ARC-HOST-SSH-ROOT-LOGIN").
func HostRuleID(resourceID string) string {
	return "ARC-HOST-" + strings.ToUpper(strings.NewReplacer(".", "-", "_", "-").Replace(resourceID))
}

// HostRules are the rules of the host profile: one per resource of the
// built-in baseline (guestconfig.Baseline), with its title, severity,
// rationale, remediation and references, judged from facts.host_config,
// so that the audit and gcad's Audit mode give the same verdicts from the
// same document.
func HostRules() ([]rules.Rule, error) {
	doc, err := guestconfig.Baseline()
	if err != nil {
		return nil, err
	}
	comp, err := guestconfig.Compile(doc, nil, guestconfig.CompileContext{})
	if err != nil {
		return nil, err
	}
	var f rules.File
	for _, e := range doc.Resources {
		sev := e.Severity
		if sev == "" {
			sev = "medium"
		}
		na := "the baseline resource " + e.ID + " does not apply to this target"
		if e.OnlyIfExists != "" {
			na = e.OnlyIfExists + " does not exist on this target"
		}
		r := rules.Rule{
			ID: HostRuleID(e.ID), Title: e.Title, Profiles: []string{HostProfile},
			Applies:       "facts.host_config.available",
			NotApplicable: na,
			ForEach:       fmt.Sprintf("facts.host_config.results.filter(r, r.id == %q && r.status != %q)", e.ID, guestconfig.NotApplicable),
			Check:         "item.compliant",
			Message:       "${item.reason}",
			Evidence:      map[string]string{"seen": "item.evidence"},
			Location:      rules.Location{Path: "${item.path}"},
			Rationale:     e.Rationale, Remediation: comp.Expand(e.Remediation), References: e.References,
		}
		r.Severity = reports.Severity(sev) // Parse below validates it
		f.Rules = append(f.Rules, r)
	}
	b, err := yaml.Marshal(f)
	if err != nil {
		return nil, err
	}
	// Through the loader, so the generated rules meet every rule a pack's do.
	return rules.Parse(hostSource, b)
}
