package guestconfig

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestBaselineCompilesWithoutExec(t *testing.T) {
	d, err := Baseline()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(d, nil, CompileContext{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Resources {
		e := r.Entry
		if e.Type == "exec" {
			t.Errorf("%s: the built-in baseline may hold no exec resource", e.ID)
		}
		if e.Title == "" || e.Rationale == "" || e.Remediation == "" || e.Severity == "" {
			t.Errorf("%s: title, severity, rationale and remediation are required in the baseline", e.ID)
		}
	}
}

// On an empty tree every resource with onlyIfExists is NotApplicable and
// the others are judged, never errors.
func TestBaselineOnEmptyTree(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"etc/passwd", "etc/group"} {
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, _ := Baseline()
	c, err := Compile(d, nil, CompileContext{})
	if err != nil {
		t.Fatal(err)
	}
	env, err := NewEnv(root, EnvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	rep := Evaluate(context.Background(), env, c, EvalOptions{Mode: Audit})
	for i, r := range rep.Resources {
		e := c.Resources[i].Entry
		switch {
		case r.Compliance == Error:
			t.Errorf("%s: error on an empty tree: %s", r.ID, r.Reason)
		case e.OnlyIfExists != "" && r.Compliance != NotApplicable:
			t.Errorf("%s: %s without %s", r.ID, r.Compliance, e.OnlyIfExists)
		}
	}
}

// BenchmarkBaselineLive is one Audit pass of the built-in baseline over
// this live host (read only).
//
//	go test -run '^$' -bench BaselineLive -benchmem ./agent/guestconfig/
func BenchmarkBaselineLive(b *testing.B) {
	d, err := Baseline()
	if err != nil {
		b.Fatal(err)
	}
	c, err := Compile(d, nil, CompileContext{})
	if err != nil {
		b.Fatal(err)
	}
	env, err := NewEnv("/", EnvOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer env.Close()
	b.ReportAllocs()
	for b.Loop() {
		if rep := Evaluate(context.Background(), env, c, EvalOptions{Mode: Audit}); len(rep.Resources) != len(c.Resources) {
			b.Fatal("short report")
		}
	}
	b.ReportMetric(float64(len(c.Resources)), "resources")
}
