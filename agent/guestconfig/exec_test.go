package guestconfig

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func execDoc(body string) string {
	return `apiVersion: arcagent.dev/guestconfig/v1
name: Exec
version: 1.0.0
resources:
  - id: marker
    exec:
` + body
}

func compileSigned(t *testing.T, doc string, files map[string][]byte) *Compiled {
	t.Helper()
	d, err := Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(d, nil, CompileContext{Signed: true, Files: files})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// markerScripts validate that ROOT/etc/marker holds "ok" and enforce it.
const markerScripts = `      validate: |
        echo "mode=$ARCAGENT_MODE cwd=$(pwd)"
        [ "$(cat etc/marker 2>/dev/null)" = ok ] && exit 100
        echo "marker missing" ; exit 101
      enforce: |
        [ "$ARCAGENT_MODE" = enforce ] || exit 3
        printf ok > "$ARCAGENT_ROOT/etc/marker" && exit 100
`

func TestExecRefusedUnlessSigned(t *testing.T) {
	d, err := Parse("test.yaml", []byte(execDoc(markerScripts)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(d, nil, CompileContext{})
	if err == nil || !strings.Contains(err.Error(), "signature verified") {
		t.Fatalf("unsigned exec compiled: %v", err)
	}
	if !errors.Is(err, errUnsignedExec) {
		t.Fatalf("not the guard error: %v", err)
	}
}

func TestExecDecode(t *testing.T) {
	files := map[string][]byte{"scripts/v.sh": []byte("exit 100\n"), "empty.sh": nil}
	for _, tc := range []struct{ name, body, want string }{
		{"no validate", "      enforce: exit 100\n", "give validate"},
		{"both", "      validate: exit 100\n      validateFile: scripts/v.sh\n", "not both"},
		{"missing file", "      validateFile: nope.sh\n", "not a file of the package"},
		{"empty file", "      validateFile: empty.sh\n", "is empty"},
		{"relative interpreter", "      validate: exit 100\n      interpreter: sh\n", "absolute path"},
		{"interpreter with args", "      validate: exit 100\n      interpreter: /bin/sh -e\n", "absolute path"},
		{"bad timeout", "      validate: exit 100\n      timeout: soon\n", "duration"},
		{"huge timeout", "      validate: exit 100\n      timeout: 48h\n", "at most"},
		{"unknown field", "      validate: exit 100\n      shell: /bin/sh\n", "shell"},
		{"ok file", "      validateFile: scripts/v.sh\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse("test.yaml", []byte(execDoc(tc.body)))
			if err == nil {
				_, err = Compile(d, nil, CompileContext{Signed: true, Files: files})
			}
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestExecModes(t *testing.T) {
	ctx := context.Background()
	root := testRoot(t, nil, nil)
	c := compileSigned(t, execDoc(markerScripts), nil)

	ro, err := NewEnv(root, EnvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rep := Evaluate(ctx, ro, c, EvalOptions{Mode: Audit})
	r := rep.Resources[0]
	if r.Compliance != NonCompliant || !strings.Contains(r.Reason, "exit 101): mode=validate") {
		t.Fatalf("audit: %+v", r)
	}
	if r.Evidence["exitCode"] != "101" || r.Evidence["stdout"] != "mode=validate cwd="+root {
		t.Fatalf("evidence %v", r.Evidence)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/marker")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("audit ran the enforce script")
	}
	// Set on a read-only Env is refused even if called directly.
	if err := c.Resources[0].Resource.Set(ctx, ro); err == nil || !strings.Contains(err.Error(), "Audit") {
		t.Fatalf("read-only set: %v", err)
	}

	rw, err := NewEnv(root, EnvOptions{BackupDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	rep = Evaluate(ctx, rw, c, EvalOptions{Mode: ApplyAndAutoCorrect})
	if r := rep.Resources[0]; r.Compliance != Compliant || !r.Changed {
		t.Fatalf("autocorrect: %+v", r)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/marker")); string(b) != "ok" {
		t.Fatalf("marker %q", b)
	}
	rep = Evaluate(ctx, rw, c, EvalOptions{Mode: ApplyAndAutoCorrect})
	if r := rep.Resources[0]; r.Compliance != Compliant || r.Changed {
		t.Fatalf("second pass: %+v", r)
	}
}

func TestExecExitCodes(t *testing.T) {
	ctx := context.Background()
	root := testRoot(t, nil, nil)
	env, err := NewEnv(root, EnvOptions{BackupDir: t.TempDir(), CommandTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	files := map[string][]byte{"v.py": []byte("import sys\nprint('from a file')\nsys.exit(100)\n")}
	for _, tc := range []struct {
		name, body string
		compliant  bool
		testErr    string
		setErr     string
	}{
		{name: "validate error quotes stderr", body: "      validate: echo boom >&2; exit 7\n", testErr: "exited 7 (100 means in the desired state, 101 not in it, anything else is an error): boom"},
		{name: "stdin is empty", body: "      validate: read x && exit 7; exit 100\n", compliant: true},
		{name: "enforce fails", body: "      validate: exit 101\n      enforce: echo nope >&2; exit 1\n", setErr: "exited 1 (100 means success): nope"},
		{name: "no enforce", body: "      validate: exit 101\n", setErr: "no enforce script"},
		{name: "stderr bounded", body: "      validate: head -c 5000 /dev/zero | tr '\\\\0' x >&2; exit 2\n", testErr: "exited 2"},
		{name: "timeout", body: "      validate: sleep 30\n      timeout: 200ms\n", testErr: "within its timeout of 200ms"},
		{name: "missing interpreter", body: "      validate: exit 100\n      interpreter: /nonexistent/sh\n", testErr: "could not run"},
		{name: "script file and interpreter", body: "      validateFile: v.py\n      interpreter: /usr/bin/python3\n", compliant: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.body, "python3") {
				if _, err := os.Stat("/usr/bin/python3"); err != nil {
					t.Skip("no /usr/bin/python3")
				}
			}
			c := compileSigned(t, execDoc(tc.body), files)
			res := c.Resources[0].Resource
			obs, err := res.Test(ctx, env)
			if tc.testErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.testErr) {
					t.Fatalf("test: %v, want %q", err, tc.testErr)
				}
				if len(err.Error()) > stderrInReason+400 {
					t.Fatalf("reason not bounded: %d bytes", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if obs.Compliant != tc.compliant {
				t.Fatalf("compliant %v: %+v", obs.Compliant, obs)
			}
			if tc.setErr != "" {
				if err := res.Set(ctx, env); err == nil || !strings.Contains(err.Error(), tc.setErr) {
					t.Fatalf("set: %v, want %q", err, tc.setErr)
				}
			}
		})
	}
}

// TestExecParameterIsNotCode: the assignment's parameters come from a
// control-plane operator, not from the publisher who signed the script, so
// a value must never become part of the script: it reaches the script as
// the environment variable ARCAGENT_PARAM_<name> (data, not code), a
// ${name} of a declared parameter in a script is refused, and the shell's
// own ${VAR} syntax is left to the shell.
func TestExecParameterIsNotCode(t *testing.T) {
	ctx := context.Background()
	root := testRoot(t, nil, nil)
	env, err := NewEnv(root, EnvOptions{BackupDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	const head = `apiVersion: arcagent.dev/guestconfig/v1
name: Exec
version: 1.0.0
parameters:
  - name: port
    default: "22"
resources:
  - id: marker
    exec:
`
	// The old way of writing it: the value was pasted into the script.
	if _, err := Parse("test.yaml", []byte(head+"      validate: test \"${port}\" = 22 && exit 100; exit 101\n")); err == nil || !strings.Contains(err.Error(), "ARCAGENT_PARAM_port") {
		t.Fatalf("a declared parameter in a script: %v", err)
	}
	d, err := Parse("test.yaml", []byte(head+`      validate: |
        p="${ARCAGENT_PARAM_port}"
        [ "$p" = '22; touch pwned' ] && [ "${HOME:-unset}" != x ] && exit 100
        echo "got $p"; exit 101
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(d, map[string]string{"port": "22; touch pwned"}, CompileContext{Signed: true})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := c.Resources[0].Resource.Test(ctx, env)
	if err != nil || !obs.Compliant {
		t.Fatalf("the parameter did not reach the script as data: %+v, %v", obs, err)
	}
	if _, err := os.Stat(filepath.Join(root, "pwned")); err == nil {
		t.Fatal("the parameter value ran as code")
	}
}
