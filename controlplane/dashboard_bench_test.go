package controlplane_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/controlplane/store"
)

// indexedAudits is an AuditReader over findings held in memory with the
// lookups the store's indexes give (by machine, by rule, the top rules
// counted once), so that the benchmark measures the dashboard, not a
// linear scan of a fake.
type indexedAudits struct {
	all       []store.AuditFinding
	byMachine map[string][]store.AuditFinding
	byRule    map[string][]store.AuditFinding
	top       map[string][]store.RuleCount // by resource group ("" all)
}

func newIndexedAudits(fs []store.AuditFinding) *indexedAudits {
	ia := &indexedAudits{all: fs, byMachine: map[string][]store.AuditFinding{}, byRule: map[string][]store.AuditFinding{}, top: map[string][]store.RuleCount{}}
	counts := map[string]map[string]*store.RuleCount{}
	seen := map[string]bool{}
	for _, f := range fs {
		ia.byMachine[f.MachineID] = append(ia.byMachine[f.MachineID], f)
		ia.byRule[strings.ToLower(f.RuleID)] = append(ia.byRule[strings.ToLower(f.RuleID)], f)
		if seen[f.RuleID+"/"+f.MachineID] {
			continue
		}
		seen[f.RuleID+"/"+f.MachineID] = true
		for _, k := range []string{"", strings.ToLower(f.ResourceGroup)} {
			if counts[k] == nil {
				counts[k] = map[string]*store.RuleCount{}
			}
			c := counts[k][f.RuleID]
			if c == nil {
				c = &store.RuleCount{RuleID: f.RuleID, Title: f.Title, Severity: f.Severity}
				counts[k][f.RuleID] = c
			}
			c.Machines++
		}
	}
	for k, m := range counts {
		for _, c := range m {
			ia.top[k] = append(ia.top[k], *c)
		}
		slices.SortFunc(ia.top[k], func(a, b store.RuleCount) int { return b.Machines - a.Machines })
	}
	return ia
}

func (ia *indexedAudits) LatestAuditFindings(_ context.Context, f store.AuditFindingFilter) ([]store.AuditFinding, error) {
	var src []store.AuditFinding
	switch {
	case f.MachineID != "":
		src = ia.byMachine[f.MachineID]
	case f.RuleID != "":
		src = ia.byRule[strings.ToLower(f.RuleID)]
	default:
		src = ia.all
	}
	return slices.Clone(src), nil
}

func (ia *indexedAudits) TopFailingRules(_ context.Context, f store.AuditFindingFilter, limit int) ([]store.RuleCount, error) {
	top := ia.top[strings.ToLower(f.ResourceGroup)]
	return slices.Clone(top[:min(limit, len(top))]), nil
}

func (ia *indexedAudits) AuditReports(context.Context, string, string, int) ([]store.AuditReport, error) {
	return nil, nil
}

