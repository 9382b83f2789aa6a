package releases

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Currency states.
const (
	StateCurrent     = "current"     // the latest release (or newer)
	StateBehind      = "behind"      // supported, but not the latest
	StateUnsupported = "unsupported" // older than the support policy allows
	StateUnknown     = "unknown"     // the version cannot be parsed, or the product has no releases
)

// Currency is the verdict on one installed version: the data the audit's
// currency rules read as facts.releases (audit.Currency is an alias of it)
// and fleet currency reports row by row.
type Currency struct {
	Product       string `json:"product"`
	Installed     string `json:"installed"`
	Latest        string `json:"latest"`
	State         string `json:"state"` // current, behind, unsupported, unknown
	Behind        int    `json:"behind"`
	Supported     bool   `json:"supported"`
	Current       bool   `json:"current"`
	Reason        string `json:"reason"`
	MinSupported  string `json:"min_supported"`
	ReleasedAt    string `json:"released_at"`
	SupportWindow string `json:"support_window"`
}

// Window is a support window: releases published within it are supported.
type Window struct {
	Months, Days int
}

// DefaultWindow is the default support window: releases of the last 12
// months.
var DefaultWindow = Window{Months: 12}

// String writes the window the way ParseWindow reads it.
func (w Window) String() string {
	switch {
	case w.Months > 0 && w.Days > 0:
		return fmt.Sprintf("%dmo%dd", w.Months, w.Days)
	case w.Days > 0 && w.Days%7 == 0:
		return fmt.Sprintf("%dw", w.Days/7)
	case w.Days > 0:
		return fmt.Sprintf("%dd", w.Days)
	case w.Months%12 == 0 && w.Months > 0:
		return fmt.Sprintf("%dy", w.Months/12)
	}
	return fmt.Sprintf("%dmo", w.Months)
}

// Cutoff is the oldest publication date inside the window at now.
func (w Window) Cutoff(now time.Time) time.Time { return now.AddDate(0, -w.Months, -w.Days) }

// ParseWindow parses a support window: a positive number with a unit,
// d (days), w (weeks), mo (months) or y (years), e.g. "12mo", "1y",
// "26w", "180d".
func ParseWindow(s string) (Window, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil || n <= 0 || n > 1200 {
		return Window{}, fmt.Errorf("support window %q: give a positive number and a unit: 12mo, 1y, 26w, 180d", s)
	}
	switch s[i:] {
	case "d", "day", "days":
		return Window{Days: n}, nil
	case "w", "week", "weeks":
		return Window{Days: 7 * n}, nil
	case "mo", "month", "months":
		return Window{Months: n}, nil
	case "y", "year", "years":
		return Window{Months: 12 * n}, nil
	case "m":
		return Window{}, fmt.Errorf("support window %q: write %dmo for months", s, n)
	}
	return Window{}, fmt.Errorf("support window %q: the unit must be d, w, mo or y (e.g. 12mo)", s)
}

// Policy is the support policy of one product.
type Policy struct {
	// Window: releases published within it are supported (zero: DefaultWindow).
	Window Window
	// Constraint, when set, replaces the window: a version is supported
	// when it satisfies it (e.g. ">=1.40.0").
	Constraint string
	// IncludePrereleases counts pre-releases as releases (latest, behind).
	IncludePrereleases bool
}

// Policies holds the default policy and per-product overrides.
type Policies struct {
	Default   Policy
	ByProduct map[string]Policy
}

// For returns the policy of product.
func (p Policies) For(product string) Policy {
	if q, ok := p.ByProduct[product]; ok {
		return q
	}
	return p.Default
}

// release is a parsed release in an Index.
type release struct {
	v         Version
	published time.Time
}

// Index is the evaluated release list of one product under its policy:
// built once, then Evaluate answers for any installed version. An Index is
// not safe for concurrent use: its memo of answers is not locked.
type Index struct {
	Product    string
	policy     Policy
	rels       []release // ascending, distinct versions
	constraint *semver.Constraints
	minSup     *Version // window policy: the oldest supported version
	window     string
	memo       map[string]Currency
}

// maxMemo bounds the per-product memo of evaluated installed versions, so
// memory stays flat whatever the inventory holds.
const maxMemo = 4096

