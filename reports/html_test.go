package reports

import (
	"bytes"
	"context"
	"html"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chromiumPath is Debian's chromium package; .ci/run installs it.
const chromiumPath = "/usr/bin/chromium"

// TestHTMLSelfContained checks that every page loads nothing from outside
// and that values from the report are escaped.
func TestHTMLSelfContained(t *testing.T) {
	external := []*regexp.Regexp{
		regexp.MustCompile(`(?i)<link\b`),
		regexp.MustCompile(`(?i)<(script|img|iframe|object|embed|source|video|audio)\b[^>]*\bsrc\s*=`),
		regexp.MustCompile(`(?i)url\(`),
		regexp.MustCompile(`(?i)@import`),
		regexp.MustCompile(`(?i)<base\b`),
	}
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			page := renderFormat(t, "html", fx.report())
			for _, re := range external {
				if loc := re.FindIndex(page); loc != nil {
					t.Errorf("page loads an external asset: %q", page[loc[0]:min(len(page), loc[1]+60)])
				}
			}
			for _, m := range regexp.MustCompile(`href="([^"]*)"`).FindAllSubmatch(page, -1) {
				if !bytes.HasPrefix(m[1], []byte("https://")) && !bytes.HasPrefix(m[1], []byte("http://")) {
					t.Errorf("unexpected link %q", m[1])
				}
			}
			if !bytes.Contains(page, []byte(`Content-Security-Policy" content="default-src 'none'`)) {
				t.Error("page lacks its Content-Security-Policy")
			}
			for _, bad := range []string{"<script>alert", "<img src=x", "</td><img"} {
				if bytes.Contains(page, []byte(bad)) {
					t.Errorf("report text %q reached the page unescaped", bad)
				}
			}
		})
	}
}

// TestHTMLInChromium renders pages in headless Chromium: the screenshot
// must be produced and not blank, the page's script must run to its end
// (it sets data-ready="1") without errors, and its filters must hide the
// passed results by default.
func TestHTMLInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("headless Chromium is not installed (%s): install Debian's chromium package (apt-get install -y chromium) to render the HTML report in this test", chromiumPath)
	}
	if testing.Short() {
		t.Skip("starts Chromium; skipped with -short")
	}
	cases := []struct {
		name   string
		report *Report
	}{
		{"default-install", defaultInstallReport()},
		{"hardened", hardenedReport()},
		{"waivers-baseline-errors", waiversReport()},
		{"2000-results", bigReport(2000)},
	}
	// The audit engine's own output, when its goldens are there.
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(auditGoldens), "default-install.json")); err == nil {
		if r, err := ReadJSON(bytes.NewReader(b)); err == nil {
			cases = append(cases, struct {
				name   string
				report *Report
			}{"audit-default-install", r})
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			page := filepath.Join(dir, "report.html")
			if err := os.WriteFile(page, renderFormat(t, "html", tc.report), 0o644); err != nil {
				t.Fatal(err)
			}
			url := "file://" + page

			dom, logs := runChromium(t, dir, "--dump-dom", url)
			checkConsole(t, logs)
			if !strings.Contains(dom, `data-ready="1"`) {
				t.Errorf("the page's script did not run to its end (no data-ready=\"1\" on <html>); console:\n%s", logs)
			}
			if strings.Contains(dom, `data-js-error="1"`) {
				t.Errorf("the page's script raised an error; console:\n%s", logs)
			}
			// Passed and not applicable results are hidden by the default
			// filter; the rest show.
			var pass, na, shown int
			for _, res := range tc.report.Results {
				switch res.Status {
				case StatusPass:
					pass++
				case StatusNotApplicable:
					na++
				default:
					shown++
				}
			}
			if n := strings.Count(dom, `data-status="pass" hidden=""`); n != pass {
				t.Errorf("%d passed rows hidden by the default filter, want %d", n, pass)
			}
			if n := strings.Count(dom, `data-status="not_applicable" hidden=""`); n != na {
				t.Errorf("%d not applicable rows hidden by the default filter, want %d", n, na)
			}
			if want := `<b id="shown">` + strconv.Itoa(shown) + `</b>`; !strings.Contains(dom, want) {
				t.Errorf("the filter count does not read %s", want)
			}
			// The Resource column shows while a row shown names a resource.
			resShown := false
			for _, res := range tc.report.Results {
				resShown = resShown || (res.Resource != "" && res.Status != StatusPass && res.Status != StatusNotApplicable)
			}
			if got := strings.Contains(dom, `<table id="findings-table" class="no-res">`); got == resShown {
				t.Errorf("Resource column hidden: %v, want %v", got, !resShown)
			}
			if na > 0 && tc.name != "2000-results" {
				checkToggles(t, dir, tc.report, shown, na)
			}

			shot := filepath.Join(dir, "shot.png")
			_, logs = runChromium(t, dir, "--screenshot="+shot, url)
			checkConsole(t, logs)
			checkScreenshot(t, shot)
			if updatingGoldens() && tc.name == "default-install" {
				// Keep a look at the rendering for reviewers.
				b, _ := os.ReadFile(shot)
				_ = os.WriteFile(filepath.Join("testdata", "screenshots", tc.name+".png"), b, 0o644)
			}
		})
	}
}

