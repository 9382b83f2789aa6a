package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/strictjson"
)

// Settings is the content of localconfig.json: the configured value of each
// property that is set, plus any keys arcagent does not know, which are kept
// verbatim so that a newer or foreign writer loses nothing.
type Settings struct {
	values  map[string]any
	unknown map[string]json.RawMessage
}

// NewSettings returns settings with nothing configured (all defaults).
func NewSettings() *Settings {
	return &Settings{values: map[string]any{}, unknown: map[string]json.RawMessage{}}
}

// ParseFile decodes localconfig.json content. path is used in messages
// only. Unknown keys are kept and reported as warnings; a value that is not
// valid for its property makes the whole file invalid (fail closed: a local
// security control is never silently dropped or reset).
func ParseFile(path string, data []byte) (*Settings, []string, error) {
	s := NewSettings()
	if len(bytes.TrimSpace(data)) == 0 {
		return s, nil, nil
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, nil, errcode.Wrap(errcode.ConfigCorrupt, err, "%s is not a valid JSON object", path)
	}
	if dec.More() {
		return nil, nil, errcode.New(errcode.ConfigCorrupt, "%s has data after its JSON object", path)
	}
	if raw == nil {
		return nil, nil, errcode.New(errcode.ConfigCorrupt, "%s holds null instead of a JSON object", path)
	}
	// encoding/json keeps the last of two equal keys without a word: a
	// file that sets a control twice is refused instead, whichever wins.
	if err := strictjson.Check(data, nil); err != nil {
		var se *strictjson.Error
		if errors.As(err, &se) {
			where := ""
			if se.Path != "" {
				where = " in " + se.Path
			}
			return nil, nil, errcode.Wrap(errcode.ConfigCorrupt, err, "%s has the key %q twice%s: edit the file to keep one, or run 'arcagent config clear --all'", path, se.Key, where)
		}
		return nil, nil, errcode.Wrap(errcode.ConfigCorrupt, err, "%s is not a valid JSON object", path)
	}
	var warnings []string
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p, ok := Lookup(k)
		if !ok {
			s.unknown[k] = raw[k]
			warnings = append(warnings, fmt.Sprintf("%s: unknown key %q kept as it is", path, k))
			continue
		}
		if _, dup := s.values[p.Name]; dup {
			return nil, nil, errcode.New(errcode.ConfigCorrupt, "%s sets %s twice (keys differ only in case)", path, p.Name)
		}
		v, err := decodeFileValue(p, raw[k])
		if err != nil {
			return nil, nil, errcode.Wrap(errcode.ConfigCorrupt, err, "%s: bad value for %s", path, p.Name)
		}
		s.values[p.Name] = v
	}
	return s, warnings, nil
}

// decodeFileValue accepts the value's native JSON type, or the same string
// the CLI accepts (hand-edited files), and validates it.
func decodeFileValue(p Property, raw json.RawMessage) (any, error) {
	var x any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	switch v := x.(type) {
	case string:
		if p.Type.IsList() || p.Type == TypeURL || p.Type == TypeEnum || p.Type == TypeBool || p.Type == TypeInt {
			val, _, err := ParseValue(p, v)
			return val, err
		}
	case bool:
		if p.Type == TypeBool {
			return v, nil
		}
	case json.Number:
		if p.Type == TypeInt {
			return parseScalar(p, v.String())
		}
	case []any:
		if p.Type.IsList() {
			items := make([]string, 0, len(v))
			for _, it := range v {
				switch e := it.(type) {
				case string:
					items = append(items, strings.TrimSpace(e))
				case json.Number:
					if p.Type != TypePortList {
						return nil, fmt.Errorf("list item %s is not a string", e)
					}
					items = append(items, e.String())
				default:
					return nil, fmt.Errorf("list item %v is not a string", it)
				}
			}
			return normalizeList(p, items)
		}
	}
	return nil, fmt.Errorf("a %s is expected (allowed: %s)", p.Type, p.AllowedText())
}

// Marshal encodes the settings as localconfig.json: one flat key per
// property, sorted, with native JSON types, unknown keys kept.
func (s *Settings) Marshal() ([]byte, error) {
	out := map[string]any{}
	for k, v := range s.unknown {
		out[k] = v
	}
	for k, v := range s.values {
		out[k] = v
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode settings: %w", err)
	}
	return append(b, '\n'), nil
}

// Configured returns the configured value of name and whether it is set.
func (s *Settings) Configured(name string) (any, bool) {
	v, ok := s.values[name]
	return v, ok
}

// Value returns the configured value of name, or its default.
func (s *Settings) Value(name string) any {
	if v, ok := s.values[name]; ok {
		return v
	}
	p, _ := Lookup(name)
	return p.Default
}

// Bool, Int, String and List return typed values (configured or default).
func (s *Settings) Bool(name string) bool     { b, _ := s.Value(name).(bool); return b }
func (s *Settings) Int(name string) int       { n, _ := s.Value(name).(int); return n }
func (s *Settings) String(name string) string { v, _ := s.Value(name).(string); return v }
func (s *Settings) List(name string) []string {
	l, _ := s.Value(name).([]string)
	return append([]string{}, l...)
}
func (s *Settings) set(name string, v any) { s.values[name] = v }
func (s *Settings) clear(name string)      { delete(s.values, name) }
func (s *Settings) UnknownKeys() []string  { return sortedKeys(s.unknown) }
func (s *Settings) Mode() string           { return s.String(ConfigMode) }
func (s *Settings) IsSet(name string) bool { _, ok := s.values[name]; return ok }
func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	slices.Sort(k)
	return k
}

// ProxyHasCredentials reports whether proxy.url carries a user or password.
func (s *Settings) ProxyHasCredentials() bool {
	u, err := url.Parse(s.String(ProxyURL))
	return err == nil && u.User != nil
}
