package audit

import (
	"bufio"
	"bytes"
	"slices"
	"strconv"
	"strings"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/internal/saferead"
)

// accounts are the users and groups of a target, read from its own
// /etc/passwd and /etc/group so that an image is judged by its own ids.
type accounts struct {
	users      map[int]string
	groups     map[int]string
	userIDs    map[string]int
	groupIDs   map[string]int
	primary    map[string]int      // user -> primary gid
	members    map[string][]string // group -> supplementary members
	haveGroups bool
}

func newAccounts() *accounts {
	return &accounts{users: map[int]string{}, groups: map[int]string{}, userIDs: map[string]int{}, groupIDs: map[string]int{}, primary: map[string]int{}, members: map[string][]string{}}
}

// readAccounts reads etc/passwd and etc/group of a target through
// saferead (each at most saferead.ConfigLimit bytes).
func readAccounts(root *saferead.Root) (*accounts, error) {
	a := newAccounts()
	pw, err := root.ReadFile("/etc/passwd", saferead.ConfigLimit)
	if err != nil {
		return a, err
	}
	for _, f := range colonLines(pw) {
		if len(f) < 4 {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		if _, dup := a.users[uid]; !dup {
			a.users[uid] = f[0]
		}
		a.userIDs[f[0]] = uid
		a.primary[f[0]] = gid
	}
	gr, err := root.ReadFile("/etc/group", saferead.ConfigLimit)
	if err != nil {
		return a, err
	}
	a.haveGroups = true
	for _, f := range colonLines(gr) {
		if len(f) < 3 {
			continue
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		if _, dup := a.groups[gid]; !dup {
			a.groups[gid] = f[0]
		}
		a.groupIDs[f[0]] = gid
		if len(f) >= 4 && f[3] != "" {
			a.members[f[0]] = strings.Split(f[3], ",")
		}
	}
	return a, nil
}

// readHostAccounts reads the users and groups of the machine running the
// audit.
func readHostAccounts() (*accounts, error) {
	root, err := saferead.Open("/")
	if err != nil {
		return newAccounts(), err
	}
	defer root.Close()
	return readAccounts(root)
}

func colonLines(b []byte) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}

// layoutIDs are the numeric ids of the accounts the layout names, as this
// target knows them ("user:NAME" and "group:NAME" keys).
func (a *accounts) layoutIDs() map[string]string {
	ids := map[string]string{}
	for _, u := range []string{layout.UserRoot, layout.UserHIMDS} {
		if id, ok := a.userIDs[u]; ok {
			ids["user:"+u] = strconv.Itoa(id)
		}
	}
	for _, g := range []string{layout.GroupRoot, layout.GroupHIMDS} {
		if id, ok := a.groupIDs[g]; ok {
			ids["group:"+g] = strconv.Itoa(id)
		}
	}
	return ids
}

func (a *accounts) userName(uid int) string {
	if n, ok := a.users[uid]; ok {
		return n
	}
	return strconv.Itoa(uid)
}

func (a *accounts) groupName(gid int) string {
	if n, ok := a.groups[gid]; ok {
		return n
	}
	return strconv.Itoa(gid)
}

// groupMembers returns every user in group g, by membership or primary gid.
func (a *accounts) groupMembers(g string) ([]string, bool) {
	gid, ok := a.groupIDs[g]
	if !ok {
		return []string{}, false
	}
	set := map[string]bool{}
	for _, m := range a.members[g] {
		if m = strings.TrimSpace(m); m != "" {
			set[m] = true
		}
	}
	for u, pg := range a.primary {
		if pg == gid {
			set[u] = true
		}
	}
	out := make([]string, 0, len(set))
	for u := range set {
		out = append(out, u)
	}
	slices.Sort(out)
	return out, true
}