// checkToggles ticks the Not applicable box in Chromium, with the page's
// script and without it (the CSS fallback), and checks that the not
// applicable rows appear, and only then. A probe script appended to the
// page reports what it sees in data- attributes of <html>.
func checkToggles(t *testing.T, dir string, r *Report, shown, na int) {
	t.Helper()
	page := string(renderFormat(t, "html", r))
	const probe = `<script>
(function () {
  var root = document.documentElement;
  function visible(sel) {
    return Array.prototype.filter.call(document.querySelectorAll(sel), function (tr) { return getComputedStyle(tr).display !== "none"; }).length;
  }
  function tick(status) {
    var box = document.querySelector("#filters input[data-filter=status][value=" + status + "]");
    box.checked = true;
    box.dispatchEvent(new Event("change"));
  }
  root.setAttribute("data-probe-na-before", String(visible("#findings tr[data-status=not_applicable]")));
  tick("not_applicable");
  root.setAttribute("data-probe-na-after", String(visible("#findings tr[data-status=not_applicable]")));
  root.setAttribute("data-probe-shown", document.getElementById("shown").textContent);
  tick("pass");
  var th = document.querySelector("#findings-table th.res");
  root.setAttribute("data-probe-res-all", String(th !== null && getComputedStyle(th).display !== "none"));
})();
</script>
</body>`
	withJS := strings.Replace(page, "</body>", probe, 1)
	i, j := strings.Index(page, "<script>"), strings.Index(page, "</script>")
	if i < 0 || j < i {
		t.Fatal("the page has no script")
	}
	noJS := strings.Replace(page[:i]+page[j+len("</script>"):], "</body>", probe, 1)
	anyRes := false // with every box ticked, the column shows if a result names a resource
	for _, res := range r.Results {
		anyRes = anyRes || res.Resource != ""
	}
	for _, v := range []struct{ name, page, shownAfter string }{
		{"script", withJS, strconv.Itoa(shown + na)},
		{"CSS only", noJS, strconv.Itoa(shown)}, // the count is the page's, written for the default filters
	} {
		path := filepath.Join(dir, "toggle.html")
		if err := os.WriteFile(path, []byte(v.page), 0o644); err != nil {
			t.Fatal(err)
		}
		dom, logs := runChromium(t, dir, "--dump-dom", "file://"+path)
		checkConsole(t, logs)
		for attr, want := range map[string]string{"data-probe-na-before": "0", "data-probe-na-after": strconv.Itoa(na), "data-probe-shown": v.shownAfter,
			"data-probe-res-all": strconv.FormatBool(anyRes)} {
			if got := regexp.MustCompile(attr + `="([^"]*)"`).FindStringSubmatch(dom); got == nil || got[1] != want {
				t.Errorf("%s: %s = %v, want %q; console:\n%s", v.name, attr, got, want, logs)
			}
		}
	}
}

