package audit

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/internal/saferead"
)

// DefaultSecretPlaces are where onboarding credentials are left behind:
// the `arcagent connect --config FILE` files that the README tells people
// to delete, scripts, and shell history.
var DefaultSecretPlaces = []string{"/root", "/home/*", "/tmp", "/var/tmp", "/etc/arcagent", "/opt/azcmagent", "/var/opt/azcmagent"}

// Scan limits keep the collector fast and bounded on any host. Each file
// is read through saferead with at most secretMaxSize bytes (the
// documented limit for scanned files): a larger file is skipped and listed
// in facts.secrets.skipped.
const (
	secretMaxDepth   = 2
	secretMaxFiles   = 20000
	secretMaxSize    = saferead.ScanLimit
	secretMaxSkipped = 100
)

// secretPatterns match a credential with a value, never a mention of one.
// The value is never recorded. Each runs only on a line that contains its
// literals, and on the line lowered to ASCII lower case (the patterns are
// written in lower case), so no case-insensitive regexp runs at all.
var secretPatterns = []struct {
	kind     string
	literals [][]byte // all in every match
	re       *regexp.Regexp
}{
	{"onboarding-token", lits("--onboarding-token"), regexp.MustCompile(`--onboarding-token[= ]+["']?[a-z0-9._~+/=-]{8,}`)},
	{"onboarding-token", lits("onboarding", "token"), regexp.MustCompile(`["']?onboarding[-_]?token["']?\s*[:=]\s*["']?[a-z0-9._~+/=-]{8,}`)},
	{"service-principal-secret", lits("--service-principal-secret"), regexp.MustCompile(`--service-principal-secret[= ]+["']?\S{8,}`)},
	{"service-principal-secret", lits("principal", "secret"), regexp.MustCompile(`["']?service[-_]?principal[-_]?secret["']?\s*[:=]\s*["']?[^\s"']{8,}`)},
	{"access-token", lits("--access-token", "connect"), regexp.MustCompile(`(azcmagent|arcagent)\s+connect\b.*--access-token[= ]+["']?\S{8,}`)},
}

func lits(s ...string) [][]byte {
	out := make([][]byte, len(s))
	for i, x := range s {
		out[i] = []byte(x)
	}
	return out
}

// containsAll reports whether text contains every literal.
func containsAll(text []byte, literals [][]byte) bool {
	for _, l := range literals {
		if !bytes.Contains(text, l) {
			return false
		}
	}
	return true
}

// secretKeywords are the literals of the patterns that no other literal
// contains: a line without one of them cannot match.
var secretKeywords = [][]byte{[]byte("onboarding"), []byte("principal"), []byte("--access-token")}

// skipDirs are never descended into: caches and the machine's own keys.
var skipDirs = map[string]bool{layout.CertsDir: true, layout.TokensDir: true, layout.TrustDir: true}

func (c *collector) collectSecrets(ctx context.Context) {
	sf := &c.facts.Secrets
	sf.Found = []SecretFact{}
	sf.Skipped = []SkippedFile{}
	places := c.opts.SecretPlaces
	if places == nil {
		places = DefaultSecretPlaces
	}
	sf.Places = append([]string{}, places...)
	for _, pl := range places {
		for _, m := range c.glob(pl) {
			c.scanPlace(ctx, m)
		}
	}
	sf.Available = true
	if sf.Scanned >= secretMaxFiles {
		c.errorf("secrets", "", "stopped after %d files; credentials in other files were not looked for", secretMaxFiles)
	}
	if n := sf.SkippedCount; n > 0 {
		first := sf.Skipped[0]
		c.errorf("secrets", "/"+first.Path, "%d file(s) were not scanned for credentials, e.g. %s (files over %d MiB, links and special files are not read; facts.secrets.skipped lists them)", n, first.Reason, secretMaxSize>>20)
	}
}

// scanPlace scans one matched place: a directory (walked) or a file.
func (c *collector) scanPlace(ctx context.Context, prod string) {
	fi, err := c.root.Lstat(prod)
	if err != nil {
		return
	}
	switch {
	case fi.IsDir():
		d, err := c.root.OpenDir(prod)
		if err != nil {
			c.errorf("secrets", prod, "cannot list: %v", err)
			return
		}
		defer d.Close()
		c.scanDir(ctx, d, prod, 0)
	case fi.Mode().IsRegular() && secretCandidate(fi.Name()):
		d, err := c.root.OpenDir(path.Dir(prod))
		if err != nil {
			return
		}
		defer d.Close()
		c.scanFile(d, prod)
	}
}

