package controlplane_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
)

// TestCloudFacts: a machine sees the assignments that apply to it (the
// tenant, its subscription, its resource group, itself) with where each
// was made, its standing administrators (Owner and Resource Administrator,
// not Reader or Onboarding) and how many other machines share its
// subscription; nothing about another resource group, another machine or
// another subscription leaks into the body.
func TestCloudFacts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	subA := e.scope("prod", "rg1", "rg2")
	subB := e.scope("other", "rg3")
	m1 := e.mustRegister(subA, "rg1", "web01")
	m2 := e.mustRegister(subA, "rg1", "web02")
	e.mustRegister(subA, "rg2", "db01")
	m4 := e.mustRegister(subB, "rg3", "lone01")
	for _, a := range []apiv1.CreateRoleAssignmentRequest{
		{Principal: "alice", Role: rbac.Owner, Scope: rbac.SubscriptionScope(subA)},
		{Principal: "bob", Role: rbac.Reader, Scope: rbac.ResourceGroupScope(subA, "rg1")},
		{Principal: "frank", Role: rbac.Onboarding, Scope: rbac.ResourceGroupScope(subA, "rg1")},
		{Principal: "carol", Role: rbac.ResourceAdministrator, Scope: m1.reg.ResourceID},
		{Principal: "Alice", Role: rbac.ResourceAdministrator, Scope: rbac.ResourceGroupScope(subA, "rg1")},
		// Elsewhere: never in web01's facts.
		{Principal: "dave-rg2", Role: rbac.Owner, Scope: rbac.ResourceGroupScope(subA, "rg2")},
		{Principal: "erin-web02", Role: rbac.ResourceAdministrator, Scope: m2.reg.ResourceID},
		{Principal: "gina-subB", Role: rbac.Owner, Scope: rbac.SubscriptionScope(subB)},
	} {
		if _, err := e.owner.AssignRole(ctx, a); err != nil {
			t.Fatal(err)
		}
	}

	got, err := m1.m.CloudFacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ principal, role, from string }
	var rows []row
	for _, a := range got.Assignments {
		rows = append(rows, row{a.Principal, a.Role, a.InheritedFrom})
	}
	want := []row{
		{"owner", rbac.Owner, apiv1.FromTenant},
		{"alice", rbac.Owner, apiv1.FromSubscription},
		{"Alice", rbac.ResourceAdministrator, apiv1.FromResourceGroup},
		{"bob", rbac.Reader, apiv1.FromResourceGroup},
		{"frank", rbac.Onboarding, apiv1.FromResourceGroup},
		{"carol", rbac.ResourceAdministrator, apiv1.FromMachine},
	}
	if !slices.Equal(rows, want) {
		t.Errorf("assignments of web01:\n got %v\nwant %v", rows, want)
	}
	if w := []string{"alice", "carol", "owner"}; !slices.Equal(got.StandingAdmins, w) {
		t.Errorf("standing admins %v, want %v (each principal once, Reader and Onboarding not counted)", got.StandingAdmins, w)
	}
	if w := []string{rbac.Owner, rbac.ResourceAdministrator}; !slices.Equal(got.AdminRoles, w) {
		t.Errorf("admin roles %v, want %v", got.AdminRoles, w)
	}
	if got.OtherMachines != 2 || got.MachineID != m1.reg.MachineID || got.SubscriptionID != subA || got.ResourceGroup != "rg1" || got.ResourceID != m1.reg.ResourceID {
		t.Errorf("facts of web01: %+v, want 2 other machines in its subscription", got)
	}

	// The raw body names nothing of another scope.
	a, err := cloud.SignAssertion(m1.key, m1.reg.MachineID, m1.reg.Audience, e.clock.Now(), cloud.DefaultAssertionLifetime)
	if err != nil {
		t.Fatal(err)
	}
	status, hdr, _, body := e.raw(http.MethodGet, "/v1/machines/"+m1.reg.MachineID+"/cloudFacts", a, "", nil)
	if status != http.StatusOK || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("cloudFacts: HTTP %d, Cache-Control %q", status, hdr.Get("Cache-Control"))
	}
	for _, leak := range []string{"dave-rg2", "erin-web02", "gina-subB", "web02", "db01", "lone01", "rg2", "rg3", subB, m2.reg.MachineID} {
		if strings.Contains(string(body), leak) {
			t.Errorf("web01's cloud facts name %q of another scope: %s", leak, body)
		}
	}

	// A machine alone in its subscription.
	lone, err := m4.m.CloudFacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lone.OtherMachines != 0 || !slices.Equal(lone.StandingAdmins, []string{"gina-subB", "owner"}) || len(lone.Assignments) != 2 {
		t.Errorf("facts of lone01: %+v", lone)
	}

	// Only the machine itself, and only with its assertion.
	other := e.client.Machine(m2.reg.MachineID, m1.reg.Audience, m1.key)
	other.Now = e.clock.Now
	_, err = other.CloudFacts(ctx)
	wantCode(t, err, http.StatusUnauthorized, apiv1.CodeAssertionInvalid)
	a, err = cloud.SignAssertion(m1.key, m1.reg.MachineID, m1.reg.Audience, e.clock.Now(), cloud.DefaultAssertionLifetime)
	if err != nil {
		t.Fatal(err)
	}
	status, _, ae, _ := e.raw(http.MethodGet, "/v1/machines/"+m2.reg.MachineID+"/cloudFacts", a, "", nil)
	if status != http.StatusForbidden || ae.Code != string(apiv1.CodeForbidden) {
		t.Errorf("web01 asking for web02's facts: HTTP %d %s", status, ae.Code)
	}
	status, _, ae, _ = e.raw(http.MethodGet, "/v1/machines/"+m1.reg.MachineID+"/cloudFacts", e.ownerT, "", nil)
	if status != http.StatusUnauthorized || ae.Code != string(apiv1.CodeAssertionInvalid) {
		t.Errorf("an operator token: HTTP %d %s, want the machine assertion required", status, ae.Code)
	}
}