// runChromium runs headless Chromium with args and returns its standard
// output and its log (standard error, which carries the console).
func runChromium(t *testing.T, dir string, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	profile, err := os.MkdirTemp(dir, "profile-")
	if err != nil {
		t.Fatal(err)
	}
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profile, "--window-size=1280,1024",
		"--enable-logging=stderr", "--v=0",
	}
	cmd := exec.CommandContext(ctx, chromiumPath, append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), errb.String()
}

// checkConsole fails on anything the page wrote to the console: script
// errors, and Content-Security-Policy violations (an external load).
func checkConsole(t *testing.T, logs string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, ":CONSOLE") || strings.Contains(line, "Uncaught") || strings.Contains(line, "Content Security Policy") {
			t.Errorf("console: %s", line)
		}
	}
}

// checkScreenshot checks the PNG exists, has the window's size, and shows
// more than a blank page.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() != 1280 || b.Dy() != 1024 {
		t.Errorf("screenshot is %dx%d, want 1280x1024", b.Dx(), b.Dy())
	}
	colors := map[uint32]int{}
	nonWhite := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[(r>>8)<<16|(g>>8)<<8|bl>>8]++
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				nonWhite++
			}
		}
	}
	// Text, badges and the chart: many colours, a fair share of ink.
	if len(colors) < 50 || nonWhite < 5000 {
		t.Errorf("screenshot looks blank: %d colours, %d non-white samples", len(colors), nonWhite)
	}
}

// TestHTMLBrief: the paragraph above the fold counts the failing Tier 0
// controls, lists each distinct command that fixes them once, most severe
// first, and says what else needs attention.
func TestHTMLBrief(t *testing.T) {
	rule := func(id string, sev Severity, profile, fix string) Rule {
		return Rule{ID: id, Severity: sev, Profiles: []string{profile}, Remediation: fix}
	}
	res := func(id string, sev Severity, st Status, resource string) Result {
		return Result{RuleID: id, Severity: sev, Status: st, Resource: resource}
	}
	allow := `arcagent config set extensions.allowlist "Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"`
	tier0 := []Rule{
		rule("T1", SeverityCritical, "tier0", "arcagent config set incomingconnections.enabled false"),
		rule("T2", SeverityCritical, "tier0", allow),
		rule("T3", SeverityHigh, "tier0", "arcagent config set guestconfiguration.enabled false"),
		rule("T4", SeverityCritical, "tier0", allow),
		rule("T5", SeverityHigh, "tier0", ""),
		rule("B1", SeverityMedium, "baseline", "systemctl restart himdsd"),
		rule("B2", SeverityLow, "baseline", "apt-get install --only-upgrade arcagent"),
	}
	for _, tc := range []struct {
		name    string
		results []Result
		want    htmlBrief
	}{
		{"the default install", []Result{
			res("T1", SeverityCritical, StatusFail, ""), res("T2", SeverityCritical, StatusFail, ""), res("T4", SeverityCritical, StatusFail, ""),
			res("T3", SeverityHigh, StatusFail, ""), res("B1", SeverityMedium, StatusFail, ""), res("T5", SeverityHigh, StatusNotApplicable, ""),
		}, htmlBrief{
			Lead:     "4 Tier 0 controls are off; these 3 commands fix them:",
			Commands: []string{"arcagent config set incomingconnections.enabled false", allow, "arcagent config set guestconfiguration.enabled false"},
			Rest:     "1 other rule fails too (1 medium): see the findings below.",
		}},
		{"one control, two resources", []Result{res("T3", SeverityHigh, StatusFail, "a"), res("T3", SeverityHigh, StatusFail, "b")}, htmlBrief{
			Lead: "1 Tier 0 control is off; this command fixes it:", Commands: []string{"arcagent config set guestconfiguration.enabled false"},
		}},
		{"a control without a command", []Result{res("T1", SeverityCritical, StatusFail, ""), res("T5", SeverityHigh, StatusFail, ""), res("B1", SeverityMedium, StatusError, "")}, htmlBrief{
			Lead: "2 Tier 0 controls are off; this command fixes them:", Commands: []string{"arcagent config set incomingconnections.enabled false"},
			Rest: "1 of them has no command; 1 check could not be evaluated: see the findings below.",
		}},
		{"only a control without a command", []Result{res("T5", SeverityHigh, StatusFail, "")}, htmlBrief{
			Lead: "1 Tier 0 control is off: see the findings below for how to fix it.",
		}},
		{"no Tier 0 failure", []Result{res("B1", SeverityMedium, StatusFail, ""), res("B2", SeverityLow, StatusFail, ""), res("T1", SeverityCritical, StatusWaived, "")}, htmlBrief{
			Lead: "2 rules fail; these 2 commands fix them:", Commands: []string{"systemctl restart himdsd", "apt-get install --only-upgrade arcagent"},
			Rest: "1 finding is waived: see the findings below.",
		}},
		{"a rule the report does not describe", []Result{res("X9", SeverityHigh, StatusFail, "")}, htmlBrief{
			Lead: "1 rule fails: see the findings below for how to fix it.",
		}},
		{"hardened", []Result{res("T1", SeverityCritical, StatusPass, ""), res("T5", SeverityHigh, StatusNotApplicable, "")}, htmlBrief{
			Lead: "No control is off: nothing fails.",
		}},
		{"incomplete", []Result{res("T1", SeverityCritical, StatusPass, ""), res("T3", SeverityHigh, StatusError, ""), res("B1", SeverityHigh, StatusError, "")}, htmlBrief{
			Lead: "Nothing fails, but 2 checks could not be evaluated: the audit is incomplete.",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{Rules: tier0, Results: tc.results, FailOn: SeverityHigh}
			r.Summarize()
			got := htmlBriefOf(r, countResults(r))
			if got.Lead != tc.want.Lead || got.Rest != tc.want.Rest || !slices.Equal(got.Commands, tc.want.Commands) {
				t.Errorf("got\n  %q\n  %q\n  %q\nwant\n  %q\n  %q\n  %q", got.Lead, got.Commands, got.Rest, tc.want.Lead, tc.want.Commands, tc.want.Rest)
			}
			page := string(renderFormat(t, "html", r))
			if !strings.Contains(page, `<section class="brief panel"`) || !strings.Contains(page, html.EscapeString(got.Lead)) {
				t.Errorf("the page does not show the brief %q", got.Lead)
			}
		})
	}
}

