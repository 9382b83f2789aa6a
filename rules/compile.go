package rules

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/arcagent/arcagent/reports"
)

// Compiled is a rule with its CEL programs built.
type Compiled struct {
	Rule
	applies, forEach, check, locLine cel.Program
	message, locPath, remediation    template
	evidenceKeys                     []string
	evidence                         map[string]cel.Program
}

// template is a string with ${expr} parts.
type template struct {
	parts []string      // literal text; len(parts) == len(exprs)+1
	exprs []cel.Program // expressions between the literals
}

// Set is a compiled rule set sharing one CEL environment.
type Set struct {
	Rules []*Compiled
}

// CostLimit bounds the work of one evaluation of one expression, in CEL's
// runtime cost units (roughly one per value visited or built). The built-in
// rules stay far below it on large hosts; a rule over it (a runaway nested
// comprehension) is stopped and becomes an error result naming the rule.
const CostLimit = 1_000_000

// interruptEvery is how many comprehension iterations pass between checks
// of the evaluation's context, so that a cancelled audit stops promptly.
const interruptEvery = 100

// NewEnv returns the CEL environment rules are compiled in: the variables
// `facts` (the Facts document) and `item` (the current for_each element),
// with the standard library and the strings and lists extensions.
func NewEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("facts", cel.DynType),
		cel.Variable("item", cel.DynType),
		cel.CrossTypeNumericComparisons(true),
		ext.Strings(),
		ext.Lists(),
	)
}

// sharedEnv is the one environment every Compile uses: creating it costs
// as much as compiling several rules.
var sharedEnv = sync.OnceValues(NewEnv)

// Compile builds every rule's programs once, in the shared environment.
// The first rule that does not compile is returned as a *LoadError with
// file, rule and position.
func Compile(rs []Rule) (*Set, error) {
	env, err := sharedEnv()
	if err != nil {
		return nil, fmt.Errorf("create the CEL environment: %w", err)
	}
	return CompileIn(env, rs)
}

// CompileIn is Compile in an environment of the caller's (from NewEnv).
// An expression written the same way in several rules (facts.config.available,
// ${item.path}, …) is parsed and checked once: programs are immutable and
// safe to share.
func CompileIn(env *cel.Env, rs []Rule) (*Set, error) {
	set := &Set{}
	cache := map[string]cel.Program{}
	for i := range rs {
		c, err := compileRule(env, rs[i], cache)
		if err != nil {
			return nil, err
		}
		set.Rules = append(set.Rules, c)
	}
	return set, nil
}

// compileRule compiles one rule, taking programs from cache (and adding to
// it) by their source text; a nil cache parses every expression anew.
func compileRule(env *cel.Env, r Rule, cache map[string]cel.Program) (*Compiled, error) {
	c := &Compiled{Rule: r, evidence: map[string]cel.Program{}}
	prog := func(field, src string) (cel.Program, error) {
		if strings.TrimSpace(src) == "" {
			return nil, nil
		}
		if p, ok := cache[src]; ok {
			return p, nil
		}
		ast, iss := env.Compile(src)
		if iss != nil && iss.Err() != nil {
			return nil, r.celError(field, iss.Err())
		}
		p, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize),
			cel.CostLimit(CostLimit), cel.InterruptCheckFrequency(interruptEvery))
		if err != nil {
			return nil, r.celError(field, err)
		}
		if cache != nil {
			cache[src] = p
		}
		return p, nil
	}
	var err error
	if c.applies, err = prog("applies", r.Applies); err != nil {
		return nil, err
	}
	if c.forEach, err = prog("for_each", r.ForEach); err != nil {
		return nil, err
	}
	if c.check, err = prog("check", r.Check); err != nil {
		return nil, err
	}
	if c.locLine, err = prog("location.line", r.Location.Line); err != nil {
		return nil, err
	}
	if c.message, err = compileTemplate(r, "message", r.Message, prog); err != nil {
		return nil, err
	}
	if c.locPath, err = compileTemplate(r, "location.path", r.Location.Path, prog); err != nil {
		return nil, err
	}
	if c.remediation, err = compileTemplate(r, "remediation", r.Remediation, prog); err != nil {
		return nil, err
	}
	for k := range r.Evidence {
		c.evidenceKeys = append(c.evidenceKeys, k)
	}
	slices.Sort(c.evidenceKeys)
	for _, k := range c.evidenceKeys {
		p, err := prog("evidence."+k, r.Evidence[k])
		if err != nil {
			return nil, err
		}
		c.evidence[k] = p
	}
	return c, nil
}

var celPosRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`<input>:(\d+):(\d+)`) })

