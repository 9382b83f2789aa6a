package guestconfig

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const weakSSHD = "# sshd_config\n\tPort 22\n#PermitRootLogin no\nInclude /etc/ssh/sshd_config.d/*.conf\nMaxAuthTries 6\nmaxauthtries 3\nX11Forwarding yes\n\nMatch User backup\n  PermitRootLogin yes\n  MaxAuthTries 2\n"

func TestKeyValue(t *testing.T) {
	cases := []struct {
		name      string
		file      string // content of /etc/f; "" : missing
		body      string
		compliant bool
		reason    string            // substring of the reason
		evidence  map[string]string // substrings of evidence values
		after     string            // the file after set ("" : not checked)
		setErr    string
	}{
		{
			name:     "missing key reads as the built-in default",
			file:     weakSSHD,
			body:     "path: /etc/f\nkey: PermitRootLogin\nvalue: \"no\"\nstopAt: Match\nmissingMeans: prohibit-password",
			reason:   `PermitRootLogin is "prohibit-password", want "no"`,
			evidence: map[string]string{"source": "default", "default": "prohibit-password", "stoppedAt": "line 9", "includesNotFollowed": "line 4: Include /etc/ssh/sshd_config.d/*.conf"},
			after:    strings.Replace(weakSSHD, "\nMatch User", "\nPermitRootLogin no\nMatch User", 1),
		},
		{
			name:     "first occurrence wins, keys case-insensitive, Match ignored",
			file:     weakSSHD,
			body:     "path: /etc/f\nkey: maxAuthTries\nvalue: \"4\"\ncompare: max\nstopAt: Match",
			reason:   "MaxAuthTries is 6, want at most 4",
			evidence: map[string]string{"line": "5", "raw": "MaxAuthTries 6", "occurrences": "2 (the first wins)"},
			after:    strings.Replace(weakSSHD, "MaxAuthTries 6", "MaxAuthTries 4", 1),
		},
		{
			name:      "the include after the key is not reported",
			file:      "MaxAuthTries 3\nInclude /x\n",
			body:      "path: /etc/f\nkey: MaxAuthTries\nvalue: \"4\"\ncompare: max",
			compliant: true,
			evidence:  map[string]string{"includesNotFollowed": "", "value": "3"},
		},
		{
			name:     "last wins for login.defs, rewritten in place keeping tabs",
			file:     "# login.defs\nPASS_MAX_DAYS\t30\nPASS_MAX_DAYS\t99999  \nUMASK 022\n",
			body:     "path: /etc/f\nkey: PASS_MAX_DAYS\nvalue: \"365\"\ncompare: max\nfirstWins: false",
			reason:   "PASS_MAX_DAYS is 99999, want at most 365",
			evidence: map[string]string{"line": "3"},
			after:    "# login.defs\nPASS_MAX_DAYS\t30\nPASS_MAX_DAYS\t365  \nUMASK 022\n",
		},
		{
			name:   "min",
			file:   "PASS_MIN_LEN 5\n",
			body:   "path: /etc/f\nkey: PASS_MIN_LEN\nvalue: \"14\"\ncompare: min",
			reason: "is 5, want at least 14",
			after:  "PASS_MIN_LEN 14\n",
		},
		{
			name:   "non-numeric value against max",
			file:   "MaxAuthTries lots\n",
			body:   "path: /etc/f\nkey: MaxAuthTries\nvalue: \"4\"\ncompare: max",
			reason: "not an integer",
			after:  "MaxAuthTries 4\n",
		},
		{
			name:   "oneOf",
			file:   "PermitRootLogin yes\n",
			body:   "path: /etc/f\nkey: PermitRootLogin\nvalue: no, prohibit-password\ncompare: oneOf",
			reason: "want one of no, prohibit-password",
			after:  "PermitRootLogin no\n",
		},
		{
			name:      "oneOf satisfied, values whitespace-normalised",
			file:      "Ciphers   aes256-gcm@openssh.com\n",
			body:      "path: /etc/f\nkey: Ciphers\nvalue: aes128-ctr,aes256-gcm@openssh.com\ncompare: oneOf",
			compliant: true,
		},
		{
			name:   "sshd Key=value form",
			file:   "PermitEmptyPasswords = yes\n",
			body:   "path: /etc/f\nkey: PermitEmptyPasswords\nvalue: \"no\"",
			reason: `is "yes"`,
			after:  "PermitEmptyPasswords = no\n",
		},
		{
			name:  "key without a value gets a separator",
			file:  "Banner\n",
			body:  "path: /etc/f\nkey: Banner\nvalue: /etc/issue.net",
			after: "Banner /etc/issue.net\n",
		},
		{
			name:     "= separator keeps quotes, case-sensitive keys",
			file:     "# grub\ngrub_timeout=1\nGRUB_TIMEOUT=\"5\"\n",
			body:     "path: /etc/f\nkey: GRUB_TIMEOUT\nvalue: \"0\"\nseparator: \"=\"\nfirstWins: false",
			reason:   `is "5"`,
			evidence: map[string]string{"line": "3"},
			after:    "# grub\ngrub_timeout=1\nGRUB_TIMEOUT=\"0\"\n",
		},
		{
			name:   "= separator appends, ; comments ignored",
			file:   "; net.ipv4.ip_forward=1\nkernel.x = 2",
			body:   "path: /etc/f\nkey: net.ipv4.ip_forward\nvalue: \"0\"\nseparator: \"=\"",
			reason: "is not set",
			after:  "; net.ipv4.ip_forward=1\nkernel.x = 2\nnet.ipv4.ip_forward=0\n",
		},
		{
			name:   "absent key set",
			file:   "X11Forwarding yes\nx11forwarding no\nMatch all\nX11Forwarding yes\n",
			body:   "path: /etc/f\nkey: X11Forwarding\nstate: absent\nstopAt: Match",
			reason: "is set",
			after:  "# X11Forwarding yes # disabled by arcagent guest configuration\n# x11forwarding no # disabled by arcagent guest configuration\nMatch all\nX11Forwarding yes\n",
		},
		{
			name:      "absent key in a missing file",
			body:      "path: /etc/f\nkey: X11Forwarding\nstate: absent",
			compliant: true,
			evidence:  map[string]string{"exists": "false"},
		},
		{
			name:   "missing file without create",
			body:   "path: /etc/f\nkey: A\nvalue: b",
			reason: "/etc/f does not exist",
			setErr: "create: true",
		},
		{
			name:   "missing file with create",
			body:   "path: /etc/f\nkey: A\nvalue: b\ncreate: true",
			reason: "/etc/f does not exist",
			after:  "A b\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{}
			if c.file != "" {
				files["etc/f"] = c.file
			}
			root := testRoot(t, files, map[string]os.FileMode{"etc/f": 0o600})
			env := writeEnv(t, root)
			r := oneResource(t, "keyvalue", c.body)
			ctx := context.Background()
			obs, err := r.Test(ctx, env)
			if err != nil {
				t.Fatal(err)
			}
			if obs.Compliant != c.compliant || !strings.Contains(obs.Reason, c.reason) {
				t.Fatalf("compliant %v reason %q, want %v %q (evidence %v)", obs.Compliant, obs.Reason, c.compliant, c.reason, obs.Evidence)
			}
			for k, want := range c.evidence {
				got, ok := obs.Evidence[k]
				if want == "" && ok {
					t.Errorf("evidence %s = %q, want none", k, got)
				} else if want != "" && !strings.Contains(got, want) {
					t.Errorf("evidence %s = %q, want %q", k, got, want)
				}
			}
			if c.compliant {
				return
			}
			if c.setErr != "" {
				if err := r.Set(ctx, env); err == nil || !strings.Contains(err.Error(), c.setErr) {
					t.Fatalf("set error %v, want %q", err, c.setErr)
				}
				return
			}
			testSetRetest(t, env, r)
			got := readFixture(t, root, "etc/f")
			if c.after != "" && got != c.after {
				t.Fatalf("after set:\n%q\nwant\n%q", got, c.after)
			}
			fi, err := os.Stat(filepath.Join(root, "etc/f"))
			if err != nil {
				t.Fatal(err)
			}
			wantMode := os.FileMode(0o600)
			if c.file == "" {
				wantMode = 0o644
			}
			if fi.Mode().Perm() != wantMode {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), wantMode)
			}
			// A second set of a compliant resource changes nothing.
			if err := r.Set(ctx, env); err != nil {
				t.Fatal(err)
			}
			if again := readFixture(t, root, "etc/f"); again != got {
				t.Fatalf("second set changed the file:\n%q", again)
			}
		})
	}
}

