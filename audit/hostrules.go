package audit

import (
	"fmt"
	"strings"

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
	// The rules need only the parameters' defaults (for the remediation
	// texts), not the compiled resources: the collector compiles them when
	// a host rule is selected.
	values, err := doc.Values(nil)
	if err != nil {
		return nil, err
	}
	var rs []rules.Rule
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
			Rationale:     e.Rationale, Remediation: guestconfig.Expand(e.Remediation, values), References: e.References,
		}
		r.Severity = reports.Severity(sev) // Parse below validates it
		rs = append(rs, r)
	}
	// Validated as a pack's rules are.
	return rules.Build(hostSource, rs)
}