// templateMark tags a field name whose expression sits inside ${…}: its
// CEL column is relative to the expression, not to the YAML value.
const templateMark = " ${…}"

func (r Rule) celError(field string, err error) error {
	field, inTemplate := strings.CutSuffix(field, templateMark)
	key := strings.SplitN(field, ".", 2)[0]
	line := r.lines[key]
	if line == 0 {
		line = r.line
	}
	col := 0
	if m := celPosRE().FindStringSubmatch(err.Error()); m != nil {
		l, _ := strconv.Atoi(m[1])
		col, _ = strconv.Atoi(m[2])
		switch {
		case r.blocks[key]:
			// A block scalar starts on the line after its indicator.
			line += l
		case l == 1 && r.cols[key] > 0 && !strings.Contains(field, ".") && !inTemplate:
			// A one-line expression: CEL's column is relative to its start.
			col += r.cols[key] - 1
		default:
			line += l - 1
		}
	}
	return &LoadError{File: r.Source, Rule: r.ID, Field: field, Line: line, Col: col, Err: fmt.Errorf("does not compile: %w", err)}
}

// compileTemplate splits "text ${expr} text" into literals and programs.
func compileTemplate(r Rule, field, s string, prog func(string, string) (cel.Program, error)) (template, error) {
	var t template
	rest := s
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			t.parts = append(t.parts, rest)
			return t, nil
		}
		end := matchBrace(rest[i+2:])
		if end < 0 {
			return t, &LoadError{File: r.Source, Rule: r.ID, Field: field, Line: r.lines[strings.SplitN(field, ".", 2)[0]], Err: errors.New("unclosed ${ in the template")}
		}
		t.parts = append(t.parts, rest[:i])
		p, err := prog(field+templateMark, rest[i+2:i+2+end])
		if err != nil {
			return t, err
		}
		if p == nil {
			return t, &LoadError{File: r.Source, Rule: r.ID, Field: field, Line: r.lines[strings.SplitN(field, ".", 2)[0]], Err: errors.New("empty ${} in the template")}
		}
		t.exprs = append(t.exprs, p)
		rest = rest[i+2+end+1:]
	}
}

// matchBrace returns the index of the } closing an expression, skipping
// nested braces and quoted strings.
func matchBrace(s string) int {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote != 0:
			if ch == '\\' {
				i++
			} else if ch == quote {
				quote = 0
			}
		case ch == '"' || ch == '\'':
			quote = ch
		case ch == '{':
			depth++
		case ch == '}':
			if depth == 0 {
				return i
			}
			depth--
		}
	}
	return -1
}

func (t template) render(ctx context.Context, vars map[string]any) (string, error) {
	if len(t.exprs) == 0 {
		return t.parts[0], nil
	}
	var b strings.Builder
	for i, p := range t.exprs {
		b.WriteString(t.parts[i])
		v, _, err := p.ContextEval(ctx, vars)
		if err != nil {
			return "", evalError(err)
		}
		b.WriteString(display(v))
	}
	b.WriteString(t.parts[len(t.parts)-1])
	return b.String(), nil
}

// native converts a CEL value to plain Go values (JSON-compatible).
func native(v ref.Val) (any, error) {
	if types.IsError(v) {
		return nil, fmt.Errorf("%v", v)
	}
	pb, err := v.ConvertToNative(reflect.TypeOf(&structpb.Value{}))
	if err != nil {
		return nil, err
	}
	return pb.(*structpb.Value).AsInterface(), nil
}

// display renders a CEL value for a message: lists comma-separated.
func display(v ref.Val) string {
	x, err := native(v)
	if err != nil {
		return fmt.Sprint(v.Value())
	}
	return displayAny(x)
}

func displayAny(x any) string {
	switch t := x.(type) {
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = displayAny(e)
		}
		return strings.Join(parts, ", ")
	case float64:
		if t == float64(int64(t)) {
			return strconv.FormatInt(int64(t), 10)
		}
		return strconv.FormatFloat(t, 'g', -1, 64)
	case nil:
		return "null"
	default:
		return fmt.Sprint(t)
	}
}

// Outcome is one result of evaluating a rule.
type Outcome struct {
	Status   reports.Status
	Message  string
	Reason   string
	Resource string
	Path     string
	Line     int
	Evidence map[string]any
}

// ErrBudget marks an evaluation stopped because it ran over CostLimit.
var ErrBudget = errors.New("the rule ran over its evaluation budget")

