package releases

import (
	"strings"
	"testing"
	"time"
)

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

var testNow = day("2026-06-01")

var testReleases = []Release{
	{Version: "v1.3.0", Published: day("2026-01-01")},
	{Version: "v1.4.0-rc.1", Published: day("2026-05-01"), Prerelease: true},
	{Version: "v1.0.0", Published: day("2025-01-01")},
	{Version: "v1.2.0", Published: day("2025-08-01")},
	{Version: "v1.1.0", Published: day("2025-05-01")},
	{Version: "not-a-version", Published: day("2025-02-01")},
	{Version: "1.2.0", Published: day("2025-08-01")}, // the same release twice
}

func TestPolicyStates(t *testing.T) {
	tests := []struct {
		name      string
		policy    Policy
		rels      []Release
		installed string
		state     string
		behind    int
		supported bool
		current   bool
		minSup    string
		reason    string
	}{
		{"latest", Policy{}, testReleases, "1.3.0", StateCurrent, 0, true, true, "1.2.0", "the latest release"},
		{"latest with v", Policy{}, testReleases, "v1.3.0", StateCurrent, 0, true, true, "1.2.0", "the latest release"},
		{"newer than latest", Policy{}, testReleases, "1.4.0", StateCurrent, 0, true, true, "1.2.0", "newer than the latest release 1.3.0"},
		{"behind", Policy{}, testReleases, "1.2.0", StateBehind, 1, true, false, "1.2.0", "1 release behind 1.3.0"},
		{"behind, unreleased build", Policy{}, testReleases, "1.2.5", StateBehind, 1, true, false, "1.2.0", "1 release behind"},
		{"unsupported by the window", Policy{}, testReleases, "1.1.0", StateUnsupported, 2, false, false, "1.2.0", "older than the support window of 1y: the oldest supported release is 1.2.0"},
		{"unsupported, far behind", Policy{}, testReleases, "0.9", StateUnsupported, 4, false, false, "1.2.0", "latest 1.3.0"},
		{"shorter window", Policy{Window: Window{Months: 6}}, testReleases, "1.2.0", StateUnsupported, 1, false, false, "1.3.0", "support window of 6mo"},
		{"window in days", Policy{Window: Window{Days: 400}}, testReleases, "1.1.0", StateBehind, 2, true, false, "1.1.0", "2 releases behind"},
		{"constraint supported", Policy{Constraint: ">=1.1.0"}, testReleases, "1.1.0", StateBehind, 2, true, false, ">=1.1.0", "2 releases behind"},
		{"constraint unsupported", Policy{Constraint: ">=1.1.0"}, testReleases, "1.0.0", StateUnsupported, 3, false, false, ">=1.1.0", "does not satisfy the support policy >=1.1.0"},
		{"constraint refuses the latest", Policy{Constraint: ">=2"}, testReleases, "1.3.0", StateUnsupported, 0, false, true, ">=2", "does not satisfy"},
		{"pre-releases counted", Policy{IncludePrereleases: true}, testReleases, "1.3.0", StateBehind, 1, true, false, "1.2.0", "1 release behind 1.4.0-rc.1"},
		{"unparsable", Policy{}, testReleases, "1.3.x", StateUnknown, 0, false, false, "1.2.0", `version "1.3.x" cannot be parsed`},
		{"empty", Policy{}, testReleases, "", StateUnknown, 0, false, false, "1.2.0", "the version is empty"},
		{"no releases", Policy{}, nil, "1.0.0", StateUnknown, 0, false, false, "", "lists no releases of p"},
		{"no dates: only the latest", Policy{}, []Release{{Version: "1.0.0"}, {Version: "1.1.0"}}, "1.0.0", StateUnsupported, 1, false, false, "1.1.0", "oldest supported release is 1.1.0"},
		{"four-part builds behind", Policy{}, []Release{
			{Version: "1.27.02100.100", Published: day("2025-03-01")}, {Version: "1.28.02260.736", Published: day("2025-09-01")}, {Version: "1.28.02260.800", Published: day("2026-02-01")},
		}, "1.28.02260.736", StateBehind, 1, true, false, "1.28.02260.736", "1 release behind 1.28.02260.800"},
		{"four-part builds unsupported", Policy{}, []Release{
			{Version: "1.27.02100.100", Published: day("2025-03-01")}, {Version: "1.28.02260.736", Published: day("2025-09-01")}, {Version: "1.28.02260.800", Published: day("2026-02-01")},
		}, "1.27.02100.100", StateUnsupported, 2, false, false, "1.28.02260.736", "older than the support window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix, _, err := NewIndex("p", tt.rels, tt.policy, testNow)
			if err != nil {
				t.Fatal(err)
			}
			c := ix.Evaluate(tt.installed)
			if c.State != tt.state || c.Behind != tt.behind || c.Supported != tt.supported || c.Current != tt.current || c.MinSupported != tt.minSup {
				t.Errorf("Evaluate(%q) = state %s behind %d supported %v current %v min %q; want %s %d %v %v %q (%s)",
					tt.installed, c.State, c.Behind, c.Supported, c.Current, c.MinSupported, tt.state, tt.behind, tt.supported, tt.current, tt.minSup, c.Reason)
			}
			if !strings.Contains(c.Reason, tt.reason) {
				t.Errorf("reason %q does not say %q", c.Reason, tt.reason)
			}
			if c.Product != "p" || c.Installed != tt.installed {
				t.Errorf("product/installed = %q/%q", c.Product, c.Installed)
			}
			// The memo answers the same.
			if again := ix.Evaluate(tt.installed); again != c {
				t.Errorf("memoised answer differs: %+v", again)
			}
		})
	}
}

