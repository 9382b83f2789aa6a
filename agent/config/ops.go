package config

import (
	"fmt"

	"github.com/arcagent/arcagent/errcode"
)

// Op is a change to one property.
type Op string

// The operations of `arcagent config`.
const (
	OpSet    Op = "set"    // replace the value (lists are replaced whole)
	OpAdd    Op = "add"    // append list items
	OpRemove Op = "remove" // remove list items
	OpClear  Op = "clear"  // back to the default
)

// Change is one requested change.
type Change struct {
	Op       Op
	Property string
	Value    string // raw value as typed; unused for OpClear
}

// lockedInMonitor are the properties monitor mode refuses to change.
func lockedInMonitor(name string) bool { return name == ExtAllowlist || name == ExtBlocklist }

// Apply validates c against s and applies it. On error s is unchanged. It
// returns warnings for the person who asked for the change.
func (s *Settings) Apply(c Change) ([]string, error) {
	p, err := Find(c.Property)
	if err != nil {
		return nil, err
	}
	if (c.Op == OpAdd || c.Op == OpRemove) && !p.Type.IsList() {
		return nil, errcode.New(errcode.NotAList, "--%s works only on list properties; %s is a %s (allowed: %s)", c.Op, p.Name, p.Type, p.AllowedText())
	}
	if lockedInMonitor(p.Name) && s.Mode() == ModeMonitor {
		return nil, errcode.New(errcode.MonitorModeLock, "%s cannot be changed while config.mode is monitor", p.Name)
	}
	var warnings []string
	if c.Op == OpClear {
		s.clear(p.Name)
		return s.modeWarnings(p.Name), nil
	}
	v, w, err := ParseValue(p, c.Value)
	warnings = append(warnings, w...)
	if err != nil {
		return warnings, err
	}
	switch c.Op {
	case OpSet:
		// v replaces the value whole, lists included.
	case OpAdd:
		v, err = AddItems(p, s.List(p.Name), v.([]string))
		if err != nil {
			return warnings, err
		}
	case OpRemove:
		var missing []string
		v, missing = RemoveItems(s.List(p.Name), v.([]string))
		for _, m := range missing {
			warnings = append(warnings, fmt.Sprintf("%s was not in %s", m, p.Name))
		}
	default:
		return warnings, fmt.Errorf("unknown operation %q", c.Op)
	}
	s.set(p.Name, v)
	if p.Name == ProxyURL && s.ProxyHasCredentials() {
		warnings = append(warnings, "proxy.url contains credentials; localconfig.json is readable by group himds and audit reports this as a finding")
	}
	return append(warnings, s.modeWarnings(p.Name)...), nil
}

func (s *Settings) modeWarnings(name string) []string {
	if s.Mode() != ModeMonitor {
		return nil
	}
	if _, why := s.Effective(name); why != "" {
		return []string{fmt.Sprintf("%s is saved but has no effect: %s", name, why)}
	}
	return nil
}
