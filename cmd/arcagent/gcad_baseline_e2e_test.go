//go:build !windows

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/arcagent/arcagent/agent/guestconfig"
	"github.com/arcagent/arcagent/audit"
	"github.com/arcagent/arcagent/audit/fixture"
	"github.com/arcagent/arcagent/reports"
)

// TestGcadBaselineMatchesAuditHost: the built-in baseline, exported with
// `guestconfig baseline`, built, signed, published and assigned in Audit
// mode, gives through gcad exactly the verdicts `arcagent audit --profile
// host --root` gives for the same machine root, resource by resource, and
// neither changes the tree.
func TestGcadBaselineMatchesAuditHost(t *testing.T) {
	w := newGCWorld(t)
	tr := fixture.New(t, w.root)
	tr.HostBaseline(true)

	src := filepath.Join(w.tmp, "baseline")
	w.ok("guestconfig", "baseline", "--out", src)
	dist := filepath.Join(w.tmp, "dist-baseline")
	w.ok("guestconfig", "build", src, "--publisher", gcPublisher, "--out", dist)
	doc, err := guestconfig.Baseline()
	if err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(dist, gcPublisher+"."+doc.Name+"-"+doc.Version+".zip")
	w.ok("package", "sign", pkg, "--kind", "guestconfig", "--key", filepath.Join(w.tmp, "contoso.key"))
	w.ok("fleet", "guestconfig", "publish", pkg)
	w.assign("baseline", gcPublisher+"."+doc.Name, doc.Version, "Audit", nil)

	before := treeHash(t, filepath.Join(w.root, "etc"))
	w.once()
	report := filepath.Join(w.tmp, "host.json")
	_, stderr, code := runBin(t, w.bin, "audit", "--profile", "host", "--root", w.root, "-o", "json="+report)
	if code != 1 {
		t.Fatalf("audit --profile host of a weak host: exit %d, want 1 (findings)\n%s", code, stderr)
	}
	sameHashes(t, "gcad Audit and audit --profile host", before, treeHash(t, filepath.Join(w.root, "etc")))

	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep reports.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	byRule := map[string]reports.Result{}
	for _, r := range rep.Results {
		byRule[r.RuleID] = r
	}
	want := map[string]reports.Status{
		guestconfig.Compliant: reports.StatusPass, guestconfig.NonCompliant: reports.StatusFail,
		guestconfig.Error: reports.StatusError, guestconfig.NotApplicable: reports.StatusNotApplicable,
	}
	g := w.reported("baseline")
	if g.Compliance != guestconfig.NonCompliant || len(g.Resources) != len(doc.Resources) || len(byRule) != len(doc.Resources) {
		t.Fatalf("gcad %s with %d resources, audit %d results, baseline %d resources", g.Compliance, len(g.Resources), len(byRule), len(doc.Resources))
	}
	fails := 0
	for _, r := range g.Resources {
		a, ok := byRule[audit.HostRuleID(r.ID)]
		if !ok || a.Status != want[r.Compliance] {
			t.Errorf("%s: gcad %s (%s), audit %s (%s)", r.ID, r.Compliance, r.Reason, a.Status, a.Message)
		}
		if r.Compliance == guestconfig.NonCompliant {
			fails++
			if a.Message != r.Reason {
				t.Errorf("%s: gcad says %q, the audit %q", r.ID, r.Reason, a.Message)
			}
		}
	}
	if fails < 5 {
		t.Errorf("only %d non-compliant resources on the weak host", fails)
	}
}
