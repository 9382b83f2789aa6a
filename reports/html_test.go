package reports

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
			// Passed results are hidden by the default filter; the rest show.
			var pass, shown int
			for _, res := range tc.report.Results {
				if res.Status == StatusPass {
					pass++
				} else {
					shown++
				}
			}
			if n := strings.Count(dom, `data-status="pass" hidden=""`); n != pass {
				t.Errorf("%d passed rows hidden by the default filter, want %d", n, pass)
			}
			if want := `<b id="shown">` + strconv.Itoa(shown) + `</b>`; !strings.Contains(dom, want) {
				t.Errorf("the filter count does not read %s", want)
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
