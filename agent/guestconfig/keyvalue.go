package guestconfig

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

func init() { Register("keyvalue", decodeKeyValue) }

// KeyValueSpec is the body of a keyvalue resource: one key of a
// line-oriented configuration file (sshd_config, login.defs, sysctl.d,
// /etc/default/*). Full-line comments (#, and ; with the = separator) are
// ignored; Include directives are not followed.
type KeyValueSpec struct {
	Path  string `yaml:"path"`
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
	// State is present (default: the key has the value) or absent (the key
	// must not be set).
	State string `yaml:"state"`
	// Separator is "whitespace" (default: `Key value`, sshd also accepts
	// `Key=value`) or "=" (`key=value`, `key = value`).
	Separator string `yaml:"separator"`
	// CaseInsensitiveKey defaults to true with the whitespace separator
	// (sshd_config, login.defs) and false with "=".
	CaseInsensitiveKey *bool `yaml:"caseInsensitiveKey"`
	// Compare is exact (default), min or max (integers: the value must be
	// at least / at most Value) or oneOf (Value is a comma list).
	Compare string `yaml:"compare"`
	// MissingMeans is the program's built-in default, used as the
	// effective value when the key is not set.
	MissingMeans *string `yaml:"missingMeans"`
	// FirstWins (default true, as sshd) makes the first uncommented
	// occurrence the effective one; false makes it the last (login.defs,
	// sysctl.d, shell-style files).
	FirstWins *bool `yaml:"firstWins"`
	// StopAt is a key (such as Match) whose first line ends the global
	// section: later lines are not read, and set appends before it.
	StopAt string `yaml:"stopAt"`
	// Create lets set create a missing file (0644 root:root).
	Create bool `yaml:"create"`
}

// kvFormat is how a keyvalue file is read.
type kvFormat struct {
	equals    bool // "=" separator
	fold      bool // keys compared case-insensitively
	firstWins bool
	stopAt    string
	// normKey, when set, maps a key as written to its canonical form
	// (sysctl.d accepts / for .).
	normKey func(string) string
}

// kvLine is one uncommented assignment line of a file.
type kvLine struct {
	N     int    // 1-based line number
	Raw   string // the line as written (without its newline)
	Key   string // the key as written
	Value string // the value, surrounding quotes removed with "="
	vs    int    // Raw[vs:ve] is the value as written (inside quotes)
	ve    int
	ke    int // Raw[:ke] ends with the key
}

// kvScan is what scanning a file for one key found.
type kvScan struct {
	lines    []string // the file's lines, without newlines
	finalNL  bool     // the file ends with a newline
	occ      []kvLine // lines setting the key, before the stop line
	stop     int      // index in lines of the stop line, -1 if none
	includes []kvLine // Include lines before the stop line
}

