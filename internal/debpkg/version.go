package debpkg

import (
	"fmt"
	"regexp"
	"strings"
)

// DevVersion is the version of a tree without any tag: the Makefile's
// fallback when git cannot describe it.
const DevVersion = "0.1.0-dev"

var (
	// semverish: vMAJOR.MINOR.PATCH with an optional -prerelease and
	// +metadata, optionally followed by git describe's -N-gHASH and -dirty.
	describeRE = regexp.MustCompile(`^v?([0-9]+\.[0-9]+\.[0-9]+)` +
		`(?:-([0-9A-Za-z.]+?))?` + // prerelease (lazy: -N-gHASH is not part of it)
		`(?:\+([0-9A-Za-z.]+))?` + // build metadata
		`(?:-([0-9]+)-g([0-9a-f]{4,40}))?$`) // commits since the tag, abbreviated hash
	// hashRE is git describe --always without any tag: a bare hash.
	hashRE = regexp.MustCompile(`^[0-9a-f]{4,40}$`)
	// debianVersionRE is Debian policy 5.6.12 without epoch or revision:
	// it starts with a digit, then alphanumerics and . + ~.
	debianVersionRE = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*$`)
)

// DebianVersion maps a `git describe --tags --always --dirty` output (or a
// version given by hand) to a Debian version that sorts the same way:
//
//	v1.2.3                -> 1.2.3
//	v1.2.3-rc.1           -> 1.2.3~rc.1       (before 1.2.3)
//	v1.2.3-4-gabc1234     -> 1.2.3+4.gabc1234 (after 1.2.3)
//	v1.2.3-4-gabc1234-dirty -> 1.2.3+4.gabc1234.dirty
//	0.1.0-dev             -> 0.1.0~dev
//	abc1234 (no tag)      -> 0.1.0~dev+gabc1234
//
// Anything else is refused with an error saying what is expected.
func DebianVersion(describe string) (string, error) {
	s := strings.TrimSpace(describe)
	s, dirty := strings.CutSuffix(s, "-dirty")
	if hashRE.MatchString(s) {
		v := "0.1.0~dev+g" + s
		if dirty {
			v += ".dirty"
		}
		return v, nil
	}
	m := describeRE.FindStringSubmatch(s)
	if m == nil {
		return "", fmt.Errorf("version %q is not a release version: give VERSION=MAJOR.MINOR.PATCH (optionally v-prefixed, with -PRERELEASE), or build from a git tree so that git describe names it", describe)
	}
	v := m[1]
	if m[2] != "" {
		v += "~" + m[2]
	}
	var plus []string
	if m[3] != "" {
		plus = append(plus, m[3])
	}
	if m[4] != "" {
		plus = append(plus, m[4], "g"+m[5])
	}
	if dirty {
		plus = append(plus, "dirty")
	}
	if len(plus) > 0 {
		v += "+" + strings.Join(plus, ".")
	}
	if !ValidDebianVersion(v) {
		return "", fmt.Errorf("version %q maps to %q, which is not a valid Debian version: give VERSION=MAJOR.MINOR.PATCH", describe, v)
	}
	return v, nil
}

// ValidDebianVersion reports whether v is a valid Debian upstream version
// without epoch or revision (the form DebianVersion writes).
func ValidDebianVersion(v string) bool {
	return len(v) <= 128 && debianVersionRE.MatchString(v)
}