// evalError words CEL's evaluation errors for the person reading the
// report: an expression over its budget says so, a cancelled one passes
// the context's error on.
func evalError(err error) error {
	var ce interpreter.EvalCancelledError
	switch {
	case errors.As(err, &ce) && ce.Cause == interpreter.CostLimitExceeded:
		return fmt.Errorf("%w (%d cost units): simplify its expressions (nested comprehensions over large lists multiply)", ErrBudget, CostLimit)
	case errors.Is(err, interpreter.InterruptError{}):
		return fmt.Errorf("evaluation interrupted: %w", err)
	}
	return err
}

// evalProgram evaluates p under ctx, with errors worded by evalError.
func evalProgram(ctx context.Context, p cel.Program, vars map[string]any) (ref.Val, error) {
	v, _, err := p.ContextEval(ctx, vars)
	if err != nil {
		return nil, evalError(err)
	}
	return v, nil
}

var sectionRefRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`facts\.([a-z_]+)(?:\.([a-z_]+))?`) })

// Eval is EvalContext without a deadline.
func (c *Compiled) Eval(facts map[string]any) []Outcome {
	return c.EvalContext(context.Background(), facts)
}

// EvalContext evaluates the rule against facts (the Facts document as
// plain JSON values) and returns one outcome, or one per for_each item.
// Every expression runs under ctx and within CostLimit: a rule over its
// budget is an error outcome that says so. When ctx is done, the outcomes
// so far end with an error outcome; the caller checks ctx.Err().
func (c *Compiled) EvalContext(ctx context.Context, facts map[string]any) []Outcome {
	vars := map[string]any{"facts": facts, "item": nil}
	if c.applies != nil {
		v, err := evalProgram(ctx, c.applies, vars)
		if err != nil {
			return []Outcome{c.errorOutcome(ctx, vars, "", "applies: "+err.Error())}
		}
		b, ok := v.Value().(bool)
		if !ok {
			return []Outcome{c.errorOutcome(ctx, vars, "", fmt.Sprintf("applies returned %v, not a bool", v.Value()))}
		}
		if !b {
			why, isErr := c.naReason(facts)
			if isErr {
				return []Outcome{c.errorOutcome(ctx, vars, "", why)}
			}
			return []Outcome{c.notApplicable(ctx, vars, "", why)}
		}
	}
	if c.forEach == nil {
		return []Outcome{c.evalOne(ctx, vars, "")}
	}
	v, err := evalProgram(ctx, c.forEach, vars)
	if err != nil {
		return []Outcome{c.errorOutcome(ctx, vars, "", "for_each: "+err.Error())}
	}
	x, err := native(v)
	items, ok := x.([]any)
	if err != nil || !ok {
		return []Outcome{c.errorOutcome(ctx, vars, "", fmt.Sprintf("for_each returned %v, not a list", v.Value()))}
	}
	if len(items) == 0 {
		why := "nothing to check: no matching items on this target"
		if s := strings.TrimSpace(c.NotApplicable); s != "" {
			why = s
		}
		return []Outcome{c.notApplicable(ctx, vars, "", why)}
	}
	out := make([]Outcome, 0, len(items))
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			out = append(out, c.errorOutcome(ctx, vars, "", "evaluation interrupted: "+err.Error()))
			break
		}
		iv := map[string]any{"facts": facts, "item": it}
		// An item a collector could not read carries its reason in
		// `error`: it is an error result, never judged pass or fail.
		if m, ok := it.(map[string]any); ok {
			if why, ok := m["error"].(string); ok && why != "" {
				out = append(out, c.errorOutcome(ctx, iv, resourceKey(it, i), why))
				continue
			}
		}
		out = append(out, c.evalOne(ctx, iv, resourceKey(it, i)))
	}
	return out
}

// resourceKey is the stable identity of a for_each item.
func resourceKey(it any, i int) string {
	switch t := it.(type) {
	case map[string]any:
		for _, k := range []string{"name", "path", "id", "product", "address"} {
			if s, ok := t[k].(string); ok && s != "" {
				return s
			}
		}
	case string:
		return t
	}
	return strconv.Itoa(i)
}

func (c *Compiled) evalOne(ctx context.Context, vars map[string]any, resource string) Outcome {
	v, err := evalProgram(ctx, c.check, vars)
	if err != nil {
		return c.errorOutcome(ctx, vars, resource, "check: "+err.Error())
	}
	b, ok := v.Value().(bool)
	if !ok {
		return c.errorOutcome(ctx, vars, resource, fmt.Sprintf("check returned %v, not a bool", v.Value()))
	}
	o := c.base(ctx, vars, resource)
	o.Status = reports.StatusPass
	o.Message = c.Title
	if !b {
		o.Status = reports.StatusFail
		msg, err := c.message.render(ctx, vars)
		if err != nil {
			return c.errorOutcome(ctx, vars, resource, "message: "+err.Error())
		}
		o.Message = msg
	}
	o.Evidence = map[string]any{}
	for _, k := range c.evidenceKeys {
		ev, err := evalProgram(ctx, c.evidence[k], vars)
		if err != nil {
			o.Evidence[k] = "error: " + err.Error()
			continue
		}
		if x, err := native(ev); err == nil {
			o.Evidence[k] = x
		} else {
			o.Evidence[k] = fmt.Sprint(ev.Value())
		}
	}
	return o
}

