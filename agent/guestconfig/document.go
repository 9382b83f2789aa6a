package guestconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/arcagent/arcagent/errcode"
)

// APIVersion is the apiVersion every configuration document carries.
const APIVersion = "arcagent.dev/guestconfig/v1"

// MaxDocument bounds a configuration document's size.
const MaxDocument = 1 << 20

// maxResources bounds the resources of one document.
const maxResources = 2000

// Document is a parsed configuration document: metadata, declared
// parameters and the resource entries in the order they are evaluated.
type Document struct {
	APIVersion  string      `yaml:"apiVersion" json:"apiVersion"`
	Name        string      `yaml:"name" json:"name"`
	Version     string      `yaml:"version" json:"version"`
	Description string      `yaml:"description,omitempty" json:"description,omitempty"`
	Parameters  []Parameter `yaml:"parameters,omitempty" json:"parameters,omitempty"`
	Resources   []Entry     `yaml:"resources" json:"resources"`
}

// Parameter is a value the assignment may set; ${name} in any string of a
// resource is replaced by it.
type Parameter struct {
	Name        string  `yaml:"name" json:"name"`
	Description string  `yaml:"description,omitempty" json:"description,omitempty"`
	Default     *string `yaml:"default,omitempty" json:"default,omitempty"`
}

// Entry is one resource of a document: what every resource has (id, title,
// rationale, severity, remediation) and exactly one typed body, kept as a
// YAML node until Compile decodes it with the parameters applied.
type Entry struct {
	ID          string   `yaml:"id" json:"id"`
	Title       string   `yaml:"title,omitempty" json:"title,omitempty"`
	Severity    string   `yaml:"severity,omitempty" json:"severity,omitempty"`
	Rationale   string   `yaml:"rationale,omitempty" json:"rationale,omitempty"`
	Remediation string   `yaml:"remediation,omitempty" json:"remediation,omitempty"`
	References  []string `yaml:"references,omitempty" json:"references,omitempty"`
	// OnlyIfExists names a target path without which the resource does not
	// apply (the SSH server's settings on a host without sshd_config): it is
	// then NotApplicable, neither tested nor set.
	OnlyIfExists string `yaml:"onlyIfExists,omitempty" json:"onlyIfExists,omitempty"`
	// Type is the resource type (the key of the typed body).
	Type string    `yaml:"-" json:"type"`
	Body yaml.Node `yaml:"-" json:"-"`
	Line int       `yaml:"-" json:"-"`
}

