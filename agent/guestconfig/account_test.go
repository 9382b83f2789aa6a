package guestconfig

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const fakeHash = "$6$saltsalt$c2VjcmV0aGFzaHZhbHVldGhhdG11c3ROZXZlckFwcGVhcg"

// accountRoot is a target with shadow files: alice has a password, bob is
// locked, carol has none.
func accountRoot(t *testing.T) string {
	t.Helper()
	return testRoot(t, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/bash\n" +
			"alice:x:1001:1001::/home/alice:/bin/bash\n" +
			"bob:x:1002:1002::/home/bob:/bin/sh\n" +
			"carol:x:1003:100::/home/carol:/bin/sh\n",
		"etc/group": "root:x:0:\nusers:x:100:\nalice:x:1001:\nbob:x:1002:\nadm:x:4:alice,bob\nsudo:x:27:alice\nold:x:500:\n",
		"etc/shadow": "root:*:19000:0:99999:7:::\n" +
			"alice:" + fakeHash + ":19000:0:99999:7:::\n" +
			"bob:!" + fakeHash + ":19000:0:99999:7:::\n" +
			"carol::19000:0:99999:7:::\n",
		"etc/gshadow": "root:*::\nusers:*::\nalice:!::\nbob:!::\nadm:*::alice,bob\nsudo:*::alice\nold:!::\n",
	}, map[string]os.FileMode{"etc/shadow": 0o640, "etc/gshadow": 0o640})
}

func accountDoc(typ, body string) string {
	return `apiVersion: arcagent.dev/guestconfig/v1
name: Accounts
version: 1.0.0
resources:
  - id: acct
    ` + typ + `:
` + body
}

