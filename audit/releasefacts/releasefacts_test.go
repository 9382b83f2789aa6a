package releasefacts

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/arcagent/arcagent/audit"
	"github.com/arcagent/arcagent/audit/fixture"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/releases"
	"github.com/arcagent/arcagent/reports"
	"github.com/arcagent/arcagent/rules"
)

func day(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

var testNow = day("2026-06-01")

var testReleases = []releases.Release{
	{Version: "v1.0.0", Published: day("2025-01-01")},
	{Version: "v1.1.0", Published: day("2025-05-01")},
	{Version: "v1.2.0", Published: day("2025-08-01")},
	{Version: "v1.3.0", Published: day("2026-01-01")},
}

func testSource() *releases.StaticSource {
	return &releases.StaticSource{Name: "fake source", ByProduct: map[string][]releases.Release{
		releases.AgentProduct: {
			{Version: "1.27.02100.100", Published: day("2025-03-01")},
			{Version: "1.28.02260.736", Published: day("2025-09-01")},
			{Version: "1.29.02300.1", Published: day("2026-02-01")},
		},
		"Contoso.Monitoring.StatusReporter": testReleases,
	}}
}

func isCode(err error, c errcode.Code) bool {
	var ce *errcode.Error
	return errors.As(err, &ce) && ce.Code == c
}

func TestCollectReleases(t *testing.T) {
	f := &audit.Facts{}
	f.Agent.Installed, f.Agent.Version = true, "1.28.02260.736"
	f.Extensions.Installed = []audit.ExtensionFact{
		{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.1.0"},
		{Publisher: "Other.Vendor", Type: "Thing", Version: "1.0"}, // not tracked
		{Type: "broken"}, // no publisher: skipped
	}
	c := &Collector{Checker: &releases.Checker{Source: testSource(), Now: testNow}}
	r, err := c.CollectReleases(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Available || r.Agent == nil || r.Agent.State != releases.StateBehind || r.Agent.Behind != 1 || !r.Agent.Supported || r.Agent.Current {
		t.Errorf("agent %+v", r.Agent)
	}
	if len(r.Extensions) != 1 || r.Extensions[0].Product != "Contoso.Monitoring.StatusReporter" || r.Extensions[0].State != releases.StateUnsupported {
		t.Errorf("extensions %+v", r.Extensions)
	}
	// A source that fails is an error (the rules then yield error).
	src := testSource()
	delete(src.ByProduct, releases.AgentProduct)
	src.Err = errcode.New(releases.CodeUnreachable, "fake source down")
	if _, err := (&Collector{Checker: &releases.Checker{Source: src}}).CollectReleases(context.Background(), f); !isCode(err, releases.CodeUnreachable) {
		t.Errorf("failing source: %v", err)
	}
}

// The baseline currency rules become applicable with a source and stay
// not applicable, with the reason, without one.
func TestAuditCurrencyRules(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	tr := fixture.New(t, root)
	tr.DefaultInstall() // agent 1.0.0
	tr.UnsignedExtension("Contoso.Monitoring", "StatusReporter", "1.3.0")
	rs, err := rules.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	src := &releases.StaticSource{Name: "fake source", ByProduct: map[string][]releases.Release{
		releases.AgentProduct:               {{Version: "1.0.0", Published: day("2024-01-01")}, {Version: "1.1.0", Published: day("2026-01-01")}},
		"Contoso.Monitoring.StatusReporter": testReleases,
	}}
	run := func(rc audit.ReleasesCollector) map[string]reports.Result {
		o := audit.RunOptions{Collect: audit.Options{Root: root, Releases: rc, Now: testNow}, Rules: rs,
			Select: audit.Selection{Rules: []string{"ARC-BL-001", "ARC-BL-002", "ARC-BL-003", "ARC-BL-004"}}, FailOn: reports.SeverityHigh}
		if rc != nil {
			o.Collect.Releases = rc
		}
		res, err := audit.Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]reports.Result{}
		for _, r := range res.Report.Results {
			out[r.RuleID] = r
		}
		return out
	}
	without := run(nil)
	for _, id := range []string{"ARC-BL-001", "ARC-BL-002", "ARC-BL-003", "ARC-BL-004"} {
		if r := without[id]; r.Status != reports.StatusNotApplicable || r.Reason != "no release source is configured" {
			t.Errorf("without a source %s: %s %q", id, r.Status, r.Reason)
		}
	}
	with := run(&Collector{Checker: &releases.Checker{Source: src, Now: testNow}})
	want := map[string]reports.Status{
		"ARC-BL-001": reports.StatusFail, // agent 1.0.0 released 2024: out of support
		"ARC-BL-002": reports.StatusFail, // and behind
		"ARC-BL-003": reports.StatusPass, // extension 1.3.0 is the latest
		"ARC-BL-004": reports.StatusPass,
	}
	for id, st := range want {
		if r := with[id]; r.Status != st {
			t.Errorf("with a source %s: %s (%s %s), want %s", id, r.Status, r.Message, r.Reason, st)
		}
	}
	if m := with["ARC-BL-001"].Message; m != "Agent 1.0.0 is out of support (older than the support window of 1y: the oldest supported release is 1.1.0 (latest 1.1.0))" {
		t.Errorf("message %q", m)
	}
}
