package audit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/arcagent/arcagent/agent/layout"
)

// DefaultSecretPlaces are where onboarding credentials are left behind:
// the `arcagent connect --config FILE` files that the README tells people
// to delete, scripts, and shell history.
var DefaultSecretPlaces = []string{"/root", "/home/*", "/tmp", "/var/tmp", "/etc/arcagent", "/opt/azcmagent", "/var/opt/azcmagent"}

// Scan limits keep the collector fast and bounded on any host.
const (
	secretMaxDepth = 2
	secretMaxFiles = 20000
	secretMaxSize  = 1 << 20
)

// secretPatterns match a credential with a value, never a mention of one.
// The value is never recorded.
var secretPatterns = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"onboarding-token", regexp.MustCompile(`(?i)--onboarding-token[= ]+["']?[A-Za-z0-9._~+/=-]{8,}`)},
	{"onboarding-token", regexp.MustCompile(`(?i)["']?onboarding[-_]?token["']?\s*[:=]\s*["']?[A-Za-z0-9._~+/=-]{8,}`)},
	{"service-principal-secret", regexp.MustCompile(`(?i)--service-principal-secret[= ]+["']?\S{8,}`)},
	{"service-principal-secret", regexp.MustCompile(`(?i)["']?service[-_]?principal[-_]?secret["']?\s*[:=]\s*["']?[^\s"']{8,}`)},
	{"access-token", regexp.MustCompile(`(?i)(azcmagent|arcagent)\s+connect\b.*--access-token[= ]+["']?\S{8,}`)},
}

// skipDirs are never descended into: caches and the machine's own keys.
var skipDirs = map[string]bool{layout.CertsDir: true, layout.TokensDir: true, layout.TrustDir: true}

func (c *collector) collectSecrets(ctx context.Context) {
	sf := &c.facts.Secrets
	sf.Found = []SecretFact{}
	places := c.opts.SecretPlaces
	if places == nil {
		places = DefaultSecretPlaces
	}
	sf.Places = append([]string{}, places...)
	for _, pl := range places {
		matches, _ := filepath.Glob(c.l.Path(pl))
		sort.Strings(matches)
		for _, m := range matches {
			c.scanSecrets(ctx, m, 0)
		}
	}
	sf.Available = true
	if sf.Scanned >= secretMaxFiles {
		c.errorf("secrets", "", "stopped after %d files; credentials in other files were not looked for", secretMaxFiles)
	}
}

func (c *collector) scanSecrets(ctx context.Context, path string, depth int) {
	sf := &c.facts.Secrets
	if ctx.Err() != nil || sf.Scanned >= secretMaxFiles {
		return
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return
	}
	switch {
	case fi.IsDir():
		if depth > secretMaxDepth || skipDirs[c.l.Prod(path)] {
			return
		}
		ents, err := os.ReadDir(path)
		if err != nil {
			c.errorf("secrets", c.l.Prod(path), "cannot list: %v", err)
			return
		}
		for _, e := range ents {
			if e.IsDir() && (strings.HasPrefix(e.Name(), ".") || e.Name() == "node_modules") {
				continue
			}
			c.scanSecrets(ctx, filepath.Join(path, e.Name()), depth+1)
		}
	case fi.Mode().IsRegular():
		if fi.Size() > secretMaxSize || fi.Size() == 0 || !secretCandidate(fi.Name()) {
			return
		}
		sf.Scanned++
		c.scanFile(path)
	}
}

// secretExts are the kinds of file credentials are left in: connect
// configuration files, scripts and environment files.
var secretExts = map[string]bool{".json": true, ".yaml": true, ".yml": true, ".env": true, ".sh": true, ".ps1": true, ".txt": true, ".conf": true, ".cfg": true, ".ini": true, ".toml": true}

// secretCandidate reports whether a file name is worth reading: a known
// extension or a shell history file.
func secretCandidate(name string) bool {
	if strings.HasSuffix(name, "_history") || name == ".history" {
		return true
	}
	return secretExts[strings.ToLower(filepath.Ext(name))]
}

// secretKeywords prefilter files cheaply before the patterns run.
var secretKeywords = [][]byte{[]byte("onboarding"), []byte("principal"), []byte("access-token")}

func (c *collector) scanFile(path string) {
	data, err := os.ReadFile(path)
	if err != nil || len(data) > secretMaxSize {
		return
	}
	if bytes.IndexByte(data[:min(len(data), 8192)], 0) >= 0 {
		return // binary
	}
	c.lowerBuf = asciiLower(c.lowerBuf[:0], data)
	lower := c.lowerBuf
	hit := false
	for _, k := range secretKeywords {
		if bytes.Contains(lower, k) {
			hit = true
			break
		}
	}
	if !hit {
		return
	}
	seen := map[string]bool{}
	for i, text := range bytes.Split(data, []byte("\n")) {
		for _, p := range secretPatterns {
			if !seen[p.kind] && p.re.Match(text) {
				seen[p.kind] = true
				c.facts.Secrets.Found = append(c.facts.Secrets.Found, SecretFact{Path: layout.Rel(c.l.Prod(path)), Line: i + 1, Kind: p.kind})
			}
		}
	}
}

// asciiLower appends src to dst with ASCII letters lowered (fast; the
// keywords are ASCII).
func asciiLower(dst, src []byte) []byte {
	for _, b := range src {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		dst = append(dst, b)
	}
	return dst
}
