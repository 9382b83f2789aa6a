package releases

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"
)

// buildScale maps the third and fourth parts of a version onto the semver
// patch number: A.B.C.D becomes A.B.(C*buildScale+D), and a three-part
// A.B.C becomes A.B.(C*buildScale). Every version of every product is
// mapped the same way, so three- and four-part versions of one product
// still compare in order (1.28.0 < 1.28.0.5 < 1.28.1).
const buildScale = 1_000_000

// maxVersionLen bounds what is parsed (semver's own limit).
const maxVersionLen = 256

// Version is a parsed release or installed version: its semver mapping,
// used to compare, and the text it was parsed from, used to display.
type Version struct {
	sv  *semver.Version
	raw string
}

// String is the version as written, without a leading "v".
func (v Version) String() string { return v.raw }

// Semver is the semver mapping used to compare (four-part builds folded
// into the patch number).
func (v Version) Semver() *semver.Version { return v.sv }

// Compare returns -1, 0 or 1 as v is older than, equal to or newer than o.
func (v Version) Compare(o Version) int { return v.sv.Compare(o.sv) }

// Prerelease reports whether the version has a pre-release suffix.
func (v Version) Prerelease() bool { return v.sv.Prerelease() != "" }

// ParseVersion parses a version as releases and inventories write it:
// semver with or without a leading "v" ("v1.2.3", "1.2"), and the
// four-part agent builds such as "1.28.02260.736" (leading zeros allowed).
// A pre-release ("-rc.1") and build metadata ("+abc") may follow. The
// fourth part must be below 1,000,000.
func ParseVersion(s string) (Version, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Version{}, errors.New("the version is empty")
	}
	if len(s) > maxVersionLen {
		return Version{}, fmt.Errorf("the version is longer than %d characters", maxVersionLen)
	}
	raw := s
	if s[0] == 'v' || s[0] == 'V' {
		s = s[1:]
		raw = s
	}
	core, pre, meta := s, "", ""
	if i := strings.IndexByte(core, '+'); i >= 0 {
		core, meta = core[:i], core[i+1:]
		if !validIdents(meta, false) {
			return Version{}, fmt.Errorf("build metadata %q is not valid (letters, digits, - and dots)", meta)
		}
	}
	if i := strings.IndexByte(core, '-'); i >= 0 {
		core, pre = core[:i], core[i+1:]
		if !validIdents(pre, true) {
			return Version{}, fmt.Errorf("pre-release %q is not valid (letters, digits, - and dots, no leading zeros in numbers)", pre)
		}
	}
	var nums [4]uint64
	n := 0
	for part := range strings.SplitSeq(core, ".") {
		if n == 4 {
			return Version{}, errors.New("a version has at most four numbers (A.B.C.D)")
		}
		if part == "" || len(part) > 19 {
			return Version{}, fmt.Errorf("%q is not a number", part)
		}
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return Version{}, fmt.Errorf("%q is not a number", part)
			}
		}
		x, err := strconv.ParseUint(part, 10, 64)
		if err != nil {
			return Version{}, fmt.Errorf("%q is too large", part)
		}
		nums[n] = x
		n++
	}
	if nums[3] >= buildScale {
		return Version{}, fmt.Errorf("the fourth number %d is too large (at most %d)", nums[3], buildScale-1)
	}
	if nums[2] > (math.MaxUint64-nums[3])/buildScale {
		return Version{}, fmt.Errorf("the third number %d is too large", nums[2])
	}
	return Version{sv: semver.New(nums[0], nums[1], nums[2]*buildScale+nums[3], pre, meta), raw: raw}, nil
}

// validIdents checks dot-separated semver identifiers.
func validIdents(s string, pre bool) bool {
	if s == "" {
		return false
	}
	for id := range strings.SplitSeq(s, ".") {
		if id == "" {
			return false
		}
		numeric := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				numeric = false
			default:
				return false
			}
		}
		if pre && numeric && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

// constraintVersionRE finds the versions in a constraint: three or four
// numbers, with optional "v", pre-release and metadata.
var constraintVersionRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`v?\d+\.\d+\.\d+(?:\.\d+)?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?`)
})

// ParseConstraint parses a semver constraint (">=1.40.0", "^1.28", ">=
// 1.28.02260.736 <2") whose versions are mapped like ParseVersion maps
// versions, so that four-part builds and three-part versions compare the
// same way inside and outside constraints.
func ParseConstraint(s string) (*semver.Constraints, error) {
	var bad error
	mapped := constraintVersionRE().ReplaceAllStringFunc(s, func(tok string) string {
		v, err := ParseVersion(tok)
		if err != nil {
			bad = fmt.Errorf("%s: %w", tok, err)
			return tok
		}
		return v.sv.String()
	})
	if bad != nil {
		return nil, bad
	}
	c, err := semver.NewConstraint(mapped)
	if err != nil {
		return nil, err
	}
	return c, nil
}