// TestHTMLColumnsAndDefaults: the Resource column goes when no result has
// a resource; not applicable and passed rows start hidden (their boxes
// unticked) and not applicable rows get a grey severity badge.
func TestHTMLColumnsAndDefaults(t *testing.T) {
	r := hardenedReport()
	page := string(renderFormat(t, "html", r))
	if !strings.Contains(page, `<th class="res">Resource</th>`) {
		t.Error("the hardened report names resources but has no Resource column")
	}
	for i := range r.Results {
		r.Results[i].Resource = ""
	}
	page = string(renderFormat(t, "html", r))
	if strings.Contains(page, `<th class="res">Resource</th>`) || strings.Contains(page, `class="res"`) {
		t.Error("the Resource column is there though every row would leave it empty")
	}
	if !strings.Contains(page, `colspan="4"`) {
		t.Error("the empty-table row does not span the 4 remaining columns")
	}
	for _, st := range []Status{StatusPass, StatusNotApplicable} {
		if !strings.Contains(page, `data-filter="status" value="`+string(st)+`">`) {
			t.Errorf("the %s box is ticked by default", st)
		}
	}
	for _, st := range []Status{StatusFail, StatusError, StatusWaived} {
		if !strings.Contains(page, `data-filter="status" value="`+string(st)+`" checked>`) {
			t.Errorf("the %s box is not ticked by default", st)
		}
	}
	if !strings.Contains(page, `tr[data-status="not_applicable"] .sev{background:var(--na)`) {
		t.Error("not applicable rows do not have grey severity badges")
	}
	if !strings.Contains(page, `<b id="shown">0</b> of 5`) {
		t.Error("the count does not say that the default filters show 0 of 5 results")
	}
}
