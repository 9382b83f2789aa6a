// Package rules holds arcagent's audit rule packs (YAML documents with CEL
// expressions, the built-in ones embedded from packs/) and their loader and
// compiler. A rule file that does not parse or compile is refused with the
// file, the rule and the position.
package rules

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/arcagent/arcagent/reports"
)

//go:embed packs/*.yaml
var builtin embed.FS

// Rule is one rule as written in a pack (README, "Rules").
type Rule struct {
	ID       string           `yaml:"id" json:"id"`
	Title    string           `yaml:"title" json:"title"`
	Severity reports.Severity `yaml:"severity" json:"severity"`
	Profiles []string         `yaml:"profiles" json:"profiles"`
	Applies  string           `yaml:"applies" json:"applies,omitempty"`
	// NotApplicable is the sentence a not-applicable result gives when
	// `applies` is false (and no facts section explains why) or `for_each`
	// finds nothing, e.g. "no extension is installed".
	NotApplicable string            `yaml:"not_applicable" json:"not_applicable,omitempty"`
	ForEach       string            `yaml:"for_each" json:"for_each,omitempty"`
	Check         string            `yaml:"check" json:"check"`
	Message       string            `yaml:"message" json:"message"`
	Evidence      map[string]string `yaml:"evidence" json:"evidence,omitempty"`
	Location      Location          `yaml:"location" json:"location"`
	Rationale     string            `yaml:"rationale" json:"rationale"`
	Remediation   string            `yaml:"remediation" json:"remediation"`
	References    []string          `yaml:"references" json:"references,omitempty"`

	// Source is the file the rule came from ("builtin:tier0.yaml" for packs).
	Source string `yaml:"-" json:"source"`
	// lines and cols hold the YAML position of each field's value, for
	// error positions; blocks marks values written as block scalars.
	lines  map[string]int
	cols   map[string]int
	blocks map[string]bool
	line   int
}

// Location says where a finding points: a production path (a template with
// ${expr} parts) and the line (a CEL int expression; 1 when unset).
type Location struct {
	Path string `yaml:"path" json:"path"`
	Line string `yaml:"line" json:"line,omitempty"`
}

// File is a rule file: a list of rules.
type File struct {
	Rules []Rule `yaml:"rules"`
}

// LoadError says which file, rule and position is wrong.
type LoadError struct {
	File  string
	Rule  string
	Field string
	Line  int
	Col   int
	Err   error
}

func (e *LoadError) Error() string {
	pos := e.File
	if e.Line > 0 {
		pos = fmt.Sprintf("%s:%d", pos, e.Line)
		if e.Col > 0 {
			pos = fmt.Sprintf("%s:%d", pos, e.Col)
		}
	}
	where := ""
	if e.Rule != "" {
		where = " rule " + e.Rule
	}
	if e.Field != "" {
		where += " " + e.Field
	}
	if where == "" {
		return fmt.Sprintf("%s: %v", pos, e.Err)
	}
	return fmt.Sprintf("%s:%s: %v", pos, where, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

var (
	yamlLineRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`line (\d+):`) })
	idRE       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$`) })
	profileRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9-]*$`) })
)

// maxRuleFile bounds a rule file's size.
const maxRuleFile = 4 << 20

// Parse decodes and validates a rule file (not yet compiled). Unknown fields
// are refused so that a typo never silently disables a check.
func Parse(name string, data []byte) ([]Rule, error) {
	if len(data) > maxRuleFile {
		return nil, &LoadError{File: name, Err: fmt.Errorf("file is larger than %d bytes", maxRuleFile)}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &LoadError{File: name, Err: errors.New("the file is empty: it needs a top-level `rules:` list")}
		}
		return nil, &LoadError{File: name, Err: fmt.Errorf("not valid YAML: %w", err)}
	}
	var f File
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&f); err != nil {
		le := &LoadError{File: name, Err: fmt.Errorf("not a rule file: %w", err)}
		if m := yamlLineRE().FindStringSubmatch(err.Error()); m != nil {
			le.Line, _ = strconv.Atoi(m[1])
		}
		return nil, le
	}
	rulesNode := TopKey(&root, "rules")
	if rulesNode == nil || len(f.Rules) == 0 {
		return nil, &LoadError{File: name, Err: errors.New("no rules: the file needs a top-level `rules:` list")}
	}
	seen := map[string]bool{}
	for i := range f.Rules {
		r := &f.Rules[i]
		r.Source = name
		r.lines, r.cols, r.blocks = map[string]int{}, map[string]int{}, map[string]bool{}
		if i < len(rulesNode.Content) {
			n := rulesNode.Content[i]
			r.line = n.Line
			for j := 0; j+1 < len(n.Content); j += 2 {
				k, v := n.Content[j].Value, n.Content[j+1]
				r.lines[k], r.cols[k] = v.Line, v.Column
				switch v.Style {
				case yaml.LiteralStyle, yaml.FoldedStyle:
					r.blocks[k] = true
				case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
					r.cols[k]++
				}
			}
		}
		if err := r.validate(); err != nil {
			return nil, &LoadError{File: name, Rule: r.ID, Line: r.line, Err: err}
		}
		if seen[r.ID] {
			return nil, &LoadError{File: name, Rule: r.ID, Line: r.line, Err: errors.New("duplicate rule id")}
		}
		seen[r.ID] = true
	}
	return f.Rules, nil
}

