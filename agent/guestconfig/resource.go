package guestconfig

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Evidence is what a resource saw on the target, as short named values
// ("mode": "0644", "owner": "root"). It is reported with every outcome.
type Evidence map[string]string

// Observation is the outcome of a test: in the desired state or not, why
// not, and the evidence.
type Observation struct {
	Compliant bool
	// Reason says, when not compliant, what differs from the desired state
	// ("mode is 0644, want at most 0640").
	Reason   string
	Evidence Evidence
}

// Resource is one typed resource of a document, decoded with its
// parameters applied. Get reads the current state, Test compares it with
// the desired one, Set brings the target to the desired state. Set is only
// called after a Test that was not compliant; it must be atomic for files
// (Env.WriteFile) so a failing Set leaves the previous content.
type Resource interface {
	Get(ctx context.Context, env *Env) (Evidence, error)
	Test(ctx context.Context, env *Env) (Observation, error)
	Set(ctx context.Context, env *Env) error
}

// Decoder decodes the body of one resource type. It validates every field
// (paths absolute and clean, modes octal, names well formed) and returns a
// Resource, or an error worded for the document's author.
type Decoder func(body *yaml.Node, c CompileContext) (Resource, error)

// CompileContext is what a decoder may need to know about the document.
type CompileContext struct {
	// Signed is true when the document came from a package whose signature
	// verified against the trust store: exec resources need it.
	Signed bool
	// Files are the package's other files by path inside the package
	// ("scripts/check.sh"), for resources that refer to them.
	Files map[string][]byte
	// Params are the resolved parameter values (set by Compile): exec
	// resources hand them to their scripts as environment variables.
	Params map[string]string
}

var (
	regMu    sync.RWMutex
	registry = map[string]Decoder{}
)

// Register adds a resource type. It is called from init functions; a type
// registered twice panics.
func Register(typ string, d Decoder) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[typ]; dup {
		panic("guestconfig: resource type " + typ + " registered twice")
	}
	registry[typ] = d
}

func lookupType(typ string) (Decoder, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	d, ok := registry[typ]
	return d, ok
}

// Types lists the registered resource types, sorted.
func Types() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(registry))
	for t := range registry {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Compiled is a document ready to evaluate: its entries with decoded
// resources, in order.
type Compiled struct {
	Doc       *Document
	Values    map[string]string
	Resources []CompiledResource
	Signed    bool
}

// CompiledResource is one entry and its decoded resource.
type CompiledResource struct {
	Entry    *Entry
	Resource Resource
}

// Compile resolves the parameters and decodes every resource body.
func Compile(d *Document, params map[string]string, c CompileContext) (*Compiled, error) {
	values, err := d.Values(params)
	if err != nil {
		return nil, err
	}
	out := &Compiled{Doc: d, Values: values, Signed: c.Signed}
	for i := range d.Resources {
		e := &d.Resources[i]
		dec, ok := lookupType(e.Type)
		if !ok {
			return nil, &DocumentError{File: d.Name, Line: e.Line, ID: e.ID, Err: fmt.Errorf("unknown resource type %q", e.Type)}
		}
		body := &e.Body
		if e.Type != "exec" { // see Parse: exec bodies take no ${parameter}
			body = substitute(body, values)
		}
		c.Params = values
		r, err := dec(body, c)
		if err != nil {
			return nil, &DocumentError{File: d.Name, Line: e.Body.Line, ID: e.ID, Err: fmt.Errorf("%s: %w", e.Type, err)}
		}
		out.Resources = append(out.Resources, CompiledResource{Entry: e, Resource: r})
	}
	return out, nil
}

// Expand replaces ${name} in s with the compiled parameter values: for
// the texts of an entry (remediation) that are not part of its body.
func (c *Compiled) Expand(s string) string { return Expand(s, c.Values) }

// Expand replaces ${name} in s with values[name]; a name without a value
// is left as it is.
func Expand(s string, values map[string]string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	return paramRefRE().ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := values[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}
