package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	_ "github.com/arcagent/arcagent/controlplane/apiv1" // registers the control plane's error codes
	"github.com/arcagent/arcagent/errcode"
)

// The -update flag is registered once per package, whichever test file
// gets there first.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files and the generated sections of README.md")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// generatedSections are README sections produced from the code.
func generatedSections(t *testing.T) map[string]string {
	t.Helper()
	rs, err := loadRules("")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("| id | severity | profiles | title |\n|---|---|---|---|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.ID, r.Severity, strings.Join(r.Profiles, ", "), r.Title)
	}
	var e strings.Builder
	e.WriteString("| code | exit | meaning | what to do |\n|---|---|---|---|\n")
	for _, i := range errcode.All() {
		fmt.Fprintf(&e, "| `%s` | %d | %s | %s |\n", i.Code, i.Exit, i.Title, strings.ReplaceAll(i.Remedy, "|", "\\|"))
	}
	return map[string]string{"RULES": b.String(), "ERRORS": e.String()}
}

// The README's rule and error-code tables are generated from the packs
// and the registry; this test keeps them true.
func TestReadmeGeneratedSections(t *testing.T) {
	path := "../../README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := data
	for name, body := range generatedSections(t) {
		begin, end := []byte("<!-- BEGIN "+name+" -->\n"), []byte("<!-- END "+name+" -->")
		i, j := bytes.Index(out, begin), bytes.Index(out, end)
		if i < 0 || j < i {
			t.Fatalf("README.md lacks the %s markers", name)
		}
		out = append(append(append([]byte{}, out[:i+len(begin)]...), body...), out[j:]...)
	}
	if bytes.Equal(out, data) {
		return
	}
	if updating() {
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's generated tables are stale: run `go test ./cmd/arcagent -run Readme -update`")
}
