package logbundle

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Redacted replaces what the redactor removes.
const Redacted = "[REDACTED]"

// minSecret is the shortest literal secret the redactor replaces: shorter
// strings would erase ordinary words.
const minSecret = 8

var (
	// A PEM block of any kind, or an unterminated BEGIN to the end.
	pemBlock = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?s)-----BEGIN .*?(?:-----END [^\n]*?-----|\z)`) })
	// An END line left without its BEGIN.
	pemEnd = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`-----END [^\n]*`) })
	// Everything up to a first END whose BEGIN was cut off (a log's tail).
	pemTail = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?s)\A.*?-----END [^\n]*?-----`) })
	// The control plane's API tokens and onboarding credentials.
	arcToken = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\b(arcp_|arcob_)[A-Za-z0-9_\-]+`) })
	// JSON Web Tokens (assertions, access tokens).
	jwt = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*`)
	})
	// Authorization header values.
	authScheme = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)\b(bearer|basic|negotiate|ntlm)( +)[A-Za-z0-9._~+/=\-]{6,}`)
	})
	// User information in a URL: scheme://user:password@host.
	userinfo = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@"'<>]+@`) })
	// key = value, key: value and "key": "value" where the key names a secret.
	keyValue = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`(?i)((?:"|\b)[A-Za-z0-9_.\-]*(?:token|secret|password|credential|private[_\-]?key|protected[_\-]?settings|api[_\-]?key|assertion|authorization|cookie)[A-Za-z0-9_.\-]*"?[ \t]*[:=][ \t]*)("(?:[^"\\\n]|\\.)*"?|'[^'\n]*'?|[^\s,;}]+)`)
	})
)

// secretKey reports whether a JSON key names a secret value.
func secretKey(k string) bool {
	k = strings.ToLower(strings.NewReplacer("_", "", "-", "", ".", "").Replace(k))
	for _, w := range []string{"token", "secret", "password", "passwd", "pwd", "credential", "privatekey", "protectedsettings", "apikey", "assertion", "authorization", "cookie"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// Redactor removes secrets from text: every PEM block, the known secret
// values it was given, tokens by their shape, URL credentials and the
// values of keys that name a secret.
type Redactor struct {
	known [][]byte
}

// AddSecret makes the redactor replace every occurrence of s (and of each
// line of s, for secrets a file holds on several lines). Values shorter
// than 8 bytes are ignored.
func (r *Redactor) AddSecret(s []byte) {
	s = bytes.TrimSpace(s)
	if len(s) < minSecret {
		return
	}
	r.known = append(r.known, bytes.Clone(s))
	for line := range bytes.Lines(s) {
		if line = bytes.TrimSpace(line); len(line) >= 16 && !bytes.HasPrefix(line, []byte("-----")) {
			r.known = append(r.known, bytes.Clone(line))
		}
	}
	// The longest first, so that a secret is never half replaced by one of
	// its own lines.
	slices.SortFunc(r.known, func(a, b []byte) int { return len(b) - len(a) })
}

// Redact returns data without secrets, and how many it replaced.
func (r *Redactor) Redact(data []byte) ([]byte, int) {
	n := 0
	count := func(re *regexp.Regexp, repl []byte) {
		data = re.ReplaceAllFunc(data, func(m []byte) []byte {
			n++
			return re.ReplaceAll(m, repl)
		})
	}
	if end, begin := bytes.Index(data, []byte("-----END ")), bytes.Index(data, []byte("-----BEGIN ")); end >= 0 && (begin < 0 || end < begin) {
		count(pemTail(), []byte("[REDACTED PEM BLOCK]"))
	}
	count(pemBlock(), []byte("[REDACTED PEM BLOCK]"))
	count(pemEnd(), []byte("[REDACTED PEM BLOCK]"))
	for _, s := range r.known {
		if c := bytes.Count(data, s); c > 0 {
			n += c
			data = bytes.ReplaceAll(data, s, []byte(Redacted))
		}
	}
	return redactLines(data, &n), n
}

// Words that make a line worth the key-value and object rules (lower
// case); the other rules have their own literal triggers.
var (
	keyWords    = [][]byte{[]byte("token"), []byte("secret"), []byte("password"), []byte("credential"), []byte("private"), []byte("protected"), []byte("api"), []byte("assertion"), []byte("authorization"), []byte("cookie")}
	objectWords = [][]byte{[]byte("protected"), []byte("secret"), []byte("credential"), []byte("password")}
	authWords   = [][]byte{[]byte("bearer"), []byte("basic"), []byte("negotiate"), []byte("ntlm")}
)

func hasAny(low []byte, words [][]byte) bool {
	for _, w := range words {
		if bytes.Contains(low, w) {
			return true
		}
	}
	return false
}

// asciiLower lower-cases ASCII letters only, keeping every offset.
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// redactLines applies the token, credential and key-value rules line by
// line, each only to the lines that hold its trigger (the regular
// expressions are the slow part). A secret key whose value is an object
// or array is replaced to the value's balanced end, across lines.
func redactLines(data []byte, n *int) []byte {
	out := make([]byte, 0, len(data))
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line = data[:i+1]
		}
		low := asciiLower(line)
		if hasAny(low, objectWords) {
			open := -1
			for _, loc := range objectStart().FindAllIndex(line, -1) {
				// "[REDACTED…]" is what an earlier rule left, not an array.
				if !bytes.HasPrefix(line[loc[1]-1:], []byte("[REDACTED")) {
					open = loc[1] - 1
					break
				}
			}
			if open >= 0 {
				*n++
				out = append(append(out, redactLine(line[:open], low[:open], n)...), `"`+Redacted+`"`...)
				data = data[balancedEnd(data, open):]
				continue
			}
		}
		out = append(out, redactLine(line, low, n)...)
		data = data[len(line):]
	}
	return out
}

