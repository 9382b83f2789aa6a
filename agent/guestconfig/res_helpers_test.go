package guestconfig

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// oneResource compiles a document holding one resource of type typ with
// the given body (YAML, indented by the caller's convention of two spaces).
func oneResource(t *testing.T, typ, body string) Resource {
	t.Helper()
	r, err := tryResource(typ, body)
	if err != nil {
		t.Fatalf("compile %s: %v", typ, err)
	}
	return r
}

func tryResource(typ, body string) (Resource, error) {
	var b strings.Builder
	b.WriteString("apiVersion: arcagent.dev/guestconfig/v1\nname: T\nversion: 1.0.0\nresources:\n  - id: r\n    " + typ + ":\n")
	for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
		b.WriteString("      " + strings.TrimSpace(l) + "\n")
	}
	d, err := Parse("t.yaml", []byte(b.String()))
	if err != nil {
		return nil, err
	}
	c, err := Compile(d, nil, CompileContext{Signed: true})
	if err != nil {
		return nil, err
	}
	return c.Resources[0].Resource, nil
}

// writeEnv opens root as a writable (non-live) target.
func writeEnv(t *testing.T, root string) *Env {
	t.Helper()
	env, err := NewEnv(root, EnvOptions{BackupDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return env
}

func readFixture(t *testing.T, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testSetRetest runs test, set (when not compliant) and test again,
// failing unless the resource ends compliant and a second set is a no-op.
func testSetRetest(t *testing.T, env *Env, r Resource) (before, after Observation) {
	t.Helper()
	ctx := context.Background()
	before, err := r.Test(ctx, env)
	if err != nil {
		t.Fatalf("test: %v", err)
	}
	if !before.Compliant {
		if err := r.Set(ctx, env); err != nil {
			t.Fatalf("set: %v", err)
		}
	}
	after, err = r.Test(ctx, env)
	if err != nil {
		t.Fatalf("retest: %v", err)
	}
	if !after.Compliant {
		t.Fatalf("not compliant after set: %s (evidence %v)", after.Reason, after.Evidence)
	}
	return before, after
}

// treeDigest describes every entry under root (path, type, mode, link
// target or content) so a test can tell whether anything changed.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(root, p)
		b.WriteString(r + " " + fi.Mode().String())
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			b.WriteString(" -> " + l)
		case fi.Mode().IsRegular():
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.WriteString(" " + string(c))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