// NewIndex parses and sorts rels for product under policy at now. Releases
// whose version cannot be parsed are skipped (and counted in skipped);
// pre-releases are dropped unless the policy includes them.
func NewIndex(product string, rels []Release, policy Policy, now time.Time) (*Index, int, error) {
	ix := &Index{Product: product, policy: policy, memo: map[string]Currency{}}
	if policy.Constraint != "" {
		c, err := ParseConstraint(policy.Constraint)
		if err != nil {
			return nil, 0, newErr(CodeBadPolicy, "", err, "the support constraint %q of %s is not valid", policy.Constraint, product)
		}
		ix.constraint = c
	}
	skipped := 0
	for _, r := range rels {
		v, err := ParseVersion(r.Version)
		if err != nil {
			skipped++
			continue
		}
		if (r.Prerelease || v.Prerelease()) && !policy.IncludePrereleases {
			continue
		}
		ix.rels = append(ix.rels, release{v: v, published: r.Published})
	}
	slices.SortStableFunc(ix.rels, func(a, b release) int { return a.v.Compare(b.v) })
	// Distinct versions: "v1.2.0" and "1.2.0" are one release.
	out := ix.rels[:0]
	for _, r := range ix.rels {
		if n := len(out); n > 0 && out[n-1].v.Compare(r.v) == 0 {
			if out[n-1].published.IsZero() {
				out[n-1].published = r.published
			}
			continue
		}
		out = append(out, r)
	}
	ix.rels = out
	if ix.constraint == nil && len(ix.rels) > 0 {
		w := policy.Window
		if w == (Window{}) {
			w = DefaultWindow
		}
		ix.window = w.String()
		cutoff := w.Cutoff(now)
		min := ix.rels[len(ix.rels)-1].v // the latest is always supported
		for _, r := range ix.rels {
			if !r.published.IsZero() && !r.published.Before(cutoff) {
				min = r.v
				break
			}
		}
		ix.minSup = &min
	}
	return ix, skipped, nil
}

// Latest is the newest release, or "" when there is none.
func (ix *Index) Latest() string {
	if len(ix.rels) == 0 {
		return ""
	}
	return ix.rels[len(ix.rels)-1].v.String()
}

// Releases is how many releases the index counts.
func (ix *Index) Releases() int { return len(ix.rels) }

// Evaluate gives the currency verdict of an installed version.
func (ix *Index) Evaluate(installed string) Currency {
	if c, ok := ix.memo[installed]; ok {
		return c
	}
	c := ix.evaluate(installed)
	if len(ix.memo) >= maxMemo {
		clear(ix.memo)
	}
	ix.memo[installed] = c
	return c
}

func (ix *Index) evaluate(installed string) Currency {
	c := Currency{Product: ix.Product, Installed: installed, Latest: ix.Latest(), State: StateUnknown, SupportWindow: ix.window}
	if ix.constraint != nil {
		c.MinSupported = ix.policy.Constraint
	} else if ix.minSup != nil {
		c.MinSupported = ix.minSup.String()
	}
	v, err := ParseVersion(installed)
	if err != nil {
		c.Reason = fmt.Sprintf("version %q cannot be parsed: %v", installed, err)
		return c
	}
	if len(ix.rels) == 0 {
		c.Reason = "the release source lists no releases of " + ix.Product
		return c
	}
	// i: the first release newer than v.
	i := sort.Search(len(ix.rels), func(k int) bool { return ix.rels[k].v.Compare(v) > 0 })
	c.Behind = len(ix.rels) - i
	if i > 0 && ix.rels[i-1].v.Compare(v) == 0 && !ix.rels[i-1].published.IsZero() {
		c.ReleasedAt = ix.rels[i-1].published.UTC().Format(time.RFC3339)
	}
	if ix.constraint != nil {
		c.Supported = ix.constraint.Check(v.sv)
	} else {
		c.Supported = v.Compare(*ix.minSup) >= 0
	}
	if c.Behind == 0 && ix.constraint == nil {
		c.Supported = true // the latest release is always supported by a window
	}
	c.Current = c.Behind == 0
	switch {
	case c.Current && c.Supported:
		c.State = StateCurrent
		c.Reason = "the latest release"
		if i > 0 && ix.rels[i-1].v.Compare(v) != 0 {
			c.Reason = "newer than the latest release " + c.Latest
		}
	case c.Supported:
		c.State = StateBehind
		c.Reason = fmt.Sprintf("%d release%s behind %s", c.Behind, plural(c.Behind), c.Latest)
	default:
		c.State = StateUnsupported
		if ix.constraint != nil {
			c.Reason = fmt.Sprintf("does not satisfy the support policy %s (latest %s)", ix.policy.Constraint, c.Latest)
		} else {
			c.Reason = fmt.Sprintf("older than the support window of %s: the oldest supported release is %s (latest %s)", ix.window, c.MinSupported, c.Latest)
		}
	}
	return c
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
