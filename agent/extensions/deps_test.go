package extensions

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the agent side light: the extension manager's
// package never pulls in the rule compiler, the database or the control
// plane server.
func TestDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{"github.com/google/cel-go", "modernc.org/sqlite", "github.com/mattn/go-sqlite3", "github.com/arcagent/arcagent/controlplane"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				if dep == "github.com/arcagent/arcagent/controlplane/apiv1" {
					continue // wire types are allowed
				}
				t.Errorf("agent/extensions depends on %s", dep)
			}
		}
	}
}