var (
	idRE       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`) })
	docNameRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`) })
	versionRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{1,9}){0,3}$`) })
	paramRE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`) })
	paramRefRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$\{([^}]*)\}`) })
	severities = map[string]bool{"": true, "critical": true, "high": true, "medium": true, "low": true, "info": true}
	commonKeys = map[string]bool{"id": true, "title": true, "severity": true, "rationale": true, "remediation": true, "references": true, "onlyIfExists": true}
)

// DocumentError is a malformed document, with the line when known.
type DocumentError struct {
	File string
	Line int
	ID   string
	Err  error
}

func (e *DocumentError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.ID != "" {
		fmt.Fprintf(&b, ": resource %s", e.ID)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *DocumentError) Unwrap() error { return e.Err }

// Code is the error code of a malformed document.
func (e *DocumentError) ErrorCode() errcode.Code { return CodeDocument }

// Parse decodes and validates a configuration document. Unknown keys are
// refused, every resource names exactly one registered type, ids are unique
// and every ${parameter} a resource uses is declared. Bodies are checked by
// Compile, which needs the parameter values.
func Parse(name string, data []byte) (*Document, error) {
	derr := func(line int, id string, format string, args ...any) error {
		return &DocumentError{File: name, Line: line, ID: id, Err: fmt.Errorf(format, args...)}
	}
	if len(data) > MaxDocument {
		return nil, derr(0, "", "the document is larger than %d bytes", MaxDocument)
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, derr(0, "", "the document is empty")
		}
		return nil, derr(0, "", "not valid YAML: %v", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, derr(0, "", "the file holds more than one YAML document")
	}
	top := &root
	if top.Kind == yaml.DocumentNode && len(top.Content) == 1 {
		top = top.Content[0]
	}
	if top.Kind != yaml.MappingNode {
		return nil, derr(top.Line, "", "the document must be a mapping with apiVersion, name, version and resources")
	}
	d := &Document{}
	var resNode *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		var err error
		switch k.Value {
		case "apiVersion":
			err = decodeScalar(v, &d.APIVersion)
		case "name":
			err = decodeScalar(v, &d.Name)
		case "version":
			err = decodeScalar(v, &d.Version)
		case "description":
			err = decodeScalar(v, &d.Description)
		case "parameters":
			err = decodeStrict(v, &d.Parameters)
		case "resources":
			resNode = v
		default:
			return nil, derr(k.Line, "", "unknown key %q (known: apiVersion, name, version, description, parameters, resources)", k.Value)
		}
		if err != nil {
			return nil, derr(v.Line, "", "%s: %v", k.Value, err)
		}
	}
	switch {
	case d.APIVersion != APIVersion:
		return nil, derr(top.Line, "", "apiVersion is %q, want %q", d.APIVersion, APIVersion)
	case !docNameRE().MatchString(d.Name):
		return nil, derr(top.Line, "", "name %q: use letters, digits and _ (at most 64): it is the package's type, <Publisher>.<Name>-<Version>.zip", d.Name)
	case !versionRE().MatchString(d.Version):
		return nil, derr(top.Line, "", "version %q: use 1 to 4 dot-separated numbers (1.0.0)", d.Version)
	case resNode == nil || resNode.Kind != yaml.SequenceNode || len(resNode.Content) == 0:
		return nil, derr(top.Line, "", "resources: a non-empty list of resources is required")
	case len(resNode.Content) > maxResources:
		return nil, derr(resNode.Line, "", "at most %d resources", maxResources)
	}
	declared := map[string]bool{}
	for _, p := range d.Parameters {
		if !paramRE().MatchString(p.Name) {
			return nil, derr(0, "", "parameter name %q: use letters, digits and _", p.Name)
		}
		if declared[p.Name] {
			return nil, derr(0, "", "parameter %q declared twice", p.Name)
		}
		declared[p.Name] = true
	}
	seen := map[string]bool{}
	for _, n := range resNode.Content {
		if n.Kind != yaml.MappingNode {
			return nil, derr(n.Line, "", "each resource must be a mapping with id and one typed body")
		}
		e := Entry{Line: n.Line}
		common := &yaml.Node{Kind: yaml.MappingNode}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if commonKeys[k.Value] {
				common.Content = append(common.Content, k, v)
				continue
			}
			if _, ok := lookupType(k.Value); !ok {
				return nil, derr(k.Line, "", "unknown key %q: a resource has id, title, severity, rationale, remediation, references, onlyIfExists and one of %s", k.Value, strings.Join(Types(), ", "))
			}
			if e.Type != "" {
				return nil, derr(k.Line, "", "a resource has exactly one type; this one has %s and %s", e.Type, k.Value)
			}
			if v.Kind != yaml.MappingNode {
				return nil, derr(v.Line, "", "%s: the body must be a mapping", k.Value)
			}
			e.Type, e.Body = k.Value, *v
		}
		if err := decodeStrict(common, &e); err != nil {
			return nil, derr(n.Line, "", "%v", err)
		}
		switch {
		case !idRE().MatchString(e.ID):
			return nil, derr(n.Line, e.ID, "id %q: use lower-case letters, digits, ., _ and - (at most 128)", e.ID)
		case seen[e.ID]:
			return nil, derr(n.Line, e.ID, "duplicate id")
		case e.Type == "":
			return nil, derr(n.Line, e.ID, "no resource type: add one of %s", strings.Join(Types(), ", "))
		case !severities[e.Severity]:
			return nil, derr(n.Line, e.ID, "severity %q: use critical, high, medium, low or info", e.Severity)
		}
		if e.OnlyIfExists != "" {
			if err := CheckPath(e.OnlyIfExists); err != nil {
				return nil, derr(n.Line, e.ID, "onlyIfExists: %v", err)
			}
		}
		seen[e.ID] = true
		var bad error
		walkScalars(&e.Body, func(s *yaml.Node) {
			for _, m := range paramRefRE().FindAllStringSubmatch(s.Value, -1) {
				if e.Type == "exec" {
					// Nothing is substituted in an exec body: a value pasted
					// into a script would be code its publisher never
					// signed. ${VAR} there is the shell's.
					if bad == nil && declared[m[1]] {
						bad = derr(s.Line, e.ID, "${%s}: parameters are not substituted in an exec resource (the value would become code the package's signature does not cover); read the environment variable \"$ARCAGENT_PARAM_%s\" in the script instead", m[1], m[1])
					}
					continue
				}
				if bad == nil && !declared[m[1]] {
					bad = derr(s.Line, e.ID, "${%s} is not a declared parameter", m[1])
				}
			}
		})
		if bad != nil {
			return nil, bad
		}
		d.Resources = append(d.Resources, e)
	}
	return d, nil
}

// Values resolves the parameter values of an assignment against the
// declared parameters: unknown names and missing values without a default
// are errors.
func (d *Document) Values(given map[string]string) (map[string]string, error) {
	out := map[string]string{}
	known := map[string]bool{}
	for _, p := range d.Parameters {
		known[p.Name] = true
		if v, ok := given[p.Name]; ok {
			out[p.Name] = v
		} else if p.Default != nil {
			out[p.Name] = *p.Default
		} else {
			return nil, errcode.New(CodeParameter, "configuration %s needs parameter %q (%s)", d.Name, p.Name, p.Description)
		}
	}
	var unknown []string
	for k := range given {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		names := make([]string, 0, len(d.Parameters))
		for _, p := range d.Parameters {
			names = append(names, p.Name)
		}
		return nil, errcode.New(CodeParameter, "configuration %s has no parameter %s (declared: %s)", d.Name, strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	return out, nil
}

func walkScalars(n *yaml.Node, f func(*yaml.Node)) {
	if n.Kind == yaml.ScalarNode {
		f(n)
	}
	for _, c := range n.Content {
		walkScalars(c, f)
	}
}

// substitute returns a copy of body with ${name} replaced in every scalar.
func substitute(body *yaml.Node, values map[string]string) *yaml.Node {
	c := *body
	c.Content = make([]*yaml.Node, len(body.Content))
	for i, ch := range body.Content {
		c.Content[i] = substitute(ch, values)
	}
	if c.Kind == yaml.ScalarNode && strings.Contains(c.Value, "${") {
		c.Value = paramRefRE().ReplaceAllStringFunc(c.Value, func(m string) string {
			return values[m[2:len(m)-1]]
		})
		// A substituted value is a string whatever it looks like.
		if c.Tag == "" || c.Tag == "!!str" || c.Style == 0 {
			c.Tag = "!!str"
		}
	}
	return &c
}

// decodeStrict decodes a node refusing unknown fields.
func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// DecodeBody decodes a resource body into v, refusing unknown fields: the
// decode function of every resource type uses it.
func DecodeBody(body *yaml.Node, v any) error { return decodeStrict(body, v) }

func decodeScalar(n *yaml.Node, s *string) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("must be a string")
	}
	*s = n.Value
	return nil
}