func redactLine(line, low []byte, n *int) []byte {
	rule := func(re *regexp.Regexp, repl string) {
		line = re.ReplaceAllFunc(line, func(m []byte) []byte {
			*n++
			return re.ReplaceAll(m, []byte(repl))
		})
	}
	if bytes.Contains(line, []byte("arcp_")) || bytes.Contains(line, []byte("arcob_")) {
		rule(arcToken(), "${1}"+Redacted)
	}
	if bytes.Contains(line, []byte("eyJ")) {
		rule(jwt(), Redacted)
	}
	if hasAny(low, authWords) {
		rule(authScheme(), "${1}${2}"+Redacted)
	}
	if bytes.Contains(line, []byte("://")) && bytes.IndexByte(line, '@') >= 0 {
		rule(userinfo(), "${1}"+Redacted+"@")
	}
	if hasAny(low, keyWords) {
		line = keyValue().ReplaceAllFunc(line, func(m []byte) []byte {
			sub := keyValue().FindSubmatch(m)
			val := bytes.Trim(sub[2], `"'`)
			if string(val) == Redacted || authWord().Match(val) {
				return m
			}
			*n++
			return append(bytes.Clone(sub[1]), `"`+Redacted+`"`...)
		})
	}
	return line
}

// authWord is an Authorization scheme, whose credentials authScheme has
// already replaced.
var authWord = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)^(bearer|basic|negotiate|ntlm)$`) })

// objectStart finds a secret key whose value is a JSON object or array.
var objectStart = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)"?[A-Za-z0-9_.\-]*(?:protected[_\-]?settings|secret|credential|password)[A-Za-z0-9_.\-]*"?[ \t]*[:=][ \t]*[{\[]`)
})

// balancedEnd is the offset just past the object or array that opens at
// data[open], or len(data) when it does not close.
func balancedEnd(data []byte, open int) int {
	depth, inStr := 0, false
	for i := open; i < len(data); i++ {
		c := data[i]
		switch {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
		if depth == 0 {
			return i + 1
		}
	}
	return len(data)
}

// RedactJSON redacts a JSON document by structure: the values of secret
// keys, and the top-level keys in drop, become "[REDACTED]", and every
// string value is redacted as text. Data that is not one JSON value is
// redacted as text.
func (r *Redactor) RedactJSON(data []byte, drop ...string) ([]byte, int) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || dec.More() {
		return r.Redact(data)
	}
	n := 0
	if m, ok := v.(map[string]any); ok {
		for _, k := range drop {
			if _, ok := m[k]; ok {
				m[k] = Redacted
				n++
			}
		}
	}
	v = r.walk(v, &n)
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return r.Redact(data)
	}
	return out, n
}

func (r *Redactor) walk(v any, n *int) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if secretKey(k) && val != nil && val != "" && val != false && val != Redacted {
				x[k] = Redacted
				*n++
				continue
			}
			x[k] = r.walk(val, n)
		}
	case []any:
		for i := range x {
			x[i] = r.walk(x[i], n)
		}
	case string:
		out, m := r.Redact([]byte(x))
		*n += m
		return string(out)
	}
	return v
}
