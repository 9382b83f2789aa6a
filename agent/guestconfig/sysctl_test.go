package guestconfig

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSysctl(t *testing.T) {
	cases := []struct {
		name      string
		files     map[string]string
		links     map[string]string // path -> link target
		body      string
		compliant bool
		reason    string
		evidence  map[string]string
		after     map[string]string // files after set
		setErr    string
	}{
		{
			name:     "fixture root without /proc: runtime not evaluated, persisted by a vendor file",
			files:    map[string]string{"usr/lib/sysctl.d/50-default.conf": "# vendor\nnet.ipv4.ip_forward = 1\n", "etc/sysctl.d/10-x.conf": "kernel.x=1\n"},
			body:     "key: net.ipv4.ip_forward\nvalue: \"0\"",
			reason:   `/usr/lib/sysctl.d/50-default.conf:2 sets "1", want "0"`,
			evidence: map[string]string{"runtime": "not evaluated (not the live system", "persisted": "1", "filesRead": "2"},
			after:    map[string]string{"etc/sysctl.d/90-arcagent.conf": "net.ipv4.ip_forward=0\n", "usr/lib/sysctl.d/50-default.conf": "# vendor\nnet.ipv4.ip_forward = 1\n"},
		},
		{
			name:     "unset everywhere",
			body:     "key: kernel.dmesg_restrict\nvalue: \"1\"",
			reason:   "not set in any sysctl.d file",
			evidence: map[string]string{"persisted": "unset"},
			after:    map[string]string{"etc/sysctl.d/90-arcagent.conf": "kernel.dmesg_restrict=1\n"},
		},
		{
			name:      "runtime and persisted under a fixture /proc, whitespace-normalised",
			files:     map[string]string{"proc/sys/net/ipv4/tcp_rmem": "4096\t87380\t6291456\n", "etc/sysctl.conf": "net.ipv4.tcp_rmem = 4096 87380   6291456\n"},
			body:      "key: net.ipv4.tcp_rmem\nvalue: 4096 87380 6291456",
			compliant: true,
			evidence:  map[string]string{"runtime": "4096 87380 6291456", "persistedAt": "/etc/sysctl.conf:1"},
		},
		{
			name:   "runtime differs under a fixture /proc",
			files:  map[string]string{"proc/sys/net/ipv4/ip_forward": "1\n", "etc/sysctl.d/90-arcagent.conf": "# ours\nnet.ipv4.ip_forward=0\n"},
			body:   "key: net.ipv4.ip_forward\nvalue: \"0\"",
			reason: `runtime value is "1", want "0"`,
			after:  map[string]string{"proc/sys/net/ipv4/ip_forward": "0\n", "etc/sysctl.d/90-arcagent.conf": "# ours\nnet.ipv4.ip_forward=0\n"},
		},
		{
			name:   "a later file overrides: set refuses and changes nothing",
			files:  map[string]string{"etc/sysctl.d/99-local.conf": "kernel.kptr_restrict=0\n"},
			body:   "key: kernel.kptr_restrict\nvalue: \"2\"",
			reason: "/etc/sysctl.d/99-local.conf:1 sets",
			setErr: "99-local.conf:1 sets kernel.kptr_restrict",
		},
		{
			name:     "/etc/sysctl.conf through the 99-sysctl.conf link, a masked vendor file, / keys",
			files:    map[string]string{"usr/lib/sysctl.d/50-default.conf": "kernel.sysrq = 0\n", "etc/sysctl.conf": "-kernel/sysrq = 16\n", "usr/lib/sysctl.d/10-a.conf": "kernel.sysrq=176\n"},
			links:    map[string]string{"etc/sysctl.d/99-sysctl.conf": "../sysctl.conf", "etc/sysctl.d/50-default.conf": "/dev/null"},
			body:     "key: kernel.sysrq\nvalue: \"0\"\nruntime: false",
			reason:   `/etc/sysctl.d/99-sysctl.conf:1 sets "16"`,
			evidence: map[string]string{"notes": "/etc/sysctl.d/50-default.conf is masked", "filesRead": "2"},
			setErr:   "is applied after /etc/sysctl.d/90-arcagent.conf",
		},
		{
			name:   "persistFile /etc/sysctl.conf rewritten in place",
			files:  map[string]string{"etc/sysctl.conf": "# conf\nfs.suid_dumpable = 2 \nvm.x=1\n"},
			body:   "key: fs.suid_dumpable\nvalue: \"0\"\npersistFile: /etc/sysctl.conf\nruntime: false",
			reason: `sets "2", want "0"`,
			after:  map[string]string{"etc/sysctl.conf": "# conf\nfs.suid_dumpable = 0 \nvm.x=1\n"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := testRoot(t, c.files, nil)
			for p, target := range c.links {
				full := filepath.Join(root, p)
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, full); err != nil {
					t.Fatal(err)
				}
			}
			env := writeEnv(t, root)
			r := oneResource(t, "sysctl", c.body)
			ctx := context.Background()
			obs, err := r.Test(ctx, env)
			if err != nil {
				t.Fatal(err)
			}
			if obs.Compliant != c.compliant || !strings.Contains(obs.Reason, c.reason) {
				t.Fatalf("compliant %v reason %q, want %v %q (evidence %v)", obs.Compliant, obs.Reason, c.compliant, c.reason, obs.Evidence)
			}
			for k, want := range c.evidence {
				if got := obs.Evidence[k]; !strings.Contains(got, want) {
					t.Errorf("evidence %s = %q, want %q", k, got, want)
				}
			}
			if c.compliant {
				return
			}
			if c.setErr != "" {
				before := treeDigest(t, root)
				if err := r.Set(ctx, env); err == nil || !strings.Contains(err.Error(), c.setErr) {
					t.Fatalf("set error %v, want %q", err, c.setErr)
				}
				if treeDigest(t, root) != before {
					t.Fatal("a refused set changed the tree")
				}
				return
			}
			testSetRetest(t, env, r)
			for p, want := range c.after {
				if got := readFixture(t, root, p); got != want {
					t.Errorf("%s after set: %q, want %q", p, got, want)
				}
			}
			if _, err := os.Stat(filepath.Join(root, "proc")); err == nil && c.files["proc/sys/net/ipv4/ip_forward"] == "" {
				t.Error("set created a /proc under the root")
			}
		})
	}
}

