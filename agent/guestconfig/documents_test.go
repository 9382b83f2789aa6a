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
	if os.Geteuid() != 0 {
		t.Skip("the document sets sshd_config's owner to root: needs root (CI runs this as root)")
	}
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

// BenchmarkAuditExamples is one Audit pass of the example documents
// against a fixture root holding every file they read.
func BenchmarkAuditExamples(b *testing.B) {
	root := b.TempDir()
	files := map[string]string{
		"etc/passwd":                             "root:x:0:0:root:/root:/bin/bash\n",
		"etc/group":                              "root:x:0:\n",
		"etc/ssh/sshd_config":                    weakSSHDConfig,
		"etc/login.defs":                         strings.Repeat("# comment line of login.defs\n", 300) + "PASS_MAX_DAYS 99999\nUMASK 022\n",
		"etc/default/grub":                       "GRUB_DEFAULT=0\nGRUB_DISABLE_RECOVERY=\"false\"\n",
		"usr/lib/sysctl.d/50-default.conf":       "net.ipv4.ip_forward = 0\nfs.suid_dumpable = 2\n",
		"etc/sysctl.d/99-local.conf":             "net.ipv4.ip_forward=1\n",
		"usr/lib/systemd/system/ssh.service":     "[Service]\nExecStart=/usr/sbin/sshd\n[Install]\nWantedBy=multi-user.target\n",
		"usr/lib/systemd/system/rpcbind.service": "[Service]\n[Install]\nWantedBy=multi-user.target\n",
		"var/lib/dpkg/status":                    strings.Repeat(strings.ReplaceAll(dpkgStatus, "Package: libc6", "Package: libc6x"), 100) + dpkgStatus,
	}
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	env, err := NewEnv(root, EnvOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer env.Close()
	var docs []*Compiled
	n := 0
	for name, data := range testdataDocs(b) {
		d, err := Parse(name, data)
		if err != nil {
			b.Fatal(err)
		}
		c, err := Compile(d, nil, CompileContext{})
		if err != nil {
			b.Fatal(err)
		}
		docs = append(docs, c)
		n += len(c.Resources)
	}
	ctx := context.Background()
	for b.Loop() {
		for _, c := range docs {
			for _, rr := range Evaluate(ctx, env, c, EvalOptions{Mode: Audit}).Resources {
				if rr.Compliance == Error {
					b.Fatalf("%s: %s", rr.ID, rr.Reason)
				}
			}
		}
	}
	b.ReportMetric(float64(n), "resources")
}
