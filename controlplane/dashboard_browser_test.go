package controlplane_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium. Without it the browser test skips,
// except in CI (CI=true), where a missing browser fails the test: CI must
// not pass by skipping it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed and CI=true: install it (apt-get install -y chromium) so the dashboard's browser test runs")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium): the dashboard's browser test needs it")
	return ""
}

// artifactDir is where the browser test keeps its screenshots
// (build/test-artifacts/ui at the repository root, git-ignored).
func artifactDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("..", "build", "test-artifacts", "ui"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDashboardInChromium drives the dashboard in a real headless Chromium:
// log in, see the three seeded machines, open one, see its failing rule
// with the fix, open the rule page; an operator scoped to one resource
// group sees only its machines and gets 404 on another's page; a bad token
// is refused. Full-page screenshots go to build/test-artifacts/ui/.
func TestDashboardInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	bin := chromiumPath(t)
	f := newFleet(t)
	e := f.e
	dir := artifactDir(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// The server's certificate is signed by the test's own CA.
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	var mu sync.Mutex
	var cspErrors []string
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		if le, ok := ev.(*cdplog.EventEntryAdded); ok && le.Entry != nil && strings.Contains(le.Entry.Text, "Content Security Policy") {
			mu.Lock()
			cspErrors = append(cspErrors, le.Entry.Text)
			mu.Unlock()
		}
	}))
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	enableLog := chromedp.Action[chromedp.Void](func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, cdplog.Enable, cdp.Empty{})
		return chromedp.Void{}, err
	})
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			u, _ := chromedp.Run(ctx, chromedp.Location())
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
			t.Fatalf("%s: %v (at %s: %.2000s)", what, err, u, html)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if envDatabase != nil {
			name = "postgres-" + name // TestDashboardOnPostgres keeps its own
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	location := func() string {
		t.Helper()
		u, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(u, e.url)
	}
	login := func(tok string) {
		t.Helper()
		do("log in", chromedp.Navigate(e.url+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), tok), chromedp.Click(chromedp.ID("login")))
	}
	logout := func() {
		t.Helper()
		do("log out", chromedp.Click(chromedp.CSS("form.logout button")), chromedp.WaitVisible(chromedp.ID("token")))
	}

	// The first Run starts the tab and ties it to ctx (not a step's
	// shorter context).
	if err := chromedp.Do(ctx, enableLog); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Owner: every machine.
	login(f.ownerTok)
	do("overview", chromedp.WaitVisible(chromedp.ID("machines")))
	if got := location(); got != "/ui/" {
		t.Errorf("after login at %s, want /ui/", got)
	}
	machines := text("#machines")
	for _, want := range []string{"web01", "web02", "db01"} {
		if !strings.Contains(machines, want) {
			t.Errorf("overview machine list %q lacks %s", machines, want)
		}
	}
	if got := text("#count-total"); got != "3" {
		t.Errorf("total %q, want 3", got)
	}
	if rules := text("#top-rules"); !strings.Contains(rules, "ARC-SSH-001") {
		t.Errorf("top failing rules %q lack ARC-SSH-001", rules)
	}
	shot("overview.png")

	do("open web01", chromedp.Click(chromedp.CSS(`#machines a[href="/ui/machines/`+f.web01.reg.MachineID+`"]`)), chromedp.WaitVisible(chromedp.ID("findings")))
	if got := text("#machine-name"); got != "web01" {
		t.Errorf("machine page of %q, want web01", got)
	}
	findings := text("#findings")
	if !strings.Contains(findings, "ARC-SSH-001") || !strings.Contains(findings, sshFix) {
		t.Errorf("findings %q lack the failing rule and its fix", findings)
	}
	if ext := text("#extensions"); !strings.Contains(ext, "monitor") || !strings.Contains(ext, "Succeeded") {
		t.Errorf("extensions %q", ext)
	}
	if gc := text("#guestconfig"); !strings.Contains(gc, "NonCompliant") {
		t.Errorf("guest configuration %q", gc)
	}
	shot("machine.png")

	do("open the rule", chromedp.Click(chromedp.CSS(`#findings a[href="/ui/rules/ARC-SSH-001"]`)), chromedp.WaitVisible(chromedp.ID("failing-machines")))
	failing := text("#failing-machines")
	if !strings.Contains(failing, "web01") || !strings.Contains(failing, "db01") || strings.Contains(failing, "web02") {
		t.Errorf("rule page lists %q, want web01 and db01", failing)
	}
	shot("rule.png")
	logout()

	// A reader of the web resource group: its two machines only.
	login(f.readerWeb)
	do("scoped overview", chromedp.WaitVisible(chromedp.ID("machines")))
	machines = text("#machines")
	if !strings.Contains(machines, "web01") || !strings.Contains(machines, "web02") || strings.Contains(machines, "db01") {
		t.Errorf("the web reader sees %q", machines)
	}
	if got := text("#count-total"); got != "2" {
		t.Errorf("the web reader's total %q, want 2", got)
	}
	shot("scoped-overview.png")
	do("db01 outside the scope", chromedp.Navigate(e.url+"/ui/machines/"+f.db01.reg.MachineID), chromedp.WaitVisible(chromedp.CSS("p.error")))
	body := text("main")
	if !strings.Contains(body, "Not found") || strings.Contains(body, "db01") {
		t.Errorf("db01's page for the web reader: %q", body)
	}
	shot("scoped-hidden-machine.png")
	logout()

	// A bad token.
	login("arcp_not-a-real-token")
	do("refused", chromedp.WaitVisible(chromedp.ID("login-error")))
	if msg := text("#login-error"); !strings.Contains(msg, "ARC0640") {
		t.Errorf("login error %q", msg)
	}
	if got := location(); got != "/ui/login" {
		t.Errorf("after a refused login at %s", got)
	}
	shot("login-refused.png")

	mu.Lock()
	defer mu.Unlock()
	if len(cspErrors) > 0 {
		t.Errorf("the pages broke their own Content Security Policy: %q", cspErrors)
	}
}