func (f kvFormat) sameKey(a, b string) bool {
	if f.normKey != nil {
		a, b = f.normKey(a), f.normKey(b)
	}
	if f.fold {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// parseKVLine splits one line into key and value; ok is false for blank,
// comment and malformed lines.
func (f kvFormat) parseKVLine(raw string) (kvLine, bool) {
	i := 0
	for i < len(raw) && isSpace(raw[i]) {
		i++
	}
	if i == len(raw) || raw[i] == '#' || (f.equals && raw[i] == ';') {
		return kvLine{}, false
	}
	ks := i
	if f.equals {
		eq := strings.IndexByte(raw[i:], '=')
		if eq < 0 {
			return kvLine{}, false
		}
		ke := i + eq
		for ke > ks && isSpace(raw[ke-1]) {
			ke--
		}
		if ke == ks {
			return kvLine{}, false
		}
		l := kvLine{Raw: raw, Key: raw[ks:ke], ke: ke}
		l.vs, l.ve = valueSpan(raw, i+eq+1)
		if l.ve-l.vs >= 2 && (raw[l.vs] == '"' || raw[l.vs] == '\'') && raw[l.ve-1] == raw[l.vs] {
			l.vs++
			l.ve--
		}
		l.Value = raw[l.vs:l.ve]
		return l, true
	}
	for i < len(raw) && !isSpace(raw[i]) && raw[i] != '=' {
		i++
	}
	l := kvLine{Raw: raw, Key: raw[ks:i], ke: i}
	for i < len(raw) && isSpace(raw[i]) {
		i++
	}
	if i < len(raw) && raw[i] == '=' { // sshd's `Key = value`
		i++
	}
	l.vs, l.ve = valueSpan(raw, i)
	l.Value = raw[l.vs:l.ve]
	return l, true
}

// valueSpan trims the whitespace around raw[from:].
func valueSpan(raw string, from int) (int, int) {
	s, e := from, len(raw)
	for s < e && isSpace(raw[s]) {
		s++
	}
	for e > s && isSpace(raw[e-1]) {
		e--
	}
	return s, e
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

// scanKV reads data for key.
func scanKV(data []byte, f kvFormat, key string) kvScan {
	s := kvScan{stop: -1}
	text := string(data)
	s.finalNL = strings.HasSuffix(text, "\n")
	text = strings.TrimSuffix(text, "\n")
	if text != "" || s.finalNL {
		s.lines = strings.Split(text, "\n")
	}
	for n, raw := range s.lines {
		l, ok := f.parseKVLine(raw)
		if !ok {
			continue
		}
		l.N = n + 1
		if f.stopAt != "" && strings.EqualFold(l.Key, f.stopAt) {
			s.stop = n
			break
		}
		switch {
		case f.sameKey(l.Key, key):
			s.occ = append(s.occ, l)
		case !f.equals && strings.EqualFold(l.Key, "Include"):
			s.includes = append(s.includes, l)
		}
	}
	return s
}

// effective is the occurrence that takes effect, nil if the key is unset.
func (s *kvScan) effective(f kvFormat) *kvLine {
	if len(s.occ) == 0 {
		return nil
	}
	if f.firstWins {
		return &s.occ[0]
	}
	return &s.occ[len(s.occ)-1]
}

// render joins lines back into a file.
func (s *kvScan) render() []byte {
	if len(s.lines) == 0 {
		return nil
	}
	out := strings.Join(s.lines, "\n")
	if s.finalNL {
		out += "\n"
	}
	return []byte(out)
}

// setValue makes key's effective value v: the effective line is rewritten
// in place (the rest byte-identical) or `key value` is appended (before the
// stop line if any).
func (s *kvScan) setValue(f kvFormat, key, v string) []byte {
	if l := s.effective(f); l != nil {
		sep := ""
		if l.vs == l.ke { // a key written without a value
			sep = " "
		}
		s.lines[l.N-1] = l.Raw[:l.vs] + sep + v + l.Raw[l.ve:]
		return s.render()
	}
	line := key + " " + v
	if f.equals {
		line = key + "=" + v
	}
	if s.stop >= 0 {
		s.lines = append(s.lines[:s.stop], append([]string{line}, s.lines[s.stop:]...)...)
	} else {
		s.lines = append(s.lines, line)
	}
	s.finalNL = true
	return s.render()
}

// commentOut comments every occurrence of the key (before the stop line).
func (s *kvScan) commentOut() []byte {
	for _, l := range s.occ {
		s.lines[l.N-1] = "# " + l.Raw + " # disabled by arcagent guest configuration"
	}
	return s.render()
}

type kvResource struct {
	s   KeyValueSpec
	f   kvFormat
	one []string // oneOf values
	num *big.Int // min/max bound
}

func decodeKeyValue(body *yaml.Node, _ CompileContext) (Resource, error) {
	var s KeyValueSpec
	if err := DecodeBody(body, &s); err != nil {
		return nil, err
	}
	return newKeyValue(s)
}

func newKeyValue(s KeyValueSpec) (*kvResource, error) {
	if err := CheckPath(s.Path); err != nil {
		return nil, err
	}
	r := &kvResource{s: s}
	switch s.Separator {
	case "", "whitespace":
		r.s.Separator = "whitespace"
	case "=":
		r.f.equals = true
	default:
		return nil, fmt.Errorf("separator %q: use whitespace or =", s.Separator)
	}
	if err := checkKVToken("key", s.Key, r.f.equals); err != nil {
		return nil, err
	}
	if s.StopAt != "" {
		if err := checkKVToken("stopAt", s.StopAt, r.f.equals); err != nil {
			return nil, err
		}
	}
	r.f.fold = !r.f.equals
	if s.CaseInsensitiveKey != nil {
		r.f.fold = *s.CaseInsensitiveKey
	}
	r.f.firstWins = true
	if s.FirstWins != nil {
		r.f.firstWins = *s.FirstWins
	}
	r.f.stopAt = s.StopAt
	if err := checkKVValue(s.Value, r.f.equals); err != nil {
		return nil, err
	}
	if s.MissingMeans != nil && strings.ContainsAny(*s.MissingMeans, "\n\x00") {
		return nil, errors.New("missingMeans: one line without NUL bytes")
	}
	switch s.State {
	case "", "present":
		r.s.State = "present"
		if strings.TrimSpace(s.Value) == "" {
			return nil, errors.New("value is required with state present")
		}
	case "absent":
		if s.Value != "" || s.Compare != "" || s.MissingMeans != nil {
			return nil, errors.New("state absent takes no value, compare or missingMeans: the key must not be set at all")
		}
	default:
		return nil, fmt.Errorf("state %q: use present or absent", s.State)
	}
	switch s.Compare {
	case "", "exact":
		r.s.Compare = "exact"
	case "min", "max":
		n, ok := new(big.Int).SetString(strings.TrimSpace(s.Value), 10)
		if !ok {
			return nil, fmt.Errorf("compare %s needs an integer value, not %q", s.Compare, s.Value)
		}
		r.num = n
	case "oneOf":
		for _, v := range strings.Split(s.Value, ",") {
			if v = normSpace(v); v != "" {
				r.one = append(r.one, v)
			}
		}
		if len(r.one) == 0 {
			return nil, errors.New("compare oneOf needs a comma-separated list of values")
		}
	default:
		return nil, fmt.Errorf("compare %q: use exact, min, max or oneOf", s.Compare)
	}
	return r, nil
}

func checkKVToken(what, k string, equals bool) error {
	bad := " \t\r\n\v\f#\x00"
	if equals {
		bad += "=;"
	}
	if k == "" || strings.ContainsAny(k, bad) || (!equals && strings.Contains(k, "=")) {
		return fmt.Errorf("%s %q: a non-empty word without whitespace, # or =", what, k)
	}
	return nil
}

// checkKVValue refuses a value that set could write but a reader would not
// read back: more than one line, and with the whitespace separator a value
// starting with "=" (`Key =x` is sshd's `Key=x`, value x), which set would
// rewrite at every pass without ever becoming compliant.
func checkKVValue(v string, equals bool) error {
	if strings.ContainsAny(v, "\n\x00") {
		return errors.New("value: one line without NUL bytes")
	}
	if !equals && strings.HasPrefix(strings.TrimSpace(v), "=") {
		return fmt.Errorf("value %q: with the whitespace separator a value cannot start with = (it is read as the separator)", v)
	}
	return nil
}

func normSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

// satisfies says whether value v meets the desired one, and why not.
func (r *kvResource) satisfies(v string) (bool, string) {
	have := normSpace(v)
	switch r.s.Compare {
	case "min", "max":
		n, ok := new(big.Int).SetString(have, 10)
		if !ok {
			return false, fmt.Sprintf("is %q, not an integer (want %s %s)", v, map[string]string{"min": "at least", "max": "at most"}[r.s.Compare], r.num)
		}
		if c := n.Cmp(r.num); (r.s.Compare == "min" && c < 0) || (r.s.Compare == "max" && c > 0) {
			return false, fmt.Sprintf("is %s, want %s %s", n, map[string]string{"min": "at least", "max": "at most"}[r.s.Compare], r.num)
		}
		return true, ""
	case "oneOf":
		for _, o := range r.one {
			if have == o {
				return true, ""
			}
		}
		return false, fmt.Sprintf("is %q, want one of %s", have, strings.Join(r.one, ", "))
	}
	if have != normSpace(r.s.Value) {
		return false, fmt.Sprintf("is %q, want %q", have, normSpace(r.s.Value))
	}
	return true, ""
}

// desired is the value set writes.
func (r *kvResource) desired() string {
	switch r.s.Compare {
	case "oneOf":
		return r.one[0]
	case "min", "max":
		return r.num.String()
	}
	return strings.TrimSpace(r.s.Value)
}

func (r *kvResource) Get(ctx context.Context, env *Env) (Evidence, error) {
	obs, err := r.Test(ctx, env)
	return obs.Evidence, err
}

// read returns the file's content (nil, false when it does not exist).
func (r *kvResource) read(env *Env) ([]byte, bool, error) {
	b, err := env.ReadFile(r.s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

func (r *kvResource) Test(_ context.Context, env *Env) (Observation, error) {
	ev := Evidence{"path": r.s.Path, "key": r.s.Key}
	b, exists, err := r.read(env)
	if err != nil {
		return Observation{Evidence: ev}, err
	}
	if !exists {
		ev["exists"] = "false"
		if r.s.State == "absent" {
			return Observation{Compliant: true, Evidence: ev}, nil
		}
		return Observation{Reason: r.s.Path + " does not exist", Evidence: ev}, nil
	}
	return r.judge(scanKV(b, r.f, r.s.Key), ev), nil
}

// judge compares a scanned file with the desired state, filling ev.
func (r *kvResource) judge(sc kvScan, ev Evidence) Observation {
	l := sc.effective(r.f)
	where := r.s.Path
	if l != nil {
		ev["line"] = strconv.Itoa(l.N)
		ev["raw"] = l.Raw
		ev["value"] = l.Value
		ev["source"] = "file"
		where = fmt.Sprintf("%s:%d", r.s.Path, l.N)
	}
	if len(sc.occ) > 1 {
		rule := "the first wins"
		if !r.f.firstWins {
			rule = "the last wins"
		}
		ev["occurrences"] = fmt.Sprintf("%d (%s)", len(sc.occ), rule)
	}
	if sc.stop >= 0 {
		ev["stoppedAt"] = fmt.Sprintf("line %d (%s): later lines are not the global setting and were not read", sc.stop+1, r.s.StopAt)
	}
	var incl []string
	for _, in := range sc.includes {
		if l == nil || in.N < l.N {
			incl = append(incl, fmt.Sprintf("line %d: %s", in.N, strings.TrimSpace(in.Raw)))
		}
	}
	if len(incl) > 0 {
		ev["includesNotFollowed"] = strings.Join(incl, "; ") + " (included files are not read: a setting there may take precedence)"
	}
	if r.s.State == "absent" {
		if len(sc.occ) > 0 {
			return Observation{Reason: fmt.Sprintf("%s: %s is set (%q), want it unset", where, r.s.Key, l.Value), Evidence: ev}
		}
		ev["value"] = ""
		ev["source"] = "unset"
		return Observation{Compliant: true, Evidence: ev}
	}
	v := ""
	if l != nil {
		v = l.Value
	} else if r.s.MissingMeans != nil {
		v = *r.s.MissingMeans
		ev["value"] = v
		ev["source"] = "default"
		ev["default"] = fmt.Sprintf("%s is not set: the program's built-in default %q applies", r.s.Key, v)
	} else {
		ev["source"] = "unset"
		return Observation{Reason: fmt.Sprintf("%s: %s is not set, want %s", r.s.Path, r.s.Key, r.want()), Evidence: ev}
	}
	ok, why := r.satisfies(v)
	if !ok {
		name := r.s.Key
		if l != nil {
			name = l.Key
		} else {
			where += " (not set, default)"
		}
		return Observation{Reason: fmt.Sprintf("%s: %s %s", where, name, why), Evidence: ev}
	}
	return Observation{Compliant: true, Evidence: ev}
}

func (r *kvResource) want() string {
	switch r.s.Compare {
	case "min":
		return "at least " + r.num.String()
	case "max":
		return "at most " + r.num.String()
	case "oneOf":
		return "one of " + strings.Join(r.one, ", ")
	}
	return strconv.Quote(normSpace(r.s.Value))
}

func (r *kvResource) Set(_ context.Context, env *Env) error {
	b, exists, err := r.read(env)
	if err != nil {
		return err
	}
	if !exists {
		if r.s.State == "absent" {
			return nil
		}
		if !r.s.Create {
			return fmt.Errorf("%s does not exist; add create: true to the resource to create it", r.s.Path)
		}
		root, mode := 0, fs.FileMode(0o644)
		sc := scanKV(nil, r.f, r.s.Key)
		return env.WriteFile(r.s.Path, sc.setValue(r.f, r.s.Key, r.desired()), WriteSpec{Mode: &mode, UID: &root, GID: &root})
	}
	sc := scanKV(b, r.f, r.s.Key)
	if r.judge(sc, Evidence{}).Compliant {
		return nil
	}
	var out []byte
	if r.s.State == "absent" {
		out = sc.commentOut()
	} else {
		out = sc.setValue(r.f, r.s.Key, r.desired())
	}
	return env.WriteFile(r.s.Path, out, WriteSpec{})
}