func TestSysctlDecode(t *testing.T) {
	for _, body := range []string{
		"key: net/ipv4/ip_forward\nvalue: \"0\"",
		"key: ../etc\nvalue: \"0\"",
		"key: kernel\nvalue: \"0\"",
		"key: net.ipv4..x\nvalue: \"0\"",
		"key: net.ipv4.ip_forward",
		"key: net.ipv4.ip_forward\nvalue: \"0\"\nruntime: false\npersisted: false",
		"key: net.ipv4.ip_forward\nvalue: \"0\"\npersistFile: /etc/other.conf",
		"key: net.ipv4.ip_forward\nvalue: \"0\"\npersistFile: /etc/sysctl.d/x",
	} {
		if _, err := tryResource("sysctl", body); err == nil {
			t.Errorf("%q: compiled, want an error", body)
		}
	}
}

// The live system's runtime values are read from /proc (read only).
func TestSysctlLiveRead(t *testing.T) {
	if _, err := os.Stat("/proc/sys/kernel/ostype"); err != nil {
		t.Skip("no /proc/sys on this host")
	}
	env, err := NewEnv("/", EnvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	for _, c := range []struct {
		body      string
		compliant bool
	}{
		{"key: kernel.ostype\nvalue: Linux\npersisted: false", true},
		{"key: kernel.ostype\nvalue: Plan9\npersisted: false", false},
		{"key: kernel.no_such_parameter_arcagent\nvalue: \"1\"\npersisted: false", false},
	} {
		obs, err := oneResource(t, "sysctl", c.body).Test(context.Background(), env)
		if err != nil {
			t.Fatal(err)
		}
		if obs.Compliant != c.compliant {
			t.Errorf("%q: compliant %v (%s), want %v", c.body, obs.Compliant, obs.Reason, c.compliant)
		}
	}
}
