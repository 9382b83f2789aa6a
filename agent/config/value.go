package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/arcagent/arcagent/errcode"
)

// Values are bool, int, string, or []string according to the property type.

// typographicQuotes are quote characters that documents and chat tools
// substitute for plain quotes; pasted into a shell they arrive in the value.
var typographicQuotes = []string{"\u201c", "\u201d", "\u201e", "\u201f", "\u2018", "\u2019", "\u201a", "\u201b", "\u00ab", "\u00bb", "\u2033", "\u2036"}

// StripQuotes removes typographic quotes from s and reports whether any were
// found. Plain quotes around the whole value are removed too.
func StripQuotes(s string) (string, bool) {
	found := false
	for _, q := range typographicQuotes {
		if strings.Contains(s, q) {
			found = true
			s = strings.ReplaceAll(s, q, "")
		}
	}
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		s = s[1 : len(s)-1]
	}
	return s, found
}

var extNameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$`)
})

func invalid(p Property, raw, why string) error {
	return errcode.New(errcode.InvalidValue, "%q is not a valid value for %s: %s (allowed: %s)", raw, p.Name, why, p.AllowedText())
}

// ParseValue parses a value given on the command line for p. Several list
// items may be given in one comma-separated string, with or without spaces.
// It returns the value and warnings for the user (e.g. stripped quotes).
func ParseValue(p Property, raw string) (any, []string, error) {
	var warnings []string
	s, stripped := StripQuotes(raw)
	if stripped {
		warnings = append(warnings, fmt.Sprintf("removed typographic quotes from the value of %s; type plain quotes or none", p.Name))
	}
	if p.Type.IsList() {
		var items []string
		for _, part := range strings.Split(s, ",") {
			part, _ = StripQuotes(part)
			if part != "" {
				items = append(items, part)
			}
		}
		v, err := normalizeList(p, items)
		return v, warnings, err
	}
	v, err := parseScalar(p, s)
	return v, warnings, err
}

func parseScalar(p Property, s string) (any, error) {
	switch p.Type {
	case TypeBool:
		switch strings.ToLower(s) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, invalid(p, s, "not a boolean")
	case TypeInt:
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, invalid(p, s, "not an integer")
		}
		if n < p.Min || n > p.Max {
			return nil, invalid(p, s, "out of range")
		}
		return n, nil
	case TypeEnum:
		for _, a := range p.Allowed {
			if strings.EqualFold(a, s) {
				return a, nil
			}
		}
		return nil, invalid(p, s, "not one of the allowed values")
	case TypeURL:
		if s == "" {
			return "", nil
		}
		if err := validateProxyURL(s); err != nil {
			return nil, invalid(p, s, err.Error())
		}
		return s, nil
	}
	return nil, fmt.Errorf("property %s has unknown type %q", p.Name, p.Type)
}

func validateProxyURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("the scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("no host")
	}
	port := u.Port()
	if port == "" {
		return fmt.Errorf("no port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port out of range")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("a proxy URL has no path, query or fragment")
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return fmt.Errorf("bad host:port")
	}
	return nil
}

// normalizeList validates list items for p and removes duplicates (matched
// case-insensitively for names; the first spelling is kept).
func normalizeList(p Property, items []string) ([]string, error) {
	out := []string{}
	seen := map[string]bool{}
	for _, it := range items {
		canon, err := normalizeItem(p, it)
		if err != nil {
			return nil, err
		}
		key := strings.ToLower(canon)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, canon)
	}
	if p.Name == ExtAllowlist && len(out) > 1 {
		for _, it := range out {
			if strings.EqualFold(it, AllowNone) {
				return nil, invalid(p, strings.Join(items, ","), "Allow/None must be the only entry")
			}
		}
	}
	return out, nil
}

func normalizeItem(p Property, it string) (string, error) {
	switch p.Type {
	case TypePortList:
		n, err := strconv.Atoi(it)
		if err != nil || n < 1 || n > 65535 {
			return "", invalid(p, it, "not a port number")
		}
		return strconv.Itoa(n), nil
	case TypeEnumList:
		for _, a := range p.Allowed {
			if strings.EqualFold(a, it) {
				return a, nil
			}
		}
		return "", invalid(p, it, "not one of the allowed values")
	case TypeExtensionList:
		if strings.EqualFold(it, AllowNone) {
			if p.Name != ExtAllowlist {
				return "", invalid(p, it, "Allow/None is only meaningful in "+ExtAllowlist)
			}
			return AllowNone, nil
		}
		if !extNameRE().MatchString(it) {
			return "", invalid(p, it, "not in the form Publisher/Type")
		}
		return it, nil
	case TypeEndpointList:
		host, port, err := SplitEndpoint(it)
		if err != nil {
			return "", invalid(p, it, err.Error())
		}
		return net.JoinHostPort(host, port), nil
	}
	return "", fmt.Errorf("property %s is not a list", p.Name)
}

// AddItems returns list with items appended that are not already there
// (matched case-insensitively; existing spellings are kept).
func AddItems(p Property, list, items []string) ([]string, error) {
	return normalizeList(p, append(append([]string{}, list...), items...))
}

// RemoveItems returns list without items (matched case-insensitively) and
// the items that were not in the list.
func RemoveItems(list, items []string) (out, missing []string) {
	out = []string{}
	drop := map[string]bool{}
	for _, it := range items {
		drop[strings.ToLower(it)] = true
	}
	have := map[string]bool{}
	for _, it := range list {
		have[strings.ToLower(it)] = true
		if !drop[strings.ToLower(it)] {
			out = append(out, it)
		}
	}
	for _, it := range items {
		if !have[strings.ToLower(it)] {
			missing = append(missing, it)
		}
	}
	return out, missing
}

// FormatValue renders a value for display: lists comma-separated.
func FormatValue(v any) string {
	switch x := v.(type) {
	case []string:
		return strings.Join(x, ",")
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// ContainsFold reports whether list has name, case-insensitively.
func ContainsFold(list []string, name string) bool {
	for _, it := range list {
		if strings.EqualFold(it, name) {
			return true
		}
	}
	return false
}

// hostLabelRE is one DNS label (letters, digits, hyphens, underscores as
// some service names have them).
var hostLabelRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`) })

