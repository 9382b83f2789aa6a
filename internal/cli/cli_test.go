//go:build !windows

package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/testutil"
)

// newTestRoot builds a small tree like the binaries': a root with
// -j/-o, a version command, a group with two subcommands, and a command
// with its own -o/--format.
func newTestRoot(stdout *bytes.Buffer) (*cobra.Command, *bool, *[]string) {
	var json bool
	var formats []string
	var out *Output
	root := &cobra.Command{
		Use: "tool",
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Resolve(cmd); err != nil {
				return err
			}
			return CheckFlags(cmd)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stdout)
	root.SetGlobalNormalizationFunc(NormalizeOutput)
	out = OutputFlags(root.PersistentFlags(), &json)
	version := &cobra.Command{Use: "version", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error {
		if json {
			fmt.Fprintln(stdout, `{"version":"1.2.3"}`)
		} else {
			fmt.Fprintln(stdout, "tool 1.2.3")
		}
		return nil
	}}
	group := &cobra.Command{Use: "machines"}
	noop := func(*cobra.Command, []string) error { return nil }
	group.AddCommand(&cobra.Command{Use: "list", Args: cobra.NoArgs, RunE: noop}, &cobra.Command{Use: "delete", Args: cobra.ExactArgs(1), RunE: noop})
	var name string
	report := &cobra.Command{Use: "report", RunE: noop}
	report.Flags().StringArrayVarP(&formats, "format", "o", nil, "FORMAT[=FILE]")
	report.Flags().StringVar(&name, "name", "", "required")
	_ = report.MarkFlagRequired("name")
	root.AddCommand(version, group, report)
	Prepare(root)
	return root, &json, &formats
}

func TestRunClassifiesUsage(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    []string
		wantOut string
	}{
		{[]string{"machnes"}, []string{`unknown command "machnes"`, `did you mean "machines"`}, ""},
		{[]string{"machines", "lst"}, []string{`tool machines: unknown command "lst"`, `did you mean "list"`}, ""},
		{[]string{"machines", "delete"}, []string{"accepts 1 arg(s)"}, ""},
		{[]string{"version", "x"}, []string{"tool version:"}, ""},
		{[]string{"version", "--bogus"}, []string{"unknown flag: --bogus"}, ""},
		{[]string{"report"}, []string{`required flag(s) "name" not set`}, ""},
		{[]string{"version", "-o", "yaml"}, []string{`-o/--output "yaml"`}, ""},
		{[]string{"completion", "bsh"}, []string{`did you mean "bash"`}, ""},
		{[]string{"help", "machines", "lst"}, []string{`tool machines: unknown command "lst"`, `did you mean "list"`}, ""},
	} {
		var out, errb bytes.Buffer
		root, _, _ := newTestRoot(&out)
		code := Run(t.Context(), root, tc.args, &errb)
		if code != errcode.ExitUsage {
			t.Errorf("%v: exit %d, want 2 (%s)", tc.args, code, errb.String())
		}
		if !strings.HasPrefix(errb.String(), "error: ARC0001: ") || !strings.Contains(errb.String(), "what to do: ") {
			t.Errorf("%v: stderr %q lacks the code or the remedy", tc.args, errb.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(errb.String(), w) {
				t.Errorf("%v: stderr %q lacks %q", tc.args, errb.String(), w)
			}
		}
	}
}

func TestGroupWithoutSubcommandPrintsHelp(t *testing.T) {
	var out, errb bytes.Buffer
	root, _, _ := newTestRoot(&out)
	if code := Run(t.Context(), root, []string{"machines"}, &errb); code != 0 || !strings.Contains(out.String(), "Available Commands") {
		t.Errorf("exit %d, out %q, err %q", code, out.String(), errb.String())
	}
	var helpOut bytes.Buffer
	root, _, _ = newTestRoot(&helpOut)
	if code := Run(t.Context(), root, []string{"help", "machines"}, &errb); code != 0 || helpOut.String() != out.String() {
		t.Errorf("help machines: exit %d, printed %q, want %q", code, helpOut.String(), out.String())
	}
	if strings.Contains(out.String(), "tool machines [flags]") || !strings.Contains(out.String(), "tool machines [command]") {
		t.Errorf("a group's usage offers to run it alone:\n%s", out.String())
	}
}

