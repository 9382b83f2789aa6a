package deptest

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestModuleDependencies enforces Rules on the whole module.
func TestModuleDependencies(t *testing.T) {
	_, pkgs := modulePackages(t)
	// The rules must see the packages they are about, or they check nothing.
	for _, want := range []string{Module + "/agent/himds", Module + "/controlplane", Module + "/reports"} {
		if !slices.ContainsFunc(pkgs, func(p Package) bool { return p.ImportPath == want }) {
			t.Fatalf("go list did not report %s", want)
		}
	}
	for _, v := range Check(pkgs, Rules) {
		t.Error(v)
	}
}

// modulePackages returns the module's root directory and what
// `go list -deps ./...` reports for it.
func modulePackages(t *testing.T) (string, []Package) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	statSources(t, root)
	pkgs, err := List(context.Background(), root, "./...")
	if err != nil {
		t.Fatal(err)
	}
	return root, pkgs
}

// statSources stats every directory and Go file of the module. The go
// command caches a passing test by the files the test process itself opens
// and stats, not by what `go list` reads in a subprocess; without this a
// new forbidden import could pass from the cache.
func statSources(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || strings.HasSuffix(p, ".go") || d.Name() == "go.mod" {
			_, err = os.Stat(p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"a/b/...", "a/b", true},
		{"a/b/...", "a/b/c/d", true},
		{"a/b/...", "a/bc", false},
		{"a/b", "a/b", true},
		{"a/b", "a/b/c", false},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.path); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
}

// TestCheckSynthetic proves the checker catches what the rules forbid, on
// a made-up graph: an agent package that reaches the control plane through
// another agent package is reported with the chain, while the wire types
// are allowed.
func TestCheckSynthetic(t *testing.T) {
	const (
		himds  = Module + "/agent/himds"
		cloud  = Module + "/agent/cloud"
		cp     = Module + "/controlplane"
		apiv1  = Module + "/controlplane/apiv1"
		store  = Module + "/controlplane/store"
		report = Module + "/reports"
		audit  = Module + "/audit"
	)
	tests := []struct {
		name string
		pkgs []Package
		want []string // "pkg -> dep: chain"
	}{
		{"clean", []Package{
			{ImportPath: himds, Imports: []string{cloud}, Deps: []string{apiv1, cloud, "fmt"}},
			{ImportPath: cloud, Imports: []string{apiv1}, Deps: []string{apiv1}},
			{ImportPath: cp, Imports: []string{apiv1, store}, Deps: []string{apiv1, store, "modernc.org/sqlite"}},
		}, nil},
		{"agent imports the control plane", []Package{
			{ImportPath: himds, Imports: []string{cloud}, Deps: []string{apiv1, cloud, cp, store, "modernc.org/sqlite"}},
			{ImportPath: cloud, Imports: []string{apiv1, cp}, Deps: []string{apiv1, cp, store, "modernc.org/sqlite"}},
			{ImportPath: cp, Imports: []string{apiv1, store}, Deps: []string{apiv1, store, "modernc.org/sqlite"}},
			{ImportPath: store, Imports: []string{"modernc.org/sqlite"}, Deps: []string{"modernc.org/sqlite"}},
		}, []string{
			cloud + " -> " + cp + ": " + cloud + " -> " + cp,
			cloud + " -> " + store + ": " + cloud + " -> " + cp + " -> " + store,
			cloud + " -> modernc.org/sqlite: " + cloud + " -> " + cp + " -> " + store + " -> modernc.org/sqlite",
			himds + " -> " + cp + ": " + himds + " -> " + cloud + " -> " + cp,
			himds + " -> " + store + ": " + himds + " -> " + cloud + " -> " + cp + " -> " + store,
			himds + " -> modernc.org/sqlite: " + himds + " -> " + cloud + " -> " + cp + " -> " + store + " -> modernc.org/sqlite",
		}},
		{"agent imports cel-go", []Package{
			{ImportPath: Module + "/agent/config", Imports: []string{"github.com/google/cel-go/cel"}, Deps: []string{"github.com/google/cel-go/cel"}},
		}, []string{Module + "/agent/config -> github.com/google/cel-go/cel: " + Module + "/agent/config -> github.com/google/cel-go/cel"}},
		{"control plane imports the agent", []Package{
			{ImportPath: cp + "/loadgen", Imports: []string{cloud}, Deps: []string{apiv1, cloud}},
		}, []string{cp + "/loadgen -> " + cloud + ": " + cp + "/loadgen -> " + cloud}},
		{"reports import the audit engine", []Package{
			{ImportPath: report, Imports: []string{audit}, Deps: []string{audit}},
		}, []string{report + " -> " + audit + ": " + report + " -> " + audit}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, v := range Check(tt.pkgs, Rules) {
				got = append(got, v.Package+" -> "+v.Dep+": "+strings.Join(v.Chain, " -> "))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestDecode(t *testing.T) {
	pkgs, err := Decode(strings.NewReader(`{"ImportPath":"a","Imports":["b"],"Deps":["b"]}
{"ImportPath":"b","Standard":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 || pkgs[0].ImportPath != "a" || pkgs[0].Deps[0] != "b" || !pkgs[1].Standard {
		t.Errorf("got %+v", pkgs)
	}
	if _, err := Decode(strings.NewReader(`{"ImportPath":`)); err == nil {
		t.Error("truncated output was accepted")
	}
}

// TestArchitecturePackageMap keeps the package map of docs/architecture.md
// true: every package of the module is listed there, and nothing else.
func TestArchitecturePackageMap(t *testing.T) {
	root, pkgs := modulePackages(t)
	var want []string
	for _, p := range pkgs {
		if rel, ok := strings.CutPrefix(p.ImportPath, Module+"/"); ok {
			want = append(want, rel)
		}
	}
	slices.Sort(want)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	got := packageMap(t, string(doc))
	for _, p := range want {
		if !slices.Contains(got, p) {
			t.Errorf("docs/architecture.md does not list package %s: add a row for it to the package map", p)
		}
	}
	for _, p := range got {
		if !slices.Contains(want, p) {
			t.Errorf("docs/architecture.md lists %s, which is not a package of the module: remove or rename its row", p)
		}
	}
}

// packageMap returns the package names in the first column of the table
// between the BEGIN PACKAGES and END PACKAGES markers.
func packageMap(t *testing.T, doc string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "<!-- BEGIN PACKAGES")
	if !ok {
		t.Fatal("docs/architecture.md has no BEGIN PACKAGES marker")
	}
	body, _, ok := strings.Cut(rest, "<!-- END PACKAGES -->")
	if !ok {
		t.Fatal("docs/architecture.md has no END PACKAGES marker")
	}
	var out []string
	for _, line := range strings.Split(body, "\n") {
		cell, ok := strings.CutPrefix(line, "| `")
		if !ok {
			continue
		}
		name, _, ok := strings.Cut(cell, "`")
		if ok {
			out = append(out, name)
		}
	}
	return out
}

func TestPackageMapParse(t *testing.T) {
	doc := "x\n<!-- BEGIN PACKAGES -->\n| package | holds |\n|---|---|\n| `a/b` | one |\n| `c` | two |\n<!-- END PACKAGES -->\n| `d` | outside |\n"
	if got := packageMap(t, doc); !slices.Equal(got, []string{"a/b", "c"}) {
		t.Errorf("packageMap = %q", got)
	}
}