// SplitEndpoint parses a proxy.allowed entry: host[:port], [IPv6][:port]
// or *.domain[:port]. It returns the host in canonical form (lower case, no
// trailing dot, IP literals as netip prints them, without brackets) and
// the port (443 when left out).
func SplitEndpoint(s string) (host, port string, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "", fmt.Errorf("empty endpoint")
	}
	if strings.Contains(s, "://") || strings.ContainsAny(s, "/?#@ ") {
		return "", "", fmt.Errorf("give host[:port], not a URL")
	}
	host, port = s, "443"
	if h, p, e := net.SplitHostPort(s); e == nil {
		host, port = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	} else if strings.Count(s, ":") == 1 {
		return "", "", fmt.Errorf("bad host:port")
	}
	n, e := strconv.Atoi(port)
	if e != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "", "", fmt.Errorf("port out of range")
	}
	if ip, e := netipParse(host); e == nil {
		return ip, port, nil
	}
	if strings.Contains(host, ":") {
		return "", "", fmt.Errorf("not a host name or IP address")
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	name := strings.TrimPrefix(host, "*.")
	labels := strings.Split(name, ".")
	if len(host) > 253 || name == "" {
		return "", "", fmt.Errorf("not a host name")
	}
	for _, l := range labels {
		if !hostLabelRE().MatchString(l) {
			return "", "", fmt.Errorf("not a host name")
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x") {
		// 2130706433 or 0x7f.1: some resolvers read these as addresses.
		return "", "", fmt.Errorf("a numeric name is not a host name; give the IP address itself")
	}
	if name != host && len(labels) < 2 {
		return "", "", fmt.Errorf("a wildcard needs a domain with at least two labels (*.example.com)")
	}
	return host, port, nil
}

// netipParse returns the canonical text of an IP literal (zones refused).
func netipParse(s string) (string, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", err
	}
	if a.Zone() != "" {
		return "", fmt.Errorf("zoned address")
	}
	return a.Unmap().String(), nil
}
