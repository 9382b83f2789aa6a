package debpkg

import (
	"os/exec"
	"testing"
)

func TestDebianVersion(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{" v1.2.3\n", "1.2.3"},
		{"v1.2.3-rc.1", "1.2.3~rc.1"},
		{"v1.2.3-4-gabc1234", "1.2.3+4.gabc1234"},
		{"v1.2.3-4-gabc1234-dirty", "1.2.3+4.gabc1234.dirty"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-rc.1-4-gabc1234", "1.2.3~rc.1+4.gabc1234"},
		{"v1.2.3+build.7", "1.2.3+build.7"},
		{"0.1.0-dev", "0.1.0~dev"},
		{"00bafe7", "0.1.0~dev+g00bafe7"},
		{"00bafe7-dirty", "0.1.0~dev+g00bafe7.dirty"},
		{"v10.20.30", "10.20.30"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := DebianVersion(tt.in)
			if err != nil {
				t.Fatalf("DebianVersion(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("DebianVersion(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !ValidDebianVersion(got) {
				t.Errorf("%q is not a valid Debian version", got)
			}
		})
	}
}

func TestDebianVersionRefused(t *testing.T) {
	for _, in := range []string{"", "latest", "v1.2", "1.2.3 4", "v1.2.3-", "v1.2.3_rc1", "1.2.3;rm -rf /", "v1.2.3-4-gXYZ", "../1.2.3"} {
		if v, err := DebianVersion(in); err == nil {
			t.Errorf("DebianVersion(%q) = %q, want an error", in, v)
		}
	}
}

// TestDebianVersionOrder checks with dpkg itself that the mapping keeps
// git's order: a prerelease before its release, a later commit after it.
func TestDebianVersionOrder(t *testing.T) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Skip("dpkg is not installed: the order check needs dpkg --compare-versions")
	}
	ordered := []string{"0.1.0-dev", "00bafe7", "v0.1.0", "v1.2.3-rc.1", "v1.2.3-rc.1-2-gabc1234", "v1.2.3-rc.2", "v1.2.3", "v1.2.3-1-gabc1234", "v1.2.3-10-gdef5678", "v1.2.4", "v1.10.0"}
	for i := 1; i < len(ordered); i++ {
		a, err := DebianVersion(ordered[i-1])
		if err != nil {
			t.Fatal(err)
		}
		b, err := DebianVersion(ordered[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := exec.Command(dpkg, "--compare-versions", a, "lt", b).Run(); err != nil {
			t.Errorf("dpkg says %s (%s) is not before %s (%s)", a, ordered[i-1], b, ordered[i])
		}
	}
}

func FuzzDebianVersion(f *testing.F) {
	for _, s := range []string{"v1.2.3", "v1.2.3-rc.1-4-gabc1234-dirty", "0.1.0-dev", "00bafe7", "v1.2.3+x", "junk"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := DebianVersion(s)
		if err != nil {
			return
		}
		if !ValidDebianVersion(v) {
			t.Fatalf("DebianVersion(%q) = %q, not a valid Debian version", s, v)
		}
	})
}
