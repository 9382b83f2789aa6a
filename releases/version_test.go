package releases

import (
	"cmp"
	"slices"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in, semver, display string
		err                 string
	}{
		{"1.2.3", "1.2.3000000", "1.2.3", ""},
		{"v1.2.3", "1.2.3000000", "1.2.3", ""},
		{"V2.0", "2.0.0", "2.0", ""},
		{"1", "1.0.0", "1", ""},
		{"1.28.02260.736", "1.28.2260000736", "1.28.02260.736", ""},
		{" 1.28.02260.736 ", "1.28.2260000736", "1.28.02260.736", ""},
		{"1.2.3-rc.1+build.5", "1.2.3000000-rc.1+build.5", "1.2.3-rc.1+build.5", ""},
		{"1.28.0.5-beta", "1.28.5-beta", "1.28.0.5-beta", ""},
		{"", "", "", "empty"},
		{"latest", "", "", "not a number"},
		{"1..2", "", "", "not a number"},
		{"1.2.3.4.5", "", "", "at most four"},
		{"1.2.3.1000000", "", "", "fourth number"},
		{"1.2.-3", "", "", "not a number"},
		{"1.2.3-", "", "", "pre-release"},
		{"1.2.3-01", "", "", "pre-release"},
		{"1.2.3+", "", "", "metadata"},
		{"1.2.99999999999999999999", "", "", "not a number"},
		{"1.2.18446744073710.1", "", "", "too large"},
		{"1.2 .3", "", "", "not a number"},
		{strings.Repeat("1", 300), "", "", "longer"},
	}
	for _, tt := range tests {
		v, err := ParseVersion(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseVersion(%q) = %v, %v; want error %q", tt.in, v.sv, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", tt.in, err)
			continue
		}
		if v.Semver().String() != tt.semver || v.String() != tt.display {
			t.Errorf("ParseVersion(%q) = %s (%s), want %s (%s)", tt.in, v.Semver(), v, tt.semver, tt.display)
		}
	}
}

// The four-part mapping keeps the order of agent builds, also mixed with
// three-part versions and pre-releases.
func TestVersionOrder(t *testing.T) {
	ordered := []string{
		"0.9", "1.0.0-alpha", "1.0.0", "1.0.0.1", "v1.0.0.736", "1.0.1-rc.1", "1.0.1", "1.9.0",
		"1.27.999999.999999", "1.28.0", "1.28.02259.999", "1.28.02260.0", "1.28.02260.736", "1.28.2260.737",
		"1.28.02261", "1.28.10000.1", "1.29.0-beta", "1.29.0.0", "2.0.0",
	}
	vs := make([]Version, len(ordered))
	for i, s := range ordered {
		v, err := ParseVersion(s)
		if err != nil {
			t.Fatal(s, err)
		}
		vs[i] = v
	}
	for i := range vs {
		for j := range vs {
			got, want := vs[i].Compare(vs[j]), cmpInt(i, j)
			if got != want && !(equalVersions(ordered[i], ordered[j])) {
				t.Errorf("Compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	shuffled := append([]Version(nil), vs...)
	slices.SortFunc(shuffled, func(a, b Version) int { return cmp.Compare(b.String(), a.String()) })
	slices.SortStableFunc(shuffled, Version.Compare)
	for i := range shuffled {
		if shuffled[i].Compare(vs[i]) != 0 {
			t.Errorf("sorted[%d] = %s, want %s", i, shuffled[i], vs[i])
		}
	}
}

func equalVersions(a, b string) bool {
	va, _ := ParseVersion(a)
	vb, _ := ParseVersion(b)
	return va.Compare(vb) == 0 && a != b
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestParseConstraint(t *testing.T) {
	tests := []struct {
		c       string
		yes, no []string
	}{
		{">=1.40.0", []string{"1.40.0", "1.40.0.1", "v1.41", "2.0.0"}, []string{"1.39.99", "1.39.0.999999"}},
		{">= 1.28.02260.736", []string{"1.28.02260.736", "1.28.2261", "1.29.0"}, []string{"1.28.02260.735", "1.28.2259.999"}},
		{"^1.28", []string{"1.28.0", "1.99.5.5"}, []string{"2.0.0", "1.27.9"}},
		{"~1.2.3", []string{"1.2.3", "1.2.4.1"}, []string{"1.3.0", "1.2.2.999999"}},
		{">=1.2.0 <1.3.0 || >=2.0.0", []string{"1.2.5", "2.1.0"}, []string{"1.3.0", "1.9.0"}},
		{"1.2.3 - 1.4.5", []string{"1.2.3", "1.4.5", "1.3.0.7"}, []string{"1.4.6", "1.2.2"}},
	}
	for _, tt := range tests {
		c, err := ParseConstraint(tt.c)
		if err != nil {
			t.Errorf("ParseConstraint(%q): %v", tt.c, err)
			continue
		}
		for _, s := range tt.yes {
			if v, _ := ParseVersion(s); !c.Check(v.Semver()) {
				t.Errorf("%q does not accept %s", tt.c, s)
			}
		}
		for _, s := range tt.no {
			if v, _ := ParseVersion(s); c.Check(v.Semver()) {
				t.Errorf("%q accepts %s", tt.c, s)
			}
		}
	}
	for _, bad := range []string{"", ">=", "latest", ">=1.2.3.9999999"} {
		if _, err := ParseConstraint(bad); err == nil {
			t.Errorf("ParseConstraint(%q) accepted", bad)
		}
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.2.3", "v1.2.3", "1.28.02260.736", "1.0.0-rc.1+meta", "1", "1.2", "1.2.3.4.5", "", "v", "1.2.3-01", "0.0.0.999999", "18446744073709551615.0.0"} {
		f.Add(s, "1.28.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, err := ParseVersion(a)
		if err != nil {
			return
		}
		// The semver mapping is itself a valid, equal version.
		again, err := ParseVersion(va.Semver().String())
		if err != nil {
			t.Fatalf("mapping %s of %q does not parse: %v", va.Semver(), a, err)
		}
		if va.Semver().Major() != again.Semver().Major() || va.Semver().Minor() != again.Semver().Minor() || va.Semver().Prerelease() != again.Semver().Prerelease() {
			t.Fatalf("mapping of %q changed: %s vs %s", a, va.Semver(), again.Semver())
		}
		if va.Compare(va) != 0 {
			t.Fatalf("%q is not equal to itself", a)
		}
		vb, err := ParseVersion(b)
		if err != nil {
			return
		}
		if va.Compare(vb) != -vb.Compare(va) {
			t.Fatalf("Compare(%q, %q) is not antisymmetric", a, b)
		}
	})
}