func (c *Compiled) base(ctx context.Context, vars map[string]any, resource string) Outcome {
	o := Outcome{Resource: resource, Line: 1}
	if p, err := c.locPath.render(ctx, vars); err == nil && p != "" {
		o.Path = strings.TrimPrefix(p, "/")
	} else if it, ok := vars["item"].(map[string]any); ok {
		if p, ok := it["path"].(string); ok {
			o.Path = strings.TrimPrefix(p, "/")
		}
	}
	if o.Path == "" {
		o.Path = c.defaultPath()
	}
	if c.locLine != nil {
		if v, err := evalProgram(ctx, c.locLine, vars); err == nil {
			if x, err := native(v); err == nil {
				if f, ok := x.(float64); ok && f >= 1 {
					o.Line = int(f)
				}
			}
		}
	}
	return o
}

func (c *Compiled) errorOutcome(ctx context.Context, vars map[string]any, resource, why string) Outcome {
	o := c.base(ctx, vars, resource)
	o.Status, o.Reason, o.Message = reports.StatusError, why, c.Title+": could not be evaluated"
	return o
}

func (c *Compiled) notApplicable(ctx context.Context, vars map[string]any, resource, why string) Outcome {
	o := c.base(ctx, vars, resource)
	o.Status, o.Reason, o.Message = reports.StatusNotApplicable, why, c.Title+": not applicable"
	return o
}

// RenderRemediation returns the rule's remediation with its ${expr} parts
// evaluated against facts (the item is not bound: a remediation speaks of
// the whole target). When an expression cannot be evaluated, the text is
// returned as written, with the error.
func (c *Compiled) RenderRemediation(ctx context.Context, facts map[string]any) (string, error) {
	s, err := c.remediation.render(ctx, map[string]any{"facts": facts, "item": nil})
	if err != nil {
		return c.Remediation, fmt.Errorf("rule %s remediation: %w", c.ID, err)
	}
	return s, nil
}

// naReason explains a false `applies`: the reason of the first referenced
// facts section (or *_available flag) that is unavailable. isErr is true
// when that section could not be read, so the rule is an error (fail
// closed), not merely not applicable. Without such a reason it is the
// rule's not_applicable sentence, or a generic one: never the raw CEL.
func (c *Compiled) naReason(facts map[string]any) (why string, isErr bool) {
	for _, m := range sectionRefRE().FindAllStringSubmatch(c.Applies, -1) {
		sec, ok := facts[m[1]].(map[string]any)
		if !ok {
			continue
		}
		if sec["available"] == false {
			if r, ok := sec["reason"].(string); ok && r != "" {
				return r, sec["error"] == true
			}
		}
		if flag, ok := strings.CutSuffix(m[2], "_available"); ok && sec[m[2]] == false {
			if r, ok := sec[flag+"_reason"].(string); ok && r != "" {
				return r, false
			}
		}
	}
	if s := strings.TrimSpace(c.NotApplicable); s != "" {
		return s, false
	}
	// A section may explain itself even when it is available.
	for _, m := range sectionRefRE().FindAllStringSubmatch(c.Applies, -1) {
		if sec, ok := facts[m[1]].(map[string]any); ok {
			if r, ok := sec["reason"].(string); ok && r != "" {
				return r, false
			}
		}
	}
	return "what this rule checks is not present on this target", false
}

// sectionPaths are where findings about a facts section point when the rule
// gives no usable location (e.g. a not-applicable for_each rule).
var sectionPaths = map[string]string{
	"extensions": "var/lib/waagent",
	"services":   "etc/systemd/system",
	"files":      "var/opt/azcmagent",
	"secrets":    "var/opt/azcmagent",
	"agent":      "var/opt/azcmagent/agentconfig.json",
	"cloud":      "var/opt/azcmagent/agentconfig.json",
	"releases":   "opt/azcmagent/bin",
	"host":       "etc",
	"config":     "var/opt/azcmagent/localconfig.json",
}

func (c *Compiled) defaultPath() string {
	for _, src := range []string{c.ForEach, c.Applies, c.Check} {
		if m := sectionRefRE().FindStringSubmatch(src); m != nil {
			if p, ok := sectionPaths[m[1]]; ok {
				return p
			}
		}
	}
	return "var/opt/azcmagent"
}
