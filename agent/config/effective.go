package config

import "strings"

// Setting is one property's configured and effective value.
type Setting struct {
	Name       string `json:"Key"`
	Configured any    `json:"Value"`
	IsSet      bool   `json:"-"`
	Effective  any    `json:"EffectiveValue"`
	// Reason explains why the effective value differs from the configured one.
	Reason string `json:"Reason,omitempty"`
}

// Effective returns the value the services act on: the configured value,
// overridden by monitor mode (built-in monitoring allowlist, remote access
// and guest configuration off). The user's own lists are never changed.
func (s *Settings) Effective(name string) (any, string) {
	v := s.Value(name)
	if s.Mode() != ModeMonitor {
		return v, ""
	}
	switch name {
	case ExtAllowlist:
		return append([]string{}, MonitorAllowlist...), "monitor mode: built-in monitoring allowlist"
	case IncomingEnabled:
		return false, "monitor mode: remote access is off"
	case GCEnabled:
		return false, "monitor mode: guest configuration is off"
	}
	return v, ""
}

// All returns every property with its configured and effective value.
func (s *Settings) All() []Setting {
	var out []Setting
	for _, p := range Properties() {
		eff, why := s.Effective(p.Name)
		out = append(out, Setting{Name: p.Name, Configured: s.Value(p.Name), IsSet: s.IsSet(p.Name), Effective: eff, Reason: why})
	}
	return out
}

// EffectiveBool and EffectiveList are typed forms of Effective.
func (s *Settings) EffectiveBool(name string) bool {
	v, _ := s.Effective(name)
	b, _ := v.(bool)
	return b
}

// EffectiveList returns the effective list value of name.
func (s *Settings) EffectiveList(name string) []string {
	v, _ := s.Effective(name)
	l, _ := v.([]string)
	return l
}

// Decision is the local policy's verdict on installing or updating an
// extension.
type Decision struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

// ExtensionDecision applies the local lists to an extension named
// "Publisher/Type" (also accepts "Publisher.Type" split at the last dot is
// not attempted: callers pass the canonical form). Installing or updating
// is allowed only if the name is not blocked and the allowlist is empty or
// lists it; removal is always allowed and is not decided here.
func (s *Settings) ExtensionDecision(name string) Decision {
	if !s.EffectiveBool(ExtEnabled) {
		return Decision{false, "the extension manager is turned off (extensions.enabled=false)"}
	}
	if ContainsFold(s.EffectiveList(ExtBlocklist), name) {
		return Decision{false, "blocked by extensions.blocklist"}
	}
	allow := s.EffectiveList(ExtAllowlist)
	mode := ""
	if s.Mode() == ModeMonitor {
		mode = " (monitor mode)"
	}
	switch {
	case len(allow) == 0:
		return Decision{true, "no allowlist is set: every extension not blocked is allowed"}
	case ContainsFold(allow, AllowNone):
		return Decision{false, "extensions.allowlist is Allow/None: nothing may install"}
	case ContainsFold(allow, name):
		return Decision{true, "listed in extensions.allowlist" + mode}
	}
	return Decision{false, "not listed in extensions.allowlist" + mode}
}

// ExtensionName returns the "Publisher/Type" form of a publisher and type.
func ExtensionName(publisher, typ string) string {
	return strings.TrimSpace(publisher) + "/" + strings.TrimSpace(typ)
}
