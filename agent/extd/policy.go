package extd

import (
	"fmt"

	"github.com/arcagent/arcagent/agent/config"
)

// Verdict is local policy's answer for installing or updating one
// extension. Removal is always allowed and never asks.
type Verdict struct {
	Allowed bool
	// Setting is the local setting that decided a refusal, Reason what it
	// says, Command the command that would change it.
	Setting string
	Reason  string
	Command string
}

// Message is the refusal as reported to the control plane and printed.
func (v Verdict) Message() string {
	if v.Allowed {
		return ""
	}
	return fmt.Sprintf("refused by the machine's local security controls: %s; to change it, run on the machine: %s", v.Reason, v.Command)
}

// Decide applies localconfig.json to installing or updating
// publisher/type: extensions.enabled, then the blocklist (which beats the
// allowlist), then the allowlist (Allow/None, monitor mode's built-in
// list). The decision itself is config.Settings.ExtensionDecision, the same
// one the audit reports.
func Decide(s *config.Settings, publisher, typ string) Verdict {
	name := config.ExtensionName(publisher, typ)
	d := s.ExtensionDecision(name)
	if d.Allowed {
		return Verdict{Allowed: true, Reason: d.Reason}
	}
	v := Verdict{Reason: d.Reason}
	switch {
	case !s.EffectiveBool(config.ExtEnabled):
		v.Setting = config.ExtEnabled
		v.Command = "arcagent config set " + config.ExtEnabled + " true"
	case config.ContainsFold(s.EffectiveList(config.ExtBlocklist), name):
		v.Setting = config.ExtBlocklist
		v.Command = "arcagent config set " + config.ExtBlocklist + " --remove " + name
	case s.Mode() == config.ModeMonitor:
		v.Setting = config.ConfigMode
		v.Command = "arcagent config set " + config.ConfigMode + " " + config.ModeFull
	case config.ContainsFold(s.EffectiveList(config.ExtAllowlist), config.AllowNone):
		v.Setting = config.ExtAllowlist
		v.Command = "arcagent config set " + config.ExtAllowlist + " " + name
	default:
		v.Setting = config.ExtAllowlist
		v.Command = "arcagent config set " + config.ExtAllowlist + " --add " + name
	}
	return v
}