// seedMachines inserts n machines into the server's real database in one
// transaction (registering 10,000 machines one request at a time would
// time the setup, not the pages). Machine i is in resource group rg(i%2),
// runs agent 1.(i%7).0 and reports one extension and one assignment.
func seedMachines(b *testing.B, dir, sub string, n int, now time.Time) []store.AuditFinding {
	b.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(filepath.Join(dir, controlplane.DBFile))+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	ds, _ := json.Marshal(apiv1.DesiredState{Extensions: []apiv1.ExtensionSpec{{Name: "monitor", Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0"}}, GuestConfigurationAssignments: []apiv1.GuestConfigurationAssignment{}})
	st, _ := json.Marshal(apiv1.MachineStatus{Extensions: []apiv1.ExtensionStatus{{Name: "monitor", Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0", State: "Succeeded"}},
		GuestConfiguration: []apiv1.GuestConfigurationStatus{{Name: "ssh", Policy: "Contoso.Baseline.SSH", Version: "1.0", Mode: "Audit", Compliance: "Compliant"}}})
	var findings []store.AuditFinding
	for i := range n {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		name := fmt.Sprintf("m%05d", i)
		rg := fmt.Sprintf("rg%d", i%2)
		rid := "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/Microsoft.HybridCompute/machines/" + name
		inv, _ := json.Marshal(apiv1.Inventory{Hostname: name, OSType: "linux", OSName: "Ubuntu", OSVersion: "24.04"})
		ver := fmt.Sprintf("1.%d.0", i%7)
		hb := now.Add(-time.Duration(i%40) * time.Minute).UnixMilli()
		if _, err := tx.Exec(`INSERT INTO machines (id, name, name_key, subscription_id, resource_group, rg_key, resource_id, public_key, key_thumbprint, inventory, tags, agent_version, created_at, last_heartbeat, onboarding_id, desired_state, desired_etag, status, status_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'bench', 'bench', ?, '{}', ?, ?, ?, '', ?, '"e"', ?, ?)`,
			id, name, name, sub, rg, rg, rid, string(inv), ver, now.UnixMilli(), hb, string(ds), string(st), now.UnixMilli()); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO machine_heartbeats (machine_id, last_heartbeat, agent_version) VALUES (?, ?, ?)`, id, hb, ver); err != nil {
			b.Fatal(err)
		}
		for j := range 10 {
			rule := fmt.Sprintf("ARC-BEN-%03d", (i+j*7)%50)
			findings = append(findings, store.AuditFinding{MachineID: id, ResourceID: rid, MachineName: name, SubscriptionID: sub, ResourceGroup: rg, Profile: "host",
				RuleID: rule, Severity: []string{"critical", "high", "medium", "low"}[j%4], Title: "rule " + rule, Message: "finding on " + name, Remediation: "fix " + rule, ReportedAt: now})
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return findings
}

// BenchmarkDashboard measures the server time of each dashboard page with
// 10,000 machines and 100,000 findings (the handler called directly, no
// TLS or network): the overview as an Owner and as a reader of one of the
// two resource groups (top rules then counted over the findings the
// reader may see), a machine page, and a rule page (1,000 reports of the
// 2,000 failing it shown 100 per page).
func BenchmarkDashboard(b *testing.B) {
	const machines = 10_000
	ia := &indexedAudits{}
	e := newEnvWith(b, func(c *controlplane.Config) { c.Audits = ia })
	ctx := context.Background()
	sub, err := e.owner.CreateSubscription(ctx, apiv1.CreateSubscriptionRequest{DisplayName: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	for _, g := range []string{"rg0", "rg1"} {
		if _, err := e.owner.CreateResourceGroup(ctx, sub.SubID, apiv1.CreateResourceGroupRequest{Name: g}); err != nil {
			b.Fatal(err)
		}
	}
	findings := seedMachines(b, e.dir, sub.SubID, machines, e.clock.Now())
	*ia = *newIndexedAudits(findings)
	if _, err := e.owner.AssignRole(ctx, apiv1.CreateRoleAssignmentRequest{Principal: "reader", Role: rbac.Reader, Scope: rbac.ResourceGroupScope(sub.SubID, "rg0")}); err != nil {
		b.Fatal(err)
	}
	reader, err := e.owner.CreateAPIToken(ctx, apiv1.CreateAPITokenRequest{Principal: "reader"})
	if err != nil {
		b.Fatal(err)
	}
	h := e.srv.Handler()
	page := func(b *testing.B, tok, path, want string) {
		b.Helper()
		req := httptest.NewRequest(http.MethodGet, "https://"+strings.TrimPrefix(e.url, "https://")+path, nil)
		req.AddCookie(&http.Cookie{Name: "arcagent_ui", Value: tok})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
			b.Fatalf("GET %s: %d (%.300s)", path, rec.Code, rec.Body.String())
		}
		b.SetBytes(int64(rec.Body.Len()))
	}
	m := "/ui/machines/" + fmt.Sprintf("%08x-0000-4000-8000-%012x", 4242, 4242)
	for _, c := range []struct{ name, tok, path, want string }{
		{"overview", e.ownerT, "/ui/", `id="count-total">10000<`},
		{"overview-page-50-connected", e.ownerT, "/ui/?status=Connected&page=50", "page"},
		{"overview-rg-reader", reader.Token, "/ui/", `id="count-total">5000<`},
		{"machine", e.ownerT, m, "m04242"},
		{"rule", e.ownerT, "/ui/rules/" + url.PathEscape("ARC-BEN-007"), "page 1 of"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				page(b, c.tok, c.path, c.want)
			}
		})
	}
}
