package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/arcagent/arcagent/internal/suggest"

	"github.com/arcagent/arcagent/rules"
)

// Waiver accepts a rule's failures for a while, with a reason.
type Waiver struct {
	Rule          string `yaml:"rule"`
	Host          string `yaml:"host"`     // optional; glob, case-insensitive
	Resource      string `yaml:"resource"` // optional; glob
	Justification string `yaml:"justification"`
	Expires       string `yaml:"expires"` // YYYY-MM-DD (end of that day, UTC) or RFC 3339

	expires time.Time
	line    int
}

// WaiverFile is a waivers YAML document.
type WaiverFile struct {
	Waivers []Waiver `yaml:"waivers"`
}

// WaiverError says what is wrong in a waiver file and where.
type WaiverError struct {
	File string
	Line int
	Err  error
}

func (e *WaiverError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *WaiverError) Unwrap() error { return e.Err }

const maxWaiverFile = 4 << 20

// LoadWaivers reads a waiver file.
func LoadWaivers(file string) ([]Waiver, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &WaiverError{File: file, Err: fmt.Errorf("cannot read the waiver file: %w", err)}
	}
	return ParseWaivers(file, data)
}

// ParseWaivers decodes and validates waivers: every waiver names a rule,
// gives a justification and an expiry; unknown fields are refused.
func ParseWaivers(file string, data []byte) ([]Waiver, error) {
	if len(data) > maxWaiverFile {
		return nil, &WaiverError{File: file, Err: fmt.Errorf("larger than %d bytes", maxWaiverFile)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &WaiverError{File: file, Err: fmt.Errorf("not valid YAML: %w", err)}
	}
	if err := checkWaiverKeys(&root); err != nil {
		err.File = file
		return nil, err
	}
	var wf WaiverFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&wf); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &WaiverError{File: file, Err: errors.New("empty: the file needs a top-level `waivers:` list")}
		}
		return nil, &WaiverError{File: file, Err: fmt.Errorf("not a waiver file: %w", err)}
	}
	var lines []int
	if n := rules.TopKey(&root, "waivers"); n != nil {
		for _, c := range n.Content {
			lines = append(lines, c.Line)
		}
	}
	for i := range wf.Waivers {
		w := &wf.Waivers[i]
		if i < len(lines) {
			w.line = lines[i]
		}
		var problems []string
		if strings.TrimSpace(w.Rule) == "" {
			problems = append(problems, "rule is required")
		}
		if strings.TrimSpace(w.Justification) == "" {
			problems = append(problems, "justification is required: say why the risk is accepted")
		}
		if w.Expires == "" {
			problems = append(problems, "expires is required (YYYY-MM-DD): waivers must end")
		} else if t, err := parseExpiry(w.Expires); err != nil {
			problems = append(problems, fmt.Sprintf("expires %q is not a date (YYYY-MM-DD) or RFC 3339 time", w.Expires))
		} else {
			w.expires = t
		}
		for _, g := range []string{w.Host, w.Resource} {
			if _, err := path.Match(g, ""); err != nil {
				problems = append(problems, fmt.Sprintf("pattern %q is malformed", g))
			}
		}
		if len(problems) > 0 {
			return nil, &WaiverError{File: file, Line: w.line, Err: fmt.Errorf("waiver %d (%s): %s", i+1, w.Rule, strings.Join(problems, "; "))}
		}
	}
	return wf.Waivers, nil
}

// waiverKeys are the keys a waiver may have, in the order they are listed.
var waiverKeys = []string{"rule", "host", "resource", "justification", "expires"}

// checkWaiverKeys refuses unknown keys, at the top level and in each
// waiver, naming the key and its line (with the key a near miss meant)
// rather than the Go type the decoder would name.
func checkWaiverKeys(root *yaml.Node) *WaiverError {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil // the decoder says what is wrong with the shape
	}
	unknown := func(k *yaml.Node, known []string) *WaiverError {
		return &WaiverError{Line: k.Line, Err: fmt.Errorf("unknown key %q%s (a waiver has %s)", k.Value, suggest.DidYouMean(k.Value, known), strings.Join(known, ", "))}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value != "waivers" {
			e := unknown(k, []string{"waivers"})
			e.Err = fmt.Errorf("unknown key %q%s: the file has one top-level key, waivers", k.Value, suggest.DidYouMean(k.Value, []string{"waivers"}))
			return e
		}
		if v.Kind != yaml.SequenceNode {
			continue
		}
		for _, w := range v.Content {
			if w.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j+1 < len(w.Content); j += 2 {
				if key := w.Content[j]; !slices.Contains(waiverKeys, key.Value) {
					return unknown(key, waiverKeys)
				}
			}
		}
	}
	return nil
}

func parseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.Add(24*time.Hour - time.Nanosecond), nil
	}
	return time.Parse(time.RFC3339, s)
}

// ExpiresAt is the end of the waiver's validity.
func (w Waiver) ExpiresAt() time.Time { return w.expires }

// Matches reports whether the waiver covers a result of rule on host for
// resource (expiry not considered).
func (w Waiver) Matches(rule, host, resource string) bool {
	if !strings.EqualFold(w.Rule, rule) {
		return false
	}
	if w.Host != "" {
		if ok, _ := path.Match(strings.ToLower(w.Host), strings.ToLower(host)); !ok {
			return false
		}
	}
	if w.Resource != "" {
		if ok, _ := path.Match(w.Resource, resource); !ok {
			return false
		}
	}
	return true
}
