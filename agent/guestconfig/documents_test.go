package guestconfig

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func testdataDocs(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata documents: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// The example documents parse and compile, and together use every
// resource type of this package's resource files.
func TestTestdataDocuments(t *testing.T) {
	used := map[string]bool{}
	for name, b := range testdataDocs(t) {
		d, err := Parse(name, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Compile(d, nil, CompileContext{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, e := range d.Resources {
			used[e.Type] = true
		}
	}
	var missing []string
	for _, typ := range []string{"file", "keyvalue", "sysctl", "service", "package"} {
		if !used[typ] {
			missing = append(missing, typ)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("no testdata document uses %s", strings.Join(missing, ", "))
	}
}

const weakSSHDConfig = "# weak\nPort 22\nMaxAuthTries 10\nX11Forwarding yes\nSubsystem sftp /usr/lib/openssh/sftp-server\n\nMatch Group admins\n    X11Forwarding no\n"

// The ssh document against a weak sshd_config: Audit reports every
// reason and changes nothing, ApplyAndAutoCorrect fixes it in one pass
// keeping the rest of the file, a later Audit is compliant.
func TestSSHHardeningEvaluate(t *testing.T) {
	root := testRoot(t, map[string]string{"etc/ssh/sshd_config": weakSSHDConfig}, map[string]os.FileMode{"etc/ssh/sshd_config": 0o644})
	b, err := os.ReadFile("testdata/ssh-hardening.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse("ssh-hardening.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(d, map[string]string{"maxAuthTries": "3"}, CompileContext{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	before := treeDigest(t, root)
	ro, err := NewEnv(root, EnvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rep := Evaluate(ctx, ro, c, EvalOptions{Mode: Audit})
	if rep.Compliance != NonCompliant {
		t.Fatalf("audit: %s", rep.Compliance)
	}
	wantReasons := map[string]string{
		"ssh-permit-root-login": `PermitRootLogin is "prohibit-password", want "no"`,
		"ssh-max-auth-tries":    "MaxAuthTries is 10, want at most 3",
		"ssh-x11-forwarding":    `X11Forwarding is "yes", want "no"`,
		"ssh-config-mode":       "mode is 0644, want at most 0600",
	}
	for _, rr := range rep.Resources {
		if !strings.Contains(rr.Reason, wantReasons[rr.ID]) || rr.Compliance != NonCompliant {
			t.Errorf("%s: %s %q, want NonCompliant %q", rr.ID, rr.Compliance, rr.Reason, wantReasons[rr.ID])
		}
	}
	if treeDigest(t, root) != before {
		t.Fatal("audit changed the tree")
	}

	backups := t.TempDir()
	rw, err := NewEnv(root, EnvOptions{BackupDir: backups})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	rep = Evaluate(ctx, rw, c, EvalOptions{Mode: ApplyAndAutoCorrect, Apply: true})
	if rep.Compliance != Compliant {
		for _, rr := range rep.Resources {
			t.Logf("%s %s %s %v", rr.ID, rr.Compliance, rr.Reason, rr.Steps)
		}
		t.Fatalf("autocorrect: %s", rep.Compliance)
	}
	want := "# weak\nPort 22\nMaxAuthTries 3\nX11Forwarding no\nSubsystem sftp /usr/lib/openssh/sftp-server\n\nPermitRootLogin no\nMatch Group admins\n    X11Forwarding no\n"
	if got := readFixture(t, root, "etc/ssh/sshd_config"); got != want {
		t.Fatalf("sshd_config after one pass:\n%s\nwant\n%s", got, want)
	}
	if rep.Backups == "" {
		t.Fatal("no backup directory reported")
	}
	if b, err := os.ReadFile(filepath.Join(rep.Backups, "etc/ssh/sshd_config")); err != nil || string(b) != weakSSHDConfig {
		t.Fatalf("backup %q, %v", b, err)
	}
	if rep := Evaluate(ctx, ro, c, EvalOptions{Mode: Audit}); rep.Compliance != Compliant {
		t.Fatalf("audit after correction: %s", rep.Compliance)
	}
}

// FuzzParse checks the document parser on arbitrary input: it never
// panics, and a document it accepts has unique ids and registered types,
// and compiles (or fails) without panicking.
func FuzzParse(f *testing.F) {
	for _, b := range testdataDocs(f) {
		f.Add(b)
	}
	f.Add([]byte("apiVersion: arcagent.dev/guestconfig/v1\nname: X\nversion: 1\nresources:\n  - id: a\n    keyvalue: {path: /a, key: K, value: ${p}}\n"))
	f.Add([]byte("{}"))
	f.Add([]byte("- 1\n- 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, e := range d.Resources {
			if seen[e.ID] {
				t.Fatalf("duplicate id %q accepted", e.ID)
			}
			seen[e.ID] = true
			if _, ok := lookupType(e.Type); !ok {
				t.Fatalf("unregistered type %q accepted", e.Type)
			}
		}
		params := map[string]string{}
		for _, p := range d.Parameters {
			params[p.Name] = "x"
		}
		_, _ = Compile(d, params, CompileContext{})
	})
}