// Build validates rules made in Go rather than read from a file (the
// audit's host rules, generated from guest configuration's baseline) with
// the checks Parse applies to a file's; positions are unknown.
func Build(source string, rs []Rule) ([]Rule, error) {
	seen := map[string]bool{}
	out := make([]Rule, len(rs))
	for i, r := range rs {
		r.Source = source
		r.lines, r.cols, r.blocks = map[string]int{}, map[string]int{}, map[string]bool{}
		if err := r.validate(); err != nil {
			return nil, &LoadError{File: source, Rule: r.ID, Err: err}
		}
		if seen[r.ID] {
			return nil, &LoadError{File: source, Rule: r.ID, Err: errors.New("duplicate rule id")}
		}
		seen[r.ID] = true
		out[i] = r
	}
	return out, nil
}

// TopKey returns the value node of key in a YAML document's top-level
// mapping, or nil. Loaders use it to find the line of each list item.
func TopKey(root *yaml.Node, key string) *yaml.Node {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func (r *Rule) validate() error {
	var problems []string
	if !idRE().MatchString(r.ID) {
		problems = append(problems, fmt.Sprintf("id %q must look like ARC-T0-001 (upper case, dash-separated)", r.ID))
	}
	if strings.TrimSpace(r.Title) == "" {
		problems = append(problems, "title is required")
	}
	if r.Severity.Rank() < 0 {
		problems = append(problems, fmt.Sprintf("severity %q must be one of critical, high, medium, low, info", r.Severity))
	}
	if len(r.Profiles) == 0 {
		problems = append(problems, "profiles must name at least one profile")
	}
	for _, p := range r.Profiles {
		if !profileRE().MatchString(p) || p == "all" {
			problems = append(problems, fmt.Sprintf("profile %q must be lower case letters, digits and dashes (and not \"all\")", p))
		}
	}
	if strings.TrimSpace(r.Check) == "" {
		problems = append(problems, "check is required")
	}
	if strings.TrimSpace(r.Message) == "" {
		problems = append(problems, "message is required")
	}
	if strings.TrimSpace(r.Remediation) == "" {
		problems = append(problems, "remediation is required: give the exact command that fixes a failure")
	}
	if strings.TrimSpace(r.Rationale) == "" {
		problems = append(problems, "rationale is required")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// Builtin returns the rules of the embedded packs.
func Builtin() ([]Rule, error) {
	ents, err := fs.Glob(builtin, "packs/*.yaml")
	if err != nil {
		return nil, err
	}
	slices.Sort(ents)
	var out []Rule
	for _, e := range ents {
		data, err := builtin.ReadFile(e)
		if err != nil {
			return nil, err
		}
		rs, err := Parse("builtin:"+filepath.Base(e), data)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// LoadDir reads every *.yaml and *.yml file in dir (not recursive).
func LoadDir(dir string) ([]Rule, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, &LoadError{File: dir, Err: fmt.Errorf("cannot read the rules directory: %w", err)}
	}
	var out []Rule
	n := 0
	for _, e := range ents {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, &LoadError{File: p, Err: err}
		}
		rs, err := Parse(p, data)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
		n++
	}
	if n == 0 {
		return nil, &LoadError{File: dir, Err: errors.New("no *.yaml rule files in the directory")}
	}
	return out, nil
}

// Merge joins rule sets; a later rule with the same id replaces an earlier
// one (a user's rule overrides a built-in).
func Merge(sets ...[]Rule) []Rule {
	idx := map[string]int{}
	var out []Rule
	for _, set := range sets {
		for _, r := range set {
			if i, ok := idx[r.ID]; ok {
				out[i] = r
				continue
			}
			idx[r.ID] = len(out)
			out = append(out, r)
		}
	}
	return out
}

// Profiles returns every profile named by rules, sorted.
func Profiles(rs []Rule) []string {
	set := map[string]bool{}
	for _, r := range rs {
		for _, p := range r.Profiles {
			set[p] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