// scanDir walks an open directory: subdirectories are opened relative to
// it without following links, files are read relative to it.
func (c *collector) scanDir(ctx context.Context, d *saferead.Dir, prod string, depth int) {
	sf := &c.facts.Secrets
	if depth > secretMaxDepth || skipDirs[prod] {
		return
	}
	ents, err := d.Entries()
	if err != nil {
		c.errorf("secrets", prod, "cannot list: %v", err)
		return
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return cmp.Compare(a.Name(), b.Name()) })
	for _, e := range ents {
		if ctx.Err() != nil || sf.Scanned >= secretMaxFiles {
			return
		}
		name, child := e.Name(), path.Join(prod, e.Name())
		switch e.Type() {
		case fs.ModeDir:
			if strings.HasPrefix(name, ".") || name == "node_modules" || depth+1 > secretMaxDepth || skipDirs[child] {
				continue
			}
			sub, err := d.Sub(name)
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					c.errorf("secrets", child, "cannot list: %v", err)
				}
				continue
			}
			c.scanDir(ctx, sub, child, depth+1)
			sub.Close()
		case 0: // a regular file
			if secretCandidate(name) {
				c.scanFile(d, child)
			}
		case fs.ModeSymlink: // never followed, but never silently: it is listed
			// A history kept in /dev/null (a common hardening) holds
			// nothing to find: not worth a "not scanned" note.
			if tgt, err := d.Readlink(name); err == nil && tgt == "/dev/null" {
				continue
			}
			if secretCandidate(name) {
				c.skipSecretFile(child, "a link, not followed")
			}
		default: // FIFOs, devices and sockets are not read
			if secretCandidate(name) {
				c.skipSecretFile(child, "a special file (FIFO, device or socket), not read")
			}
		}
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

// scanFile reads one file of d (prod is its production path) and records
// the credentials in it. A file saferead refuses (over the limit, swapped
// for a link or a special file since the directory was listed) is skipped
// and recorded, as scanDir records the links and special files it lists.
func (c *collector) scanFile(d *saferead.Dir, prod string) {
	sf := &c.facts.Secrets
	data, err := d.ReadFile(path.Base(prod), c.readBuf[:0], secretMaxSize)
	c.readBuf = data[:0]
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.skipSecretFile(prod, err.Error())
		}
		return
	}
	if len(data) == 0 {
		return
	}
	sf.Scanned++
	if bytes.IndexByte(data[:min(len(data), 8192)], 0) >= 0 {
		return // binary
	}
	var found []SecretFact
	found, c.lowerBuf = findSecretsChunked(data, secretChunk, c.lowerBuf)
	for _, f := range found {
		sf.Found = append(sf.Found, SecretFact{Path: layout.Rel(prod), Line: f.Line, Kind: f.Kind})
	}
}

// skipSecretFile records a file the scan refused (a link, a special file,
// one over the size limit) in facts.secrets.skipped: the count is exact,
// the list holds the first secretMaxSkipped.
func (c *collector) skipSecretFile(prod, reason string) {
	sf := &c.facts.Secrets
	sf.SkippedCount++
	if len(sf.Skipped) < secretMaxSkipped {
		sf.Skipped = append(sf.Skipped, SkippedFile{Path: layout.Rel(prod), Reason: reason})
	}
}

// secretChunk is how much of a file is lowered at a time: the lowered copy
// stays this small (plus the longest line) whatever the file's size.
const secretChunk = 64 << 10

// findSecretsChunked is findSecrets over data, lowered chunk bytes at a
// time (extended to whole lines) into buf, which it returns for reuse.
func findSecretsChunked(data []byte, chunk int, buf []byte) ([]SecretFact, []byte) {
	var out []SecretFact
	var seen map[string]bool
	line := 1
	for len(data) > 0 {
		end := min(chunk, len(data))
		if i := bytes.IndexByte(data[end:], '\n'); i >= 0 {
			end += i + 1
		} else {
			end = len(data)
		}
		part := data[:end]
		buf = asciiLower(buf[:0], part)
		out, seen = findSecretsFrom(buf, line, out, seen)
		line += bytes.Count(part, []byte("\n"))
		data = data[end:]
	}
	return out, buf
}

// findSecretsFrom returns the first line of each kind of credential in
// lower (whole lines of a file's text lowered to ASCII lower case, the
// first of them line first), adding to out the kinds not yet seen. Only
// the lines that contain a keyword are matched against the patterns.
func findSecretsFrom(lower []byte, first int, out []SecretFact, seen map[string]bool) ([]SecretFact, map[string]bool) {
	line, counted := first, 0 // line number of offset counted
	// next[i] is the next occurrence of keyword i at or after pos (-1:
	// none left), so that each keyword is searched for once per hit.
	next := make([]int, len(secretKeywords))
	for i := range next {
		next[i] = -2
	}
	pos := 0
	for pos < len(lower) {
		at := -1
		for i, k := range secretKeywords {
			if next[i] == -2 || (next[i] >= 0 && next[i] < pos) {
				next[i] = -1
				if j := bytes.Index(lower[pos:], k); j >= 0 {
					next[i] = pos + j
				}
			}
			if next[i] >= 0 && (at < 0 || next[i] < at) {
				at = next[i]
			}
		}
		if at < 0 {
			break
		}
		start := bytes.LastIndexByte(lower[:at], '\n') + 1
		end := len(lower)
		if i := bytes.IndexByte(lower[at:], '\n'); i >= 0 {
			end = at + i
		}
		line += bytes.Count(lower[counted:start], []byte("\n"))
		counted = start
		text := lower[start:end]
		for _, p := range secretPatterns {
			if seen[p.kind] || !containsAll(text, p.literals) || !p.re.Match(text) {
				continue
			}
			if seen == nil {
				seen = map[string]bool{}
			}
			seen[p.kind] = true
			out = append(out, SecretFact{Line: line, Kind: p.kind})
		}
		pos = end + 1
	}
	return out, seen
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
