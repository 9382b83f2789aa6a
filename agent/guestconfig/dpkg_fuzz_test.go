package guestconfig

import (
	"strings"
	"testing"
)

// FuzzDpkgStatus checks the status parser never panics, keeps one entry
// per stanza with a Package field at most, and never returns a multi-line
// or padded value.
func FuzzDpkgStatus(f *testing.F) {
	f.Add([]byte(dpkgStatus))
	f.Add([]byte("Package: a\r\nStatus: install ok installed\r\n\r\nPackage: b\n"))
	f.Add([]byte("Package:\n\n\n Package: x\nPackage: y:z\nVersion:  1.0 \n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps := ParseDpkgStatus(data)
		if n := strings.Count("\n"+string(data), "\nPackage:"); len(ps) > n {
			t.Fatalf("%d packages from %d Package lines", len(ps), n)
		}
		for _, p := range ps {
			for _, v := range []string{p.Name, p.Version, p.Status, p.Architecture} {
				if strings.ContainsAny(v, "\n") || strings.TrimSpace(v) != v {
					t.Fatalf("bad value %q", v)
				}
			}
			if p.Name == "" {
				t.Fatal("a package without a name")
			}
		}
	})
}

// FuzzCompareDebVersions checks the comparison is an order: reflexive,
// antisymmetric and transitive on the three versions given, and that a
// zero epoch and a zero revision change nothing.
func FuzzCompareDebVersions(f *testing.F) {
	for _, c := range debVersionTable {
		f.Add(c.a, c.b, "1.0")
	}
	f.Add("1:2.3~rc1-4", "1:2.3-4", "2.3+dfsg-1~bpo")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		ab, ba := CompareDebVersions(a, b), CompareDebVersions(b, a)
		if ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("cmp(%q,%q)=%d but cmp(%q,%q)=%d", a, b, ab, b, a, ba)
		}
		if CompareDebVersions(a, a) != 0 {
			t.Fatalf("cmp(%q,%q) != 0", a, a)
		}
		bc, ac := CompareDebVersions(b, c), CompareDebVersions(a, c)
		if ab <= 0 && bc <= 0 && ac > 0 {
			t.Fatalf("%q <= %q <= %q but %q > %q", a, b, c, a, c)
		}
		if debVersionRE().MatchString(a) && !strings.Contains(a, ":") && !strings.Contains(a, "-") {
			if CompareDebVersions("0:"+a, a) != 0 || CompareDebVersions(a+"-0", a) != 0 {
				t.Fatalf("a zero epoch or revision changes %q", a)
			}
		}
	})
}
