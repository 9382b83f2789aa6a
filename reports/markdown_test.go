package reports

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMarkdownEscaping(t *testing.T) {
	tests := []struct{ fn, in, want string }{
		{"escape", "a|b *c* _d_ `e` [f](g) <h> & #i", `a\|b \*c\* \_d\_ \` + "`e\\`" + ` \[f\](g) &lt;h&gt; &amp; \#i`},
		{"cell", "two\nlines |x|", `two lines \|x\|`},
		{"cell", "evil\x1b[31m", `evil\x1b\[31m`},
		{"escape", "bell\a \u202eexe", `bell\a \u202eexe`},
		{"escape", `C:\Users\a_b`, `C:\Users\a\_b`},
		{"escape", `a\*b\`, `a\\\*b\\`},
		{"escape", "a\\\nb", "a\\\\\nb"},
		{"code", "a|b", "`a\\|b`"},
		{"code", "has `tick`", "`` has `tick` ``"},
		{"code", "", ""},
		{"link", "https://example.com/a_b", "<https://example.com/a_b>"},
		{"link", "javascript:alert(1)", "javascript:alert(1)"},
		{"link", "https://x/<script>", "https://x/&lt;script&gt;"},
	}
	for _, tc := range tests {
		var got string
		switch tc.fn {
		case "escape":
			got = mdEscape(tc.in)
		case "cell":
			got = mdCell(tc.in)
		case "code":
			got = mdCode(tc.in)
		case "link":
			got = mdLink(tc.in)
		}
		if got != tc.want {
			t.Errorf("%s(%q) = %q, want %q", tc.fn, tc.in, got, tc.want)
		}
	}
	if got := mdCodeBlock("sh", "echo ```"); !strings.HasPrefix(got, "````sh\n") || !strings.HasSuffix(got, "\n````\n") {
		t.Errorf("code block fence does not outgrow the content: %q", got)
	}
}

// TestMarkdownFitsStepSummary: a huge report stays well under GitHub's
// 1 MiB step summary limit and says how much it left out.
func TestMarkdownFitsStepSummary(t *testing.T) {
	r := bigReport(100_000)
	out := renderFormat(t, "markdown", r)
	if len(out) > 512<<10 {
		t.Errorf("Markdown for 100,000 results is %d bytes, want under 512 KiB", len(out))
	}
	fails := r.Summary.ByStatus[StatusFail]
	if want := strconv.Itoa(fails-DefaultMarkdownRows) + " more findings are not listed"; !strings.Contains(string(out), want) {
		t.Errorf("Markdown does not say %q", want)
	}
}

func TestMarkdownVerdict(t *testing.T) {
	tests := []struct {
		report func() *Report
		want   []string
	}{
		{defaultInstallReport, []string{"gate failed ❌", "**7 failed** (1 critical, 3 high, 2 medium, 1 info)", "### How to fix", "sudo arcagent config set incomingconnections.enabled false"}},
		{hardenedReport, []string{"gate passed ✅", "**no failures**", "> **Note:** a planned configuration"}},
		{waiversReport, []string{"### Waived", "### Expired waivers", "### Against the baseline", "### Collector errors", "### Could not evaluate", "🆕"}},
	}
	for _, tc := range tests {
		out := string(renderFormat(t, "markdown", tc.report()))
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("Markdown lacks %q", w)
			}
		}
	}
}

// Human-readable reports print times in one format, RFC 3339 in UTC (as
// every table of the CLI does), whatever the zone of the report's time.
func TestHumanTimesRFC3339(t *testing.T) {
	r := defaultInstallReport()
	r.StartedAt = fixtureStart.In(time.FixedZone("CET", 3600))
	for _, format := range []string{"markdown", "html"} {
		out := string(renderFormat(t, format, r))
		if !strings.Contains(out, "2026-11-28T10:15:00Z") || strings.Contains(out, "10:15:00 UTC") {
			t.Errorf("%s: start time not in RFC 3339 UTC:\n%s", format, out)
		}
	}
}
