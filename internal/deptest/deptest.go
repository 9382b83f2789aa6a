// Package deptest checks a module's import graph against dependency
// rules, in the style of tailscale's tstest/deptest: it asks the go command
// (`go list -deps -json`) for every package and its transitive imports and
// reports each forbidden edge with the chain of imports that leads to it.
// arcagent's own rules (Rules) are enforced by this package's test.
package deptest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
)

// Module is arcagent's module path.
const Module = "github.com/arcagent/arcagent"

// Rule forbids the packages matching From to depend, directly or not, on
// packages matching Forbid, unless they also match Except. Patterns are
// import paths; a trailing "/..." matches the path and everything below it.
type Rule struct {
	From   string
	Forbid []string
	Except []string
	Why    string
}

// Rules are arcagent's dependency rules (docs/architecture.md, "Dependencies run one way").
var Rules = []Rule{
	{
		From:   Module + "/agent/...",
		Forbid: []string{"github.com/google/cel-go/...", "modernc.org/sqlite/...", "github.com/mattn/go-sqlite3/...", Module + "/controlplane/..."},
		Except: []string{Module + "/controlplane/apiv1"},
		Why:    "the agent talks to the control plane only through its wire types (controlplane/apiv1) and stays small: no rule engine, no database",
	},
	{
		From:   Module + "/controlplane/...",
		Forbid: []string{Module + "/agent/..."},
		Why:    "the control plane never depends on agent code; both share only controlplane/apiv1",
	},
	{
		From:   Module + "/reports/...",
		Forbid: []string{Module + "/audit/..."},
		Why:    "reports render a report model; they never collect (no audit engine or collector in a report writer)",
	},
	{
		From:   Module + "/releases/...",
		Forbid: []string{Module + "/audit/...", "github.com/google/cel-go/..."},
		Why:    "version currency is a library of its own: the audit adapts release facts on its side (audit/releasefacts), never the other way",
	},
}

// Package is what Check needs of one package from `go list -json`.
type Package struct {
	ImportPath string
	Imports    []string // direct imports
	Deps       []string // transitive imports
	Standard   bool
}

// Violation is one forbidden dependency.
type Violation struct {
	Package string   // the package that must not depend on Dep
	Dep     string   // the forbidden package
	Chain   []string // Package, the packages in between, Dep
	Rule    Rule
}

func (v Violation) String() string {
	return fmt.Sprintf("%s must not depend on %s (%s): %s", v.Package, v.Dep, v.Rule.Why, strings.Join(v.Chain, " -> "))
}

// Match reports whether path matches pattern ("a/b" or "a/b/...").
func Match(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

func matchAny(patterns []string, path string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return Match(p, path) })
}

// Check returns every violation of rules in pkgs, sorted by package and
// dependency. Packages missing from pkgs are only reached through Deps.
func Check(pkgs []Package, rules []Rule) []Violation {
	byPath := make(map[string]*Package, len(pkgs))
	for i := range pkgs {
		byPath[pkgs[i].ImportPath] = &pkgs[i]
	}
	var out []Violation
	for _, p := range pkgs {
		for _, r := range rules {
			if !Match(r.From, p.ImportPath) {
				continue
			}
			for _, d := range p.Deps {
				if matchAny(r.Forbid, d) && !matchAny(r.Except, d) {
					out = append(out, Violation{Package: p.ImportPath, Dep: d, Chain: chain(byPath, p.ImportPath, d), Rule: r})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Violation) int {
		if c := strings.Compare(a.Package, b.Package); c != 0 {
			return c
		}
		return strings.Compare(a.Dep, b.Dep)
	})
	return out
}

// chain is a shortest import chain from -> to over direct imports, or just
// [from, to] when the graph does not show one.
func chain(byPath map[string]*Package, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var c []string
			for n := to; n != ""; n = prev[n] {
				c = append(c, n)
			}
			slices.Reverse(c)
			return c
		}
		if p := byPath[cur]; p != nil {
			for _, imp := range p.Imports {
				if _, seen := prev[imp]; !seen {
					prev[imp] = cur
					queue = append(queue, imp)
				}
			}
		}
	}
	return []string{from, to}
}

// List runs `go list -deps -json patterns...` in dir and returns the
// packages it prints (the packages matched and all their dependencies,
// test files excluded).
func List(ctx context.Context, dir string, patterns ...string) ([]Package, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"list", "-deps", "-json=ImportPath,Imports,Deps,Standard"}, patterns...)...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go list -deps in %s: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	return Decode(&stdout)
}

// Decode reads the stream of JSON objects `go list -json` prints.
func Decode(r io.Reader) ([]Package, error) {
	dec := json.NewDecoder(r)
	var out []Package
	for {
		var p Package
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		out = append(out, p)
	}
}