func testAccount(t *testing.T, env *Env, typ, body string) Observation {
	t.Helper()
	c := compile(t, accountDoc(typ, body), nil)
	obs, err := c.Resources[0].Resource.Test(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	return obs
}

func TestUserTest(t *testing.T) {
	env, err := NewEnv(accountRoot(t), EnvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	for _, tc := range []struct {
		name, body string
		compliant  bool
		reason     string
		evidence   map[string]string
	}{
		{name: "present", body: "      name: alice\n", compliant: true,
			evidence: map[string]string{"uid": "1001", "groups": "adm,sudo", "password": "password set", "primaryGroup": "alice", "shell": "/bin/bash"}},
		{name: "missing", body: "      name: dave\n", reason: "user dave does not exist", evidence: map[string]string{"exists": "false"}},
		{name: "absent ok", body: "      name: dave\n      state: absent\n", compliant: true},
		{name: "absent but exists", body: "      name: bob\n      state: absent\n", reason: "exists, want absent"},
		{name: "shell home uid", body: "      name: bob\n      shell: /usr/sbin/nologin\n      home: /srv/bob\n      uid: 2000\n",
			reason: "uid is 1002, want 2000; shell is /bin/sh, want /usr/sbin/nologin; home is /home/bob, want /srv/bob"},
		{name: "groups include", body: "      name: bob\n      groups: [adm, bob]\n", compliant: true},
		{name: "groups missing", body: "      name: bob\n      groups: [adm, sudo]\n", reason: "not a member of sudo"},
		{name: "exclusive", body: "      name: alice\n      groups: [adm]\n      exclusiveGroups: true\n", reason: "also a member of sudo"},
		{name: "exclusive none", body: "      name: bob\n      exclusiveGroups: true\n", reason: "also a member of adm"},
		{name: "locked", body: "      name: bob\n      locked: true\n", compliant: true, evidence: map[string]string{"password": "locked"}},
		{name: "not locked", body: "      name: alice\n      locked: true\n", reason: "password is password set, want locked"},
		{name: "no password", body: "      name: carol\n      locked: false\n", compliant: true, evidence: map[string]string{"password": "no password"}},
		{name: "root star is locked", body: "      name: root\n      locked: true\n", compliant: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := testAccount(t, env, "user", tc.body)
			if obs.Compliant != tc.compliant || !strings.Contains(obs.Reason, tc.reason) {
				t.Fatalf("got %v %q, want %v %q", obs.Compliant, obs.Reason, tc.compliant, tc.reason)
			}
			for k, v := range tc.evidence {
				if obs.Evidence[k] != v {
					t.Errorf("evidence %s = %q, want %q (%v)", k, obs.Evidence[k], v, obs.Evidence)
				}
			}
			for k, v := range obs.Evidence {
				if strings.Contains(v, "saltsalt") || strings.Contains(obs.Reason, "saltsalt") {
					t.Fatalf("the password hash leaked into %s", k)
				}
			}
		})
	}
}

func TestAccountDecode(t *testing.T) {
	for _, tc := range []struct{ typ, body, want string }{
		{"user", "      name: Bad Name\n", "user name"},
		{"user", "      name: x\n      state: gone\n", "present or absent"},
		{"user", "      name: x\n      state: absent\n      shell: /bin/sh\n", "only name"},
		{"user", "      name: x\n      shell: bin/sh\n", "absolute"},
		{"user", "      name: x\n      home: /a:b\n", "may not contain"},
		{"user", "      name: x\n      groups: [adm, adm]\n", "twice"},
		{"user", "      name: x\n      uid: -1\n", "out of range"},
		{"user", "      name: x\n      password: secret\n", "password"},
		{"group", "      name: g\n      members: [a]\n      membersInclude: [b]\n", "not both"},
		{"group", "      name: g\n      members: [\"a,b\"]\n", "user name"},
		{"group", "      name: g\n      state: absent\n      gid: 5\n", "only name"},
	} {
		d, err := Parse("t.yaml", []byte(accountDoc(tc.typ, tc.body)))
		if err == nil {
			_, err = Compile(d, nil, CompileContext{})
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: got %v, want %q", tc.typ, tc.body, err, tc.want)
		}
	}
}

func TestGroupTest(t *testing.T) {
	env, err := NewEnv(accountRoot(t), EnvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	for _, tc := range []struct {
		body      string
		compliant bool
		reason    string
	}{
		{"      name: adm\n      gid: 4\n      members: [bob, alice]\n", true, ""},
		{"      name: adm\n      members: [alice]\n", false, "unexpected members bob"},
		{"      name: adm\n      members: []\n", false, "unexpected members alice, bob"},
		{"      name: sudo\n      membersInclude: [alice]\n", true, ""},
		{"      name: sudo\n      membersInclude: [carol]\n", false, "missing members carol"},
		{"      name: sudo\n      gid: 28\n", false, "gid is 27, want 28"},
		{"      name: wheel\n", false, "does not exist"},
		{"      name: wheel\n      state: absent\n", true, ""},
	} {
		obs := testAccount(t, env, "group", tc.body)
		if obs.Compliant != tc.compliant || !strings.Contains(obs.Reason, tc.reason) {
			t.Errorf("%q: got %v %q, want %v %q", tc.body, obs.Compliant, obs.Reason, tc.compliant, tc.reason)
		}
	}
}

// needShadowTools skips unless this is root with the shadow suite: the
// tools run with --root on a fixture tree, never on this host's accounts.
func needShadowTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (useradd --root chroots)")
	}
	for _, tool := range []string{"useradd", "usermod", "userdel", "groupadd", "groupmod", "groupdel", "gpasswd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
}

func hostAccounts(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{"/etc/passwd", "/etc/group"} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func TestAccountSet(t *testing.T) {
	needShadowTools(t)
	ctx := context.Background()
	before := hostAccounts(t)
	root := accountRoot(t)
	env, err := NewEnv(root, EnvOptions{BackupDir: t.TempDir(), TrustedTree: true})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()

	doc := `apiVersion: arcagent.dev/guestconfig/v1
name: Accounts
version: 1.0.0
resources:
  - id: ops-group
    group:
      name: ops
      gid: 3000
  - id: svc
    user:
      name: svc
      uid: 3001
      system: true
      shell: /usr/sbin/nologin
      groups: [ops]
      locked: true
  - id: alice-groups
    user:
      name: alice
      shell: /bin/sh
      groups: [adm, ops]
      exclusiveGroups: true
  - id: bob-locked
    user:
      name: bob
      locked: true
  - id: carol-gone
    user:
      name: carol
      state: absent
  - id: ops-members
    group:
      name: ops
      members: [alice, bob, svc]
  - id: sudo-include
    group:
      name: sudo
      membersInclude: [bob]
  - id: adm-gid
    group:
      name: adm
      gid: 40
  - id: old-gone
    group:
      name: old
      state: absent
`
	c := compile(t, doc, nil)
	rep := Evaluate(ctx, env, c, EvalOptions{Mode: ApplyAndAutoCorrect})
	for _, r := range rep.Resources {
		if r.Compliance != Compliant {
			t.Errorf("%s: %s %s", r.ID, r.Compliance, r.Reason)
		}
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	for _, want := range []string{"svc:x:3001:", "alice:x:1001:1001::/home/alice:/bin/sh"} {
		if !strings.Contains(string(passwd), want) {
			t.Errorf("passwd lacks %q:\n%s", want, passwd)
		}
	}
	if strings.Contains(string(passwd), "carol:") {
		t.Error("carol was not removed")
	}
	for _, want := range []string{"ops:x:3000:alice,bob,svc", "adm:x:40:alice", "sudo:x:27:bob\n"} {
		if !strings.Contains(string(group), want) {
			t.Errorf("group lacks %q:\n%s", want, group)
		}
	}
	if strings.Contains(string(group), "old:") {
		t.Error("old was not removed")
	}
	// Idempotent: a second pass changes nothing.
	rep = Evaluate(ctx, env, c, EvalOptions{Mode: ApplyAndAutoCorrect})
	for _, r := range rep.Resources {
		if r.Compliance != Compliant || r.Changed {
			t.Errorf("second pass %s: %s changed=%v %s", r.ID, r.Compliance, r.Changed, r.Reason)
		}
	}
	if hostAccounts(t) != before {
		t.Fatal("this host's /etc/passwd or /etc/group changed")
	}
}

func TestUserUnlockWithoutPassword(t *testing.T) {
	needShadowTools(t)
	env, err := NewEnv(accountRoot(t), EnvOptions{BackupDir: t.TempDir(), TrustedTree: true})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	c := compile(t, accountDoc("user", "      name: root\n      locked: false\n"), nil)
	err = c.Resources[0].Resource.Set(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), "never sets passwords") {
		t.Fatalf("unlock without password: %v", err)
	}
	// Unlocking bob (a hash behind the lock) works.
	c = compile(t, accountDoc("user", "      name: bob\n      locked: false\n"), nil)
	rep := Evaluate(context.Background(), env, c, EvalOptions{Mode: ApplyAndAutoCorrect})
	if r := rep.Resources[0]; r.Compliance != Compliant || !r.Changed {
		t.Fatalf("unlock bob: %+v", r)
	}
}

func TestAccountSetReadOnly(t *testing.T) {
	env, err := NewEnv(accountRoot(t), EnvOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	c := compile(t, accountDoc("user", "      name: dave\n"), nil)
	if err := c.Resources[0].Resource.Set(context.Background(), env); err == nil || !strings.Contains(err.Error(), "Audit") {
		t.Fatalf("set on a read-only env: %v", err)
	}
}

func TestUserExclusiveNoGroups(t *testing.T) {
	needShadowTools(t)
	root := accountRoot(t)
	env, err := NewEnv(root, EnvOptions{BackupDir: t.TempDir(), TrustedTree: true})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	c := compile(t, accountDoc("user", "      name: alice\n      exclusiveGroups: true\n"), nil)
	rep := Evaluate(context.Background(), env, c, EvalOptions{Mode: ApplyAndAutoCorrect})
	if r := rep.Resources[0]; r.Compliance != Compliant || !r.Changed || r.Evidence["groups"] != "" {
		t.Fatalf("exclusive with no groups: %+v", r)
	}
	group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	if !strings.Contains(string(group), "adm:x:4:bob\n") || !strings.Contains(string(group), "sudo:x:27:\n") {
		t.Fatalf("group file:\n%s", group)
	}
}

// TestAccountToolsRefusedInForeignTree: the shadow tools chroot into a
// non-live root and run, as root, what the tree holds (its /usr/sbin/nscd
// and sss_cache after every change, its login.defs USERDEL_CMD, its NSS and
// PAM modules), and root escapes a chroot: a tree someone else built gets
// root on this host. They run only on a tree the caller vouches for
// (EnvOptions.TrustedTree).
func TestAccountToolsRefusedInForeignTree(t *testing.T) {
	needShadowTools(t)
	root := accountRoot(t)
	if err := os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Planted by the tree's author: were it run, it would leave a marker.
	if err := os.WriteFile(filepath.Join(root, "usr/sbin/nscd"), []byte("#!/bin/sh\necho ran > /pwned\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env, err := NewEnv(root, EnvOptions{BackupDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	for _, body := range []string{"      name: dave\n", "      name: alice\n      shell: /bin/sh\n"} {
		c := compile(t, accountDoc("user", body), nil)
		err := c.Resources[0].Resource.Set(context.Background(), env)
		if err == nil || !strings.Contains(err.Error(), "live system") {
			t.Errorf("%q: set in a foreign tree: %v", body, err)
		}
	}
	c := compile(t, accountDoc("group", "      name: ops\n"), nil)
	if err := c.Resources[0].Resource.Set(context.Background(), env); err == nil {
		t.Error("group set in a foreign tree ran")
	}
	if _, err := os.Stat(filepath.Join(root, "pwned")); err == nil {
		t.Fatal("the tree's own nscd ran as root")
	}
}