func TestKeyValueDecode(t *testing.T) {
	for _, body := range []string{
		"path: etc/f\nkey: A\nvalue: b",
		"path: /etc/f\nkey: A B\nvalue: b",
		"path: /etc/f\nkey: A\nvalue: b\nseparator: \":\"",
		"path: /etc/f\nkey: A",
		"path: /etc/f\nkey: A\nstate: absent\nvalue: b",
		"path: /etc/f\nkey: A\nvalue: many\ncompare: max",
		"path: /etc/f\nkey: A\nvalue: b\ncompare: regex",
		"path: /etc/f\nkey: A=B\nvalue: b\nseparator: \"=\"",
		"path: /etc/f\nkey: A\nvalue: b\nunknown: 1",
	} {
		if _, err := tryResource("keyvalue", body); err == nil {
			t.Errorf("%q: compiled, want an error", body)
		}
	}
}

// An Audit-mode Env (no backups) refuses to write and leaves the file.
func TestKeyValueReadOnly(t *testing.T) {
	root := testRoot(t, map[string]string{"etc/f": "A c\n"}, nil)
	env, err := NewEnv(root, EnvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	r := oneResource(t, "keyvalue", "path: /etc/f\nkey: A\nvalue: b")
	if err := r.Set(context.Background(), env); err == nil {
		t.Fatal("set succeeded without a backup directory")
	}
	if got := readFixture(t, root, "etc/f"); got != "A c\n" {
		t.Fatalf("file changed: %q", got)
	}
}
