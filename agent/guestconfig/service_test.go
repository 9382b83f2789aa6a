package guestconfig

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// unitRoot is a fixture root with unit files and links as a Debian system
// has them.
func unitRoot(t *testing.T) string {
	t.Helper()
	root := testRoot(t, map[string]string{
		"usr/lib/systemd/system/ssh.service":     "[Unit]\nDescription=OpenBSD Secure Shell server\n[Service]\nExecStart=/usr/sbin/sshd -D\n[Install]\nWantedBy=multi-user.target\n",
		"usr/lib/systemd/system/telnet.socket":   "[Socket]\nListenStream=23\n[Install]\nWantedBy=sockets.target\n",
		"lib/systemd/system/static.service":      "[Service]\nExecStart=/bin/true\n",
		"usr/lib/systemd/system/rpcbind.service": "[Service]\nExecStart=/sbin/rpcbind\n[Install]\nWantedBy=multi-user.target\n",
		"usr/lib/systemd/system/getty@.service":  "[Service]\nExecStart=-/sbin/agetty %I\n[Install]\nWantedBy=getty.target\n",
	}, nil)
	for p, target := range map[string]string{
		"etc/systemd/system/sockets.target.wants/telnet.socket":    "/usr/lib/systemd/system/telnet.socket",
		"etc/systemd/system/rpcbind.service":                       "/dev/null",
		"etc/systemd/system/getty.target.wants/getty@tty1.service": "/usr/lib/systemd/system/getty@.service",
	} {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, full); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestService(t *testing.T) {
	cases := []struct {
		name      string
		body      string
		compliant bool
		reason    string
		evidence  map[string]string
		links     map[string]string // after set: link -> target ("" : must not exist)
		setErr    string
	}{
		{
			name:     "enable a disabled unit",
			body:     "unit: ssh.service\nenabled: true",
			reason:   "is disabled, want enabled",
			evidence: map[string]string{"unitFile": "/usr/lib/systemd/system/ssh.service", "install": "multi-user.target.wants"},
			links:    map[string]string{"etc/systemd/system/multi-user.target.wants/ssh.service": "/usr/lib/systemd/system/ssh.service"},
		},
		{
			name:   "disable and mask an enabled socket",
			body:   "unit: telnet.socket\nenabled: false\nmasked: true",
			reason: "masked is false, want true; is enabled (/etc/systemd/system/sockets.target.wants/telnet.socket), want disabled",
			links:  map[string]string{"etc/systemd/system/sockets.target.wants/telnet.socket": "", "etc/systemd/system/telnet.socket": "/dev/null"},
		},
		{
			name:     "unmask",
			body:     "unit: rpcbind.service\nmasked: false",
			reason:   "masked is true, want false",
			evidence: map[string]string{"maskedBy": "/etc/systemd/system/rpcbind.service -> /dev/null", "enabled": "masked", "unitFile": "/usr/lib/systemd/system/rpcbind.service"},
			links:    map[string]string{"etc/systemd/system/rpcbind.service": ""},
		},
		{
			name:      "a static unit counts as enabled",
			body:      "unit: static.service\nenabled: true",
			compliant: true,
			evidence:  map[string]string{"enabled": "static", "unitFile": "/lib/systemd/system/static.service"},
		},
		{
			name:      "an enabled template instance",
			body:      "unit: getty@tty1.service\nenabled: true",
			compliant: true,
			evidence:  map[string]string{"enabled": "enabled", "unitFile": "/usr/lib/systemd/system/getty@.service"},
		},
		{
			name:   "enable another instance of the template",
			body:   "unit: getty@tty2.service\nenabled: true",
			reason: "is disabled",
			links:  map[string]string{"etc/systemd/system/getty.target.wants/getty@tty2.service": "/usr/lib/systemd/system/getty@.service"},
		},
		{
			name:      "a missing unit is not enabled",
			body:      "unit: nfs-server.service\nenabled: false",
			compliant: true,
			evidence:  map[string]string{"unitFile": "not found", "enabled": "not-found"},
		},
		{
			name:   "a missing unit cannot be enabled",
			body:   "unit: nfs-server.service\nenabled: true",
			reason: "is not-found, want enabled",
			setErr: "is not installed",
		},
		{
			name:      "activity is not evaluated under a root",
			body:      "unit: ssh.service\nactive: true",
			compliant: true,
			evidence:  map[string]string{"active": "not evaluated: not the live system"},
		},
	}
	modes := []string{"links"}
	if haveSystemctl() {
		modes = append(modes, "systemctl")
	}
	saved := systemctlPath
	defer func() { systemctlPath = saved }()
	for _, mode := range modes {
		systemctlPath = saved
		if mode == "links" {
			systemctlPath = ""
		}
		for _, c := range cases {
			t.Run(mode+"/"+c.name, func(t *testing.T) {
				root := unitRoot(t)
				env := writeEnv(t, root)
				r := oneResource(t, "service", c.body)
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
				for p, want := range c.links {
					got, err := os.Readlink(filepath.Join(root, p))
					switch {
					case want == "" && err == nil:
						t.Errorf("%s still links to %s", p, got)
					case want != "" && got != want:
						t.Errorf("%s links to %q (%v), want %q", p, got, err, want)
					}
				}
				// A second set of the compliant unit changes nothing.
				before := treeDigest(t, root)
				if err := r.Set(ctx, env); err != nil {
					t.Fatal(err)
				}
				if treeDigest(t, root) != before {
					t.Fatal("a second set changed the tree")
				}
			})
		}
	}
}

func TestServiceDecode(t *testing.T) {
	for _, body := range []string{
		"unit: ssh\nenabled: true",
		"unit: ../ssh.service\nenabled: true",
		"unit: a/b.service\nenabled: true",
		"unit: ssh.service",
		"unit: ssh.service\nmasked: true\nenabled: true",
		"unit: ssh.service\nenabled: maybe",
	} {
		if _, err := tryResource("service", body); err == nil {
			t.Errorf("%q: compiled, want an error", body)
		}
	}
}

func TestUnitTemplate(t *testing.T) {
	for in, want := range map[string]string{"getty@tty1.service": "getty@.service", "ssh.service": "", "a@.service": "", "x@y.z.timer": "x@.timer"} {
		if got := template(in); got != want {
			t.Errorf("template(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzUnitInstall checks the [Install] reader of unit files: it never
// panics and returns only well-formed .wants/.requires directory names.
func FuzzUnitInstall(f *testing.F) {
	f.Add([]byte("[Unit]\nDescription=x\n[Install]\nWantedBy=multi-user.target graphical.target\nRequiredBy=a.service\nAlias=b.service\n"))
	f.Add([]byte("[Install]\n# WantedBy=no.target\nWantedBy = ../../etc.target\n[Service]\nWantedBy=x.target\n"))
	f.Add([]byte("[Install]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		targets, has := unitInstall(b)
		if len(targets) > 0 && !has {
			t.Fatal("targets without an [Install] section")
		}
		for _, tg := range targets {
			base, ok := strings.CutSuffix(tg, ".wants")
			if !ok {
				base, ok = strings.CutSuffix(tg, ".requires")
			}
			if !ok || !unitRE().MatchString(base) || strings.Contains(tg, "/") {
				t.Fatalf("bad target directory %q", tg)
			}
		}
	})
}