func TestVersionFlag(t *testing.T) {
	for _, tc := range []struct{ flag, cmd []string }{
		{[]string{"--version"}, []string{"version"}},
		{[]string{"--version", "-j"}, []string{"version", "-j"}},
		{[]string{"--version", "-o", "json"}, []string{"version", "--output", "json"}},
	} {
		var a, b, errb bytes.Buffer
		ra, _, _ := newTestRoot(&a)
		rb, _, _ := newTestRoot(&b)
		if ca, cb := Run(t.Context(), ra, tc.flag, &errb), Run(t.Context(), rb, tc.cmd, &errb); ca != 0 || cb != 0 {
			t.Fatalf("%v: exit %d/%d: %s", tc.flag, ca, cb, errb.String())
		}
		if a.String() != b.String() || a.Len() == 0 {
			t.Errorf("%v printed %q, %v printed %q", tc.flag, a.String(), tc.cmd, b.String())
		}
	}
}

func TestOutputFlag(t *testing.T) {
	var out, errb bytes.Buffer
	root, json, _ := newTestRoot(&out)
	if code := Run(t.Context(), root, []string{"machines", "list", "-o", "json"}, &errb); code != 0 || !*json {
		t.Errorf("-o json: exit %d, json %v, %s", code, *json, errb.String())
	}
	// A command's own -o (several formats) hides the global one, and
	// --format and --output name it alike.
	root, json, formats := newTestRoot(&out)
	if code := Run(t.Context(), root, []string{"report", "--name", "n", "-o", "sarif", "--format", "html", "--output", "json"}, &errb); code != 0 || *json {
		t.Fatalf("report: exit %d json %v: %s", code, *json, errb.String())
	}
	if strings.Join(*formats, ",") != "sarif,html,json" {
		t.Errorf("formats %v", *formats)
	}
}

func TestReport(t *testing.T) {
	coded := errcode.New(errcode.WriteFailed, "store the key")
	for _, tc := range []struct {
		err  error
		code int
		want string
	}{
		{nil, 0, ""},
		{ExitError{Code: 1}, 1, ""},
		{fmt.Errorf("wrapped: %w", ExitError{Code: 3}), 3, ""},
		{coded, errcode.ExitFailed, "error: ARC0019: store the key\nwhat to do: "},
		// A coded error wrapped with context still leads with its code.
		{fmt.Errorf("register with https://x: %w", coded), errcode.ExitFailed, "error: ARC0019: register with https://x: store the key\n"},
		{&fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}, errcode.ExitFailed, "error: ARC0018: "},
		{fmt.Errorf("wait for the lock: %w", context.Canceled), errcode.ExitFailed, "error: ARC0050: wait for the lock: context canceled\nwhat to do: run it again"},
		// Words cobra uses do not make an error a usage error.
		{errors.New("rule ARC-X: unknown flag in expression; accepts 2 arguments"), errcode.ExitFailed, "error: ARC0002: rule ARC-X"},
		{errors.New("boom"), errcode.ExitFailed, "error: ARC0002: boom\nwhat to do: this is a bug"},
	} {
		var b bytes.Buffer
		if got := Report(&b, tc.err); got != tc.code || !strings.HasPrefix(b.String(), tc.want) || (tc.want == "" && b.Len() > 0) {
			t.Errorf("%v: exit %d, printed %q; want %d and %q", tc.err, got, b.String(), tc.code, tc.want)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	file, err := os.Create(t.TempDir() + "/f")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	_, tty := testutil.PTY(t)
	for _, tc := range []struct {
		name string
		v    any
		want bool
	}{
		{"buffer", &bytes.Buffer{}, false},
		{"reader", strings.NewReader("y\n"), false},
		// A character device, but not a terminal: no colours, no prompts.
		{"/dev/null", devnull, false},
		{"file", file, false},
		{"pty", tty, true},
	} {
		if got := IsTerminal(tc.v); got != tc.want {
			t.Errorf("%s: IsTerminal = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestConfirm(t *testing.T) {
	if _, err := Confirm(strings.NewReader("y\n"), &bytes.Buffer{}, "Delete?"); !errors.Is(err, ErrNotTerminal) {
		t.Fatalf("a pipe was asked: %v", err)
	}
	for _, tc := range []struct {
		answer string
		want   bool
	}{{"y\n", true}, {"YES\n", true}, {"n\n", false}, {"\n", false}, {"yep\n", false}} {
		master, tty := testutil.PTY(t)
		if _, err := master.WriteString(tc.answer); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		got, err := Confirm(tty, &out, "Delete machine web01?")
		if err != nil || got != tc.want || out.String() != "Delete machine web01? [y/N] " {
			t.Errorf("%q: %v %v, prompt %q", tc.answer, got, err, out.String())
		}
	}
}

func TestTime(t *testing.T) {
	at := time.Date(2026, 12, 3, 11, 25, 0, 0, time.FixedZone("CET", 3600))
	if got := Time(at); got != "2026-12-03T10:25:00Z" {
		t.Errorf("Time = %q", got)
	}
	if got := Time(time.Time{}); got != "-" {
		t.Errorf("zero Time = %q", got)
	}
}
