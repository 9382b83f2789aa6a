package audit

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/reports"
	"github.com/arcagent/arcagent/rules"
)

// Remediations are written for the live host. adaptRemedy rewrites one for
// the target actually audited, so that pasting it changes that target and
// nothing else:
//
//   - --root DIR: `arcagent config|package|trust|connect|show …` gains
//     `--root DIR`, absolute paths of the layout are taken under DIR,
//     `systemctl edit|revert` and `gpasswd` act on the tree (--root, -R)
//     and a `systemctl restart` is said to be for the machine running it;
//   - --config FILE: `arcagent config set KEY VALUE` becomes
//     `edit FILE: set "KEY" to VALUE` (VALUE in JSON), --add/--remove
//     become add/remove, since the planned file is not a machine's config.
func adaptRemedy(text string, t reports.Target, ids map[string]string) string {
	switch t.Kind {
	case reports.TargetRoot:
		if t.Root == "" || t.Root == "/" {
			return text
		}
		// chown by the tree's own numeric ids: this host's names may map to
		// other ids than the image's.
		text = chownRE().ReplaceAllStringFunc(text, func(m string) string {
			sm := chownRE().FindStringSubmatch(m)
			user, group := sm[2], sm[3]
			uid, okU := ids["user:"+user]
			if !okU {
				return m
			}
			out := "chown " + sm[1] + uid
			if group != "" {
				gid, okG := ids["group:"+group]
				if !okG {
					return m
				}
				out += ":" + gid
			}
			return out + " "
		})
		text = absPathRE().ReplaceAllStringFunc(text, func(m string) string {
			i := strings.IndexByte(m, '/')
			return m[:i] + shellWord(t.Root) + m[i:]
		})
		r := shellWord(t.Root)
		text = arcagentVerbRE().ReplaceAllString(text, "arcagent --root "+r+" $1")
		// Unit files and groups of the tree, not of this host.
		text = systemctlFileRE().ReplaceAllString(text, "systemctl --root "+r+" $1")
		text = gpasswdRE().ReplaceAllString(text, "gpasswd -R "+r+" ")
		return systemctlRestartRE().ReplaceAllString(text, "on the machine that runs this tree: systemctl restart $1")
	case reports.TargetPlanned:
		return configSetRE().ReplaceAllStringFunc(text, func(m string) string {
			return plannedEdit(t.Planned, configSetRE().FindStringSubmatch(m))
		})
	}
	return text
}

var (
	// arcagentVerbRE finds the local verbs that act on the root's files.
	arcagentVerbRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`\barcagent (config|package|trust|connect|show|extension)\b`)
	})
	// absPathRE finds absolute paths of the layout at the start of a word.
	absPathRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?:^|[\s"'=(])/(?:etc|opt|var|usr|home|root|srv|tmp|run|mnt|boot)(?:/[^\s"';,)]*)?`)
	})
	// systemctlFileRE are the systemctl verbs that work on a tree's unit
	// files; systemctlRestartRE a restart, which only a running machine can do.
	systemctlFileRE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\bsystemctl (edit|revert)\b`) })
	systemctlRestartRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^systemctl restart (.+)$`) })
	gpasswdRE          = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\bgpasswd `) })
	// chownRE is a chown of a user and optional group named in letters.
	chownRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`\bchown (-R )?([a-z_][a-z0-9_-]*)(?::([a-z_][a-z0-9_-]*))? `)
	})
	// configSetRE is one `arcagent config set` command: key, flag, value.
	configSetRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`arcagent config set ([A-Za-z0-9_.]+)(?: (--add|-a|--remove|-r))? ("[^"]*"|[^\s"]+)`)
	})
)

// plannedEdit words a config set command as an edit of the planned file.
func plannedEdit(file string, m []string) string {
	key, flag, raw := m[1], m[2], strings.Trim(m[3], `"`)
	p, known := config.Lookup(key)
	if known {
		key = p.Name
	}
	var vals []string
	for v := range strings.SplitSeq(raw, ",") {
		if v = strings.TrimSpace(v); v != "" {
			vals = append(vals, v)
		}
	}
	q := strconv.Quote(key)
	switch flag {
	case "--add", "-a":
		return "edit " + file + ": add " + quoteAll(vals) + " to the " + q + " list"
	case "--remove", "-r":
		return "edit " + file + ": remove " + quoteAll(vals) + " from the " + q + " list"
	}
	var v any = raw
	switch {
	case known && p.Type.IsList():
		if vals == nil {
			vals = []string{}
		}
		v = vals
	case known && p.Type == config.TypeBool:
		if b, err := strconv.ParseBool(raw); err == nil {
			v = b
		}
	case known && p.Type == config.TypeInt:
		if n, err := strconv.Atoi(raw); err == nil {
			v = n
		}
	}
	b, _ := json.Marshal(v)
	return "edit " + file + ": set " + q + " to " + strings.ReplaceAll(string(b), `","`, `", "`)
}

func quoteAll(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

// shellWord quotes s for a POSIX shell when it needs it.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-+:@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// plannedLocation is the planned file as given on the command line, as a
// report location: relative to the working directory (so CI annotates the
// file in the pull request), slash-separated.
func plannedLocation(given string) string {
	p := given
	if filepath.IsAbs(p) {
		if wd, err := filepath.Abs("."); err == nil {
			if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
				p = rel
			}
		}
	}
	return filepath.ToSlash(filepath.Clean(p))
}

// PreviewRemediation is rule r's remediation as an audit of a fresh Linux
// machine (no agent installed) would print it: what `arcagent rules show`
// displays, with the ${expr} parts of the rule evaluated.
func PreviewRemediation(ctx context.Context, r rules.Rule) string {
	set, err := rules.Compile([]rules.Rule{r})
	if err != nil {
		return r.Remediation
	}
	dir, err := os.MkdirTemp("", "arcagent-preview-")
	if err != nil {
		return r.Remediation
	}
	defer os.RemoveAll(dir)
	f, err := Collect(ctx, Options{Root: dir})
	if err != nil {
		return r.Remediation
	}
	doc, err := factsDocument(f)
	if err != nil {
		return r.Remediation
	}
	fix, _ := set.Rules[0].RenderRemediation(ctx, doc)
	return fix
}