func TestIndexDetails(t *testing.T) {
	ix, skipped, err := NewIndex("p", testReleases, Policy{}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if skipped != 1 || ix.Releases() != 4 || ix.Latest() != "1.3.0" {
		t.Errorf("skipped %d, releases %d, latest %s", skipped, ix.Releases(), ix.Latest())
	}
	c := ix.Evaluate("1.2.0")
	if c.ReleasedAt != "2025-08-01T00:00:00Z" || c.SupportWindow != "1y" {
		t.Errorf("released_at %q, window %q", c.ReleasedAt, c.SupportWindow)
	}
	if _, _, err := NewIndex("p", nil, Policy{Constraint: ">=>1"}, testNow); !isCode(err, CodeBadPolicy) {
		t.Errorf("bad constraint: %v", err)
	}
	// The memo stays bounded.
	for i := 0; i < 3*maxMemo; i++ {
		ix.Evaluate("1.2." + strings.Repeat("1", i%7+1) + "." + string(rune('0'+i%10)))
	}
	if len(ix.memo) > maxMemo {
		t.Errorf("memo holds %d entries", len(ix.memo))
	}
}

func TestParseWindow(t *testing.T) {
	tests := []struct {
		in   string
		want Window
		str  string
		err  string
	}{
		{"12mo", Window{Months: 12}, "1y", ""},
		{"18months", Window{Months: 18}, "18mo", ""},
		{"1y", Window{Months: 12}, "1y", ""},
		{"26w", Window{Days: 182}, "26w", ""},
		{"180d", Window{Days: 180}, "180d", ""},
		{" 90 D", Window{}, "", "unit"},
		{"12m", Window{}, "", "12mo for months"},
		{"0d", Window{}, "", "positive"},
		{"-1y", Window{}, "", "positive"},
		{"", Window{}, "", "positive"},
		{"1h", Window{}, "", "unit must be"},
	}
	for _, tt := range tests {
		w, err := ParseWindow(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseWindow(%q) = %v, %v; want error %q", tt.in, w, err, tt.err)
			}
			continue
		}
		if err != nil || w != tt.want || w.String() != tt.str {
			t.Errorf("ParseWindow(%q) = %v (%s), %v; want %v (%s)", tt.in, w, w, err, tt.want, tt.str)
		}
	}
	if got := DefaultWindow.Cutoff(testNow); !got.Equal(day("2025-06-01")) {
		t.Errorf("cutoff = %s", got)
	}
}
