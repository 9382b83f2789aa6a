package guestconfig

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/arcagent/arcagent/errcode"
)

func init() {
	Register("user", decodeUser)
	Register("group", decodeGroup)
}

// accountNameRE is what useradd/groupadd accept by default (a trailing $
// for machine accounts).
var accountNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}\$?$`) })

// toolDirs are where the shadow tools are looked for (the PATH Env.Run
// gives commands).
var toolDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// accountTool runs one of the shadow suite's tools (useradd, usermod,
// userdel, groupadd, groupmod, groupdel, gpasswd) on the target: with
// --root ROOT (the tools chroot into it) unless the target is the live
// system; a non-live root only when EnvOptions.TrustedTree vouches for it.
// A missing tool or a non-zero exit is an error.
func accountTool(ctx context.Context, env *Env, tool string, args ...string) error {
	if !env.CanWrite() {
		return errcode.New(CodeResource, "refusing to run %s: this evaluation may not change the target (Audit mode)", tool)
	}
	if !env.Live() && !env.o.TrustedTree {
		return errcode.New(CodeResource, "%s: user and group changes need the live system (the target is the root %s): in a tree the shadow tools chroot into it and run its own programs as root (its nscd, sss_cache, login.defs USERDEL_CMD, NSS and PAM modules), so a tree someone else built would run code as root on this host; change the accounts in the image itself", tool, env.Root())
	}
	bin := ""
	for _, d := range toolDirs {
		if fi, err := os.Stat(path.Join(d, tool)); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			bin = path.Join(d, tool)
			break
		}
	}
	if bin == "" {
		return errcode.New(CodeResource, "%s is not installed on this host (it is in the shadow suite: package passwd on Debian and Ubuntu, shadow-utils on RHEL); install it or leave user and group resources out", tool)
	}
	if !env.Live() {
		args = append([]string{"--root", env.Root()}, args...)
	}
	res, err := env.Run(ctx, Command{Path: bin, Args: args})
	if err != nil {
		return errcode.Wrap(CodeResource, err, "%s", tool)
	}
	if res.ExitCode != 0 {
		return errcode.New(CodeResource, "%s %s exited %d%s", tool, strings.Join(args, " "), res.ExitCode, stderrHint(res.Stderr))
	}
	return nil
}

func checkAccountName(kind, name string) error {
	if !accountNameRE().MatchString(name) {
		return fmt.Errorf("%s name %q: use lower-case letters, digits, _ . - (at most 32, starting with a letter or _)", kind, name)
	}
	return nil
}

func checkState(s *string, what string) error {
	switch *s {
	case "", "present":
		*s = "present"
	case "absent":
	default:
		return fmt.Errorf("state %q: use present or absent", *s)
	}
	_ = what
	return nil
}

func findAccount(as []Account, name string) (Account, bool) {
	for _, a := range as {
		if a.Name == name {
			return a, true
		}
	}
	return Account{}, false
}

// UserSpec is the body of a user resource.
type UserSpec struct {
	Name string `yaml:"name"`
	// State is present (default) or absent.
	State string `yaml:"state"`
	Shell string `yaml:"shell"`
	Home  string `yaml:"home"`
	// Groups are supplementary groups the user must be a member of;
	// ExclusiveGroups means of no other group.
	Groups          []string `yaml:"groups"`
	ExclusiveGroups bool     `yaml:"exclusiveGroups"`
	// Locked: the password field of /etc/shadow starts with "!" or "*".
	Locked *bool `yaml:"locked"`
	UID    *int  `yaml:"uid"`
	// System creates a system account (no home directory).
	System bool `yaml:"system"`
}

type userResource struct{ s UserSpec }

func decodeUser(body *yaml.Node, _ CompileContext) (Resource, error) {
	var s UserSpec
	if err := DecodeBody(body, &s); err != nil {
		return nil, err
	}
	if err := checkAccountName("user", s.Name); err != nil {
		return nil, err
	}
	if err := checkState(&s.State, "user"); err != nil {
		return nil, err
	}
	if s.State == "absent" && (s.Shell != "" || s.Home != "" || s.Groups != nil || s.ExclusiveGroups || s.Locked != nil || s.UID != nil || s.System) {
		return nil, errors.New("state absent takes only name")
	}
	for _, p := range []struct{ what, v string }{{"shell", s.Shell}, {"home", s.Home}} {
		if p.v == "" {
			continue
		}
		if err := CheckPath(p.v); err != nil {
			return nil, fmt.Errorf("%s: %w", p.what, err)
		}
		if strings.ContainsAny(p.v, ":\n,") {
			return nil, fmt.Errorf("%s %q may not contain ':', ',' or a newline", p.what, p.v)
		}
	}
	if s.UID != nil && (*s.UID < 0 || *s.UID > 1<<31-2) {
		return nil, fmt.Errorf("uid %d is out of range", *s.UID)
	}
	seen := map[string]bool{}
	for _, g := range s.Groups {
		if err := checkAccountName("group", g); err != nil {
			return nil, fmt.Errorf("groups: %w", err)
		}
		if seen[g] {
			return nil, fmt.Errorf("groups: %s is listed twice", g)
		}
		seen[g] = true
	}
	if s.ExclusiveGroups && s.Groups == nil {
		s.Groups = []string{}
	}
	return &userResource{s: s}, nil
}

// userState is what the target's files say about one user.
type userState struct {
	exists   bool
	acct     Account
	groups   []string // supplementary groups (the user in the member list), sorted
	primary  string   // primary group's name
	password string   // "locked", "no password", "password set", "unknown"
	gs       []Account
}

func passwordState(field string) string {
	switch {
	case strings.HasPrefix(field, "!") || strings.HasPrefix(field, "*"):
		return "locked"
	case field == "":
		return "no password"
	}
	return "password set"
}

func readUser(env *Env, name string, needShadow bool) (userState, error) {
	var st userState
	us, err := env.Accounts(false)
	if err != nil {
		return st, errcode.Wrap(CodeResource, err, "read the target's /etc/passwd")
	}
	st.acct, st.exists = findAccount(us, name)
	if !st.exists {
		return st, nil
	}
	if st.gs, err = env.Accounts(true); err != nil {
		return st, errcode.Wrap(CodeResource, err, "read the target's /etc/group")
	}
	for _, g := range st.gs {
		if g.ID == st.acct.GID && st.primary == "" {
			st.primary = g.Name
		}
		if slices.Contains(g.Members, name) {
			st.groups = append(st.groups, g.Name)
		}
	}
	sort.Strings(st.groups)
	st.password = "unknown"
	b, err := env.ReadFile("/etc/shadow")
	switch {
	case err == nil:
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.SplitN(line, ":", 3)
			if len(f) >= 2 && f[0] == name {
				st.password = passwordState(f[1])
				break
			}
		}
	case needShadow:
		return st, errcode.Wrap(CodeResource, err, "read the target's /etc/shadow (needed to tell whether %s is locked)", name)
	}
	return st, nil
}

func (st userState) evidence(name string) Evidence {
	ev := Evidence{"name": name, "exists": strconv.FormatBool(st.exists)}
	if !st.exists {
		return ev
	}
	ev["uid"] = strconv.Itoa(st.acct.ID)
	ev["gid"] = strconv.Itoa(st.acct.GID)
	if st.primary != "" {
		ev["primaryGroup"] = st.primary
	}
	ev["home"] = st.acct.Home
	ev["shell"] = st.acct.Shell
	ev["groups"] = strings.Join(st.groups, ",")
	// Only the state of the password, never the hash.
	ev["password"] = st.password
	return ev
}

// memberOf: in the group's member list, or the group is the primary one.
func (st userState) memberOf(g string) bool {
	return g == st.primary || slices.Contains(st.groups, g)
}

func (r *userResource) Get(ctx context.Context, env *Env) (Evidence, error) {
	obs, err := r.Test(ctx, env)
	return obs.Evidence, err
}

// diff lists what differs from the desired state.
func (r *userResource) diff(st userState) []string {
	var out []string
	s := r.s
	if s.UID != nil && st.acct.ID != *s.UID {
		out = append(out, fmt.Sprintf("uid is %d, want %d", st.acct.ID, *s.UID))
	}
	if s.Shell != "" && st.acct.Shell != s.Shell {
		out = append(out, fmt.Sprintf("shell is %s, want %s", st.acct.Shell, s.Shell))
	}
	if s.Home != "" && st.acct.Home != s.Home {
		out = append(out, fmt.Sprintf("home is %s, want %s", st.acct.Home, s.Home))
	}
	var missing, extra []string
	for _, g := range s.Groups {
		if !st.memberOf(g) {
			missing = append(missing, g)
		}
	}
	if s.ExclusiveGroups {
		for _, g := range st.groups {
			if !slices.Contains(s.Groups, g) {
				extra = append(extra, g)
			}
		}
	}
	if len(missing) > 0 {
		out = append(out, "not a member of "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		out = append(out, "also a member of "+strings.Join(extra, ", "))
	}
	if s.Locked != nil {
		locked := st.password == "locked"
		if locked != *s.Locked {
			want := map[bool]string{true: "locked", false: "unlocked"}[*s.Locked]
			out = append(out, fmt.Sprintf("password is %s, want %s", st.password, want))
		}
	}
	return out
}

func (r *userResource) Test(_ context.Context, env *Env) (Observation, error) {
	st, err := readUser(env, r.s.Name, r.s.Locked != nil)
	ev := st.evidence(r.s.Name)
	if err != nil {
		return Observation{Evidence: ev}, err
	}
	switch {
	case r.s.State == "absent" && st.exists:
		return Observation{Reason: "user " + r.s.Name + " exists, want absent", Evidence: ev}, nil
	case r.s.State == "absent":
		return Observation{Compliant: true, Evidence: ev}, nil
	case !st.exists:
		return Observation{Reason: "user " + r.s.Name + " does not exist", Evidence: ev}, nil
	}
	if d := r.diff(st); len(d) > 0 {
		return Observation{Reason: "user " + r.s.Name + ": " + strings.Join(d, "; "), Evidence: ev}, nil
	}
	return Observation{Compliant: true, Evidence: ev}, nil
}

// Set creates, changes or deletes the user with useradd, usermod and
// userdel, running only what differs. userdel keeps the home directory.
func (r *userResource) Set(ctx context.Context, env *Env) error {
	s := r.s
	st, err := readUser(env, s.Name, false)
	if err != nil {
		return err
	}
	if s.State == "absent" {
		if !st.exists {
			return nil
		}
		return accountTool(ctx, env, "userdel", s.Name)
	}
	for _, g := range s.Groups {
		if _, err := env.LookupID(g, true); err != nil {
			return errcode.Wrap(CodeResource, err, "user %s: group %s does not exist on the target; create it with a group resource placed before this one", s.Name, g)
		}
	}
	if !st.exists {
		args := []string{}
		if s.UID != nil {
			args = append(args, "-u", strconv.Itoa(*s.UID))
		}
		if s.System {
			args = append(args, "-r", "-M")
		} else {
			args = append(args, "-m")
		}
		if s.Shell != "" {
			args = append(args, "-s", s.Shell)
		}
		if s.Home != "" {
			args = append(args, "-d", s.Home)
		}
		if len(s.Groups) > 0 {
			args = append(args, "-G", strings.Join(s.Groups, ","))
		}
		if err := accountTool(ctx, env, "useradd", append(args, s.Name)...); err != nil {
			return err
		}
		if st, err = readUser(env, s.Name, false); err != nil {
			return err
		}
	}
	var args []string
	if s.UID != nil && st.acct.ID != *s.UID {
		args = append(args, "-u", strconv.Itoa(*s.UID))
	}
	if s.Shell != "" && st.acct.Shell != s.Shell {
		args = append(args, "-s", s.Shell)
	}
	if s.Home != "" && st.acct.Home != s.Home {
		args = append(args, "-d", s.Home)
	}
	var missing, extra bool
	for _, g := range s.Groups {
		missing = missing || !st.memberOf(g)
	}
	for _, g := range st.groups {
		extra = extra || (s.ExclusiveGroups && !slices.Contains(s.Groups, g))
	}
	switch {
	case extra:
		args = append(args, "-G", strings.Join(s.Groups, ","))
	case missing:
		args = append(args, "-a", "-G", strings.Join(s.Groups, ","))
	}
	if s.Locked != nil {
		switch locked := st.password == "locked"; {
		case *s.Locked && !locked:
			args = append(args, "-L")
		case !*s.Locked && locked:
			if err := r.canUnlock(env); err != nil {
				return err
			}
			args = append(args, "-U")
		}
	}
	if len(args) == 0 {
		return nil
	}
	return accountTool(ctx, env, "usermod", append(args, s.Name)...)
}

// canUnlock refuses to unlock an account that has no password behind the
// lock: guest configuration never sets passwords.
func (r *userResource) canUnlock(env *Env) error {
	b, err := env.ReadFile("/etc/shadow")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errcode.Wrap(CodeResource, err, "read the target's /etc/shadow")
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) >= 2 && f[0] == r.s.Name {
			if h := strings.TrimLeft(f[1], "!"); h == "" || strings.HasPrefix(h, "*") {
				return errcode.New(CodeResource, "user %s has no password behind the lock, so unlocking would leave it without one or keep it unusable; set a password (passwd %s) first: guest configuration never sets passwords", r.s.Name, r.s.Name)
			}
			return nil
		}
	}
	return errcode.New(CodeResource, "user %s has no entry in the target's /etc/shadow to unlock", r.s.Name)
}

// GroupSpec is the body of a group resource.
type GroupSpec struct {
	Name  string `yaml:"name"`
	State string `yaml:"state"`
	GID   *int   `yaml:"gid"`
	// Members is the exact member list; MembersInclude users that must be
	// members (others allowed). At most one of them.
	Members        *[]string `yaml:"members"`
	MembersInclude []string  `yaml:"membersInclude"`
	// System creates a system group.
	System bool `yaml:"system"`
}

type groupResource struct{ s GroupSpec }

func decodeGroup(body *yaml.Node, _ CompileContext) (Resource, error) {
	var s GroupSpec
	if err := DecodeBody(body, &s); err != nil {
		return nil, err
	}
	if err := checkAccountName("group", s.Name); err != nil {
		return nil, err
	}
	if err := checkState(&s.State, "group"); err != nil {
		return nil, err
	}
	if s.State == "absent" && (s.GID != nil || s.Members != nil || s.MembersInclude != nil || s.System) {
		return nil, errors.New("state absent takes only name")
	}
	if s.Members != nil && s.MembersInclude != nil {
		return nil, errors.New("give members (the exact set) or membersInclude, not both")
	}
	if s.GID != nil && (*s.GID < 0 || *s.GID > 1<<31-2) {
		return nil, fmt.Errorf("gid %d is out of range", *s.GID)
	}
	lists := s.MembersInclude
	if s.Members != nil {
		lists = *s.Members
	}
	seen := map[string]bool{}
	for _, m := range lists {
		if err := checkAccountName("user", m); err != nil {
			return nil, fmt.Errorf("members: %w", err)
		}
		if seen[m] {
			return nil, fmt.Errorf("members: %s is listed twice", m)
		}
		seen[m] = true
	}
	return &groupResource{s: s}, nil
}

func (r *groupResource) read(env *Env) (Account, bool, error) {
	gs, err := env.Accounts(true)
	if err != nil {
		return Account{}, false, errcode.Wrap(CodeResource, err, "read the target's /etc/group")
	}
	g, ok := findAccount(gs, r.s.Name)
	return g, ok, nil
}

// wantMembers is the member list Set writes (nil: members are not managed).
func (r *groupResource) wantMembers(have []string) []string {
	switch {
	case r.s.Members != nil:
		return *r.s.Members
	case r.s.MembersInclude != nil:
		out := slices.Clone(have)
		for _, m := range r.s.MembersInclude {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
		return out
	}
	return nil
}

func (r *groupResource) Get(ctx context.Context, env *Env) (Evidence, error) {
	obs, err := r.Test(ctx, env)
	return obs.Evidence, err
}

func (r *groupResource) Test(_ context.Context, env *Env) (Observation, error) {
	ev := Evidence{"name": r.s.Name}
	g, ok, err := r.read(env)
	if err != nil {
		return Observation{Evidence: ev}, err
	}
	ev["exists"] = strconv.FormatBool(ok)
	switch {
	case r.s.State == "absent" && ok:
		return Observation{Reason: "group " + r.s.Name + " exists, want absent", Evidence: ev}, nil
	case r.s.State == "absent":
		return Observation{Compliant: true, Evidence: ev}, nil
	case !ok:
		return Observation{Reason: "group " + r.s.Name + " does not exist", Evidence: ev}, nil
	}
	have := slices.Clone(g.Members)
	sort.Strings(have)
	ev["gid"] = strconv.Itoa(g.ID)
	ev["members"] = strings.Join(have, ",")
	var reasons []string
	if r.s.GID != nil && g.ID != *r.s.GID {
		reasons = append(reasons, fmt.Sprintf("gid is %d, want %d", g.ID, *r.s.GID))
	}
	if want := r.wantMembers(g.Members); want != nil {
		var missing, extra []string
		for _, m := range want {
			if !slices.Contains(g.Members, m) {
				missing = append(missing, m)
			}
		}
		if r.s.Members != nil {
			for _, m := range have {
				if !slices.Contains(want, m) {
					extra = append(extra, m)
				}
			}
		}
		if len(missing) > 0 {
			reasons = append(reasons, "missing members "+strings.Join(missing, ", "))
		}
		if len(extra) > 0 {
			reasons = append(reasons, "unexpected members "+strings.Join(extra, ", "))
		}
	}
	if len(reasons) > 0 {
		return Observation{Reason: "group " + r.s.Name + ": " + strings.Join(reasons, "; "), Evidence: ev}, nil
	}
	return Observation{Compliant: true, Evidence: ev}, nil
}

// Set creates, changes or deletes the group with groupadd, groupmod,
// groupdel and gpasswd -M, running only what differs.
func (r *groupResource) Set(ctx context.Context, env *Env) error {
	s := r.s
	g, ok, err := r.read(env)
	if err != nil {
		return err
	}
	if s.State == "absent" {
		if !ok {
			return nil
		}
		return accountTool(ctx, env, "groupdel", s.Name)
	}
	if !ok {
		var args []string
		if s.GID != nil {
			args = append(args, "-g", strconv.Itoa(*s.GID))
		}
		if s.System {
			args = append(args, "-r")
		}
		if err := accountTool(ctx, env, "groupadd", append(args, s.Name)...); err != nil {
			return err
		}
		if g, _, err = r.read(env); err != nil {
			return err
		}
	} else if s.GID != nil && g.ID != *s.GID {
		if err := accountTool(ctx, env, "groupmod", "-g", strconv.Itoa(*s.GID), s.Name); err != nil {
			return err
		}
	}
	want := r.wantMembers(g.Members)
	if want == nil {
		return nil
	}
	a, b := slices.Clone(want), slices.Clone(g.Members)
	sort.Strings(a)
	sort.Strings(b)
	if slices.Equal(a, b) {
		return nil
	}
	return accountTool(ctx, env, "gpasswd", "-M", strings.Join(want, ","), s.Name)
}
