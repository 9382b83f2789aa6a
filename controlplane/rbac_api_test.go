package controlplane_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
)

// TestRoles checks, over HTTPS, that each built-in role is allowed and
// denied what it should be, including inheritance from subscription to
// resource group to machine, and that a 403 names the missing permission.
func TestRoles(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub1 := e.scope("prod", "rgA", "rgB")
	sub2 := e.scope("dev", "rgC")
	mA := e.mustRegister(sub1, "rgA", "web-a")
	mB := e.mustRegister(sub1, "rgB", "web-b")
	mC := e.mustRegister(sub2, "rgC", "dev-c")

	rgA := rbac.ResourceGroupScope(sub1, "rgA")
	reader := e.operatorFor("reader", rbac.Reader, rbac.SubscriptionScope(sub1))
	onb := e.operatorFor("onboarder", rbac.Onboarding, rgA)
	admin := e.operatorFor("admin", rbac.ResourceAdministrator, rgA)
	owner2 := e.operatorFor("owner2", rbac.Owner, rbac.SubscriptionScope(sub2))
	machineReader := e.operatorFor("mreader", rbac.Reader, mA.reg.ResourceID)
	nobody := e.operatorFor("nobody", "", "")

	onboard := func(sub, rg string) func(*cloud.Operator) error {
		return func(o *cloud.Operator) error {
			_, err := o.CreateOnboarding(ctx, apiv1.CreateOnboardingRequest{SubscriptionID: sub, ResourceGroup: rg, ExpiresIn: "1h", Uses: 1})
			return err
		}
	}
	getMachine := func(m testMachine) func(*cloud.Operator) error {
		return func(o *cloud.Operator) error { _, err := o.GetMachine(ctx, m.reg.MachineID); return err }
	}
	tagMachine := func(m testMachine) func(*cloud.Operator) error {
		return func(o *cloud.Operator) error {
			_, err := o.UpdateMachineTags(ctx, m.reg.MachineID, apiv1.Tags{"owner": "ops"})
			return err
		}
	}
	listMachines := func(sub, rg string, want int) func(*cloud.Operator) error {
		return func(o *cloud.Operator) error {
			ms, err := o.ListMachines(ctx, sub, rg)
			if err == nil && len(ms) != want {
				t.Errorf("listed %d machines, want %d", len(ms), want)
			}
			return err
		}
	}
	createRG := func(sub string) func(*cloud.Operator) error {
		return func(o *cloud.Operator) error {
			_, err := o.CreateResourceGroup(ctx, sub, apiv1.CreateResourceGroupRequest{Name: "new-" + sub[:8]})
			return err
		}
	}
	assign := func(scope string) func(*cloud.Operator) error {
		return func(o *cloud.Operator) error {
			_, err := o.AssignRole(ctx, apiv1.CreateRoleAssignmentRequest{Principal: "someone", Role: rbac.Reader, Scope: scope})
			return err
		}
	}
	createSub := func(o *cloud.Operator) error {
		_, err := o.CreateSubscription(ctx, apiv1.CreateSubscriptionRequest{DisplayName: "x"})
		return err
	}
	listSubs := func(want int) func(*cloud.Operator) error {
		return func(o *cloud.Operator) error {
			subs, err := o.ListSubscriptions(ctx)
			if err == nil && len(subs) != want {
				t.Errorf("listed %d subscriptions, want %d", len(subs), want)
			}
			return err
		}
	}
	newToken := func(o *cloud.Operator) error {
		_, err := o.CreateAPIToken(ctx, apiv1.CreateAPITokenRequest{Principal: "x"})
		return err
	}
	listGroups := func(sub string, want int) func(*cloud.Operator) error {
		return func(o *cloud.Operator) error {
			gs, err := o.ListResourceGroups(ctx, sub)
			if err == nil && len(gs) != want {
				t.Errorf("listed %d groups, want %d", len(gs), want)
			}
			return err
		}
	}
	deleteMachine := func(m testMachine) func(*cloud.Operator) error {
		return func(o *cloud.Operator) error { return o.DeleteMachine(ctx, m.reg.MachineID) }
	}

	tests := []struct {
		name string
		who  *cloud.Operator
		do   func(*cloud.Operator) error
		perm string // "" means allowed
	}{
		{"reader lists machines in its subscription (inherited by both groups)", reader, listMachines(sub1, "", 2), ""},
		{"reader lists all machines it can see", reader, listMachines("", "", 2), ""},
		{"reader reads a machine two scopes down", reader, getMachine(mA), ""},
		{"reader lists groups", reader, listGroups(sub1, 2), ""},
		{"reader cannot read another subscription's machine", reader, getMachine(mC), rbac.MachinesRead},
		{"reader cannot list another subscription", reader, listMachines(sub2, "", 0), rbac.MachinesRead},
		{"reader cannot tag", reader, tagMachine(mA), rbac.MachinesWrite},
		{"reader cannot delete", reader, deleteMachine(mA), rbac.MachinesDelete},
		{"reader cannot onboard", reader, onboard(sub1, "rgA"), rbac.OnboardingWrite},
		{"reader cannot create groups", reader, createRG(sub1), rbac.ResourceGroupsWrite},
		{"reader cannot assign roles", reader, assign(rgA), rbac.RoleAssignmentsWrite},
		{"reader cannot mint tokens", reader, newToken, rbac.APITokensWrite},
		{"reader cannot list tokens of the tenant", reader, func(o *cloud.Operator) error { _, err := o.ListAPITokens(ctx); return err }, rbac.APITokensRead},
		{"reader cannot revoke tokens", reader, func(o *cloud.Operator) error { return o.RevokeAPIToken(ctx, "x") }, rbac.APITokensDelete},

		{"onboarder creates credentials in its group", onb, onboard(sub1, "rgA"), ""},
		{"onboarder cannot onboard into a sibling group", onb, onboard(sub1, "rgB"), rbac.OnboardingWrite},
		{"onboarder cannot read machines", onb, getMachine(mA), rbac.MachinesRead},
		{"onboarder cannot list machines", onb, listMachines("", "", 0), rbac.MachinesRead},
		{"onboarder cannot tag", onb, tagMachine(mA), rbac.MachinesWrite},
		{"onboarder cannot delete", onb, deleteMachine(mA), rbac.MachinesDelete},
		{"onboarder cannot list subscriptions", onb, listSubs(0), rbac.SubscriptionsRead},
		{"onboarder cannot create groups", onb, createRG(sub1), rbac.ResourceGroupsWrite},

		{"admin reads its machine", admin, getMachine(mA), ""},
		{"admin tags its machine", admin, tagMachine(mA), ""},
		{"admin onboards into its group", admin, onboard(sub1, "rgA"), ""},
		{"admin lists only its group's machines", admin, listMachines("", "", 1), ""},
		{"admin cannot read a sibling group's machine", admin, getMachine(mB), rbac.MachinesRead},
		{"admin cannot delete a sibling group's machine", admin, deleteMachine(mB), rbac.MachinesDelete},
		{"admin cannot create groups", admin, createRG(sub1), rbac.ResourceGroupsWrite},
		{"admin cannot assign roles", admin, assign(rgA), rbac.RoleAssignmentsWrite},
		{"admin cannot create subscriptions", admin, createSub, rbac.SubscriptionsWrite},

		{"subscription owner creates groups in its subscription", owner2, createRG(sub2), ""},
		{"subscription owner assigns roles below it", owner2, assign(rbac.ResourceGroupScope(sub2, "rgC")), ""},
		{"subscription owner onboards (inherited)", owner2, onboard(sub2, "rgC"), ""},
		{"subscription owner cannot touch another subscription", owner2, createRG(sub1), rbac.ResourceGroupsWrite},
		{"subscription owner cannot assign at the tenant", owner2, assign("/"), rbac.RoleAssignmentsWrite},
		{"subscription owner cannot create subscriptions", owner2, createSub, rbac.SubscriptionsWrite},
		{"subscription owner cannot mint tokens", owner2, newToken, rbac.APITokensWrite},
		{"subscription owner lists only its subscription", owner2, listSubs(1), ""},

		{"machine-scoped reader reads that machine", machineReader, getMachine(mA), ""},
		{"machine-scoped reader cannot read its neighbour", machineReader, getMachine(mB), rbac.MachinesRead},
		{"machine-scoped reader sees no groups of the subscription", machineReader, listGroups(sub1, 0), ""},

		{"no role: cannot list machines", nobody, listMachines("", "", 0), rbac.MachinesRead},
		{"no role: cannot list subscriptions", nobody, listSubs(0), rbac.SubscriptionsRead},
		{"no role: cannot list role assignments", nobody, func(o *cloud.Operator) error { _, err := o.ListRoleAssignments(ctx, ""); return err }, rbac.RoleAssignmentsRead},

		{"owner deletes a machine anywhere", e.owner, deleteMachine(mC), ""},
		{"owner creates subscriptions", e.owner, createSub, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do(tc.who)
			if tc.perm == "" {
				if err != nil {
					t.Fatalf("want allowed, got %v", err)
				}
				return
			}
			wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, tc.perm)
		})
	}
}

func TestOperatorAuthentication(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ name, auth, want string }{
		{"no token", "", "Bearer"},
		{"unknown token", "arcp_" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "not known"},
		{"not an API token", "hello", "not an operator API token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, ae, _ := e.raw(http.MethodGet, "/v1/machines", tc.auth, "", nil)
			if status != http.StatusUnauthorized || ae.Code != string(apiv1.CodeUnauthenticated) {
				t.Fatalf("got %d %s", status, ae.Code)
			}
			if h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if !strings.Contains(ae.Message, tc.want) {
				t.Errorf("message %q lacks %q", ae.Message, tc.want)
			}
		})
	}
	// An expired API token is refused.
	tok, err := e.owner.CreateAPIToken(context.Background(), apiv1.CreateAPITokenRequest{Principal: "temp", ExpiresIn: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * 3600e9)
	if _, err := e.client.Operator(tok.Token).Whoami(context.Background()); cloud.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("expired token: %v", err)
	}
	// A revoked token stops working at once.
	ts, err := e.owner.ListAPITokens(context.Background())
	if err != nil || len(ts) < 2 {
		t.Fatalf("tokens %v %v", ts, err)
	}
	for _, x := range ts {
		if x.Token != "" {
			t.Fatal("token list shows a secret")
		}
	}
	tok2, err := e.owner.CreateAPIToken(context.Background(), apiv1.CreateAPITokenRequest{Principal: "owner"})
	if err != nil {
		t.Fatal(err)
	}
	op2 := e.client.Operator(tok2.Token)
	if _, err := op2.Whoami(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.owner.RevokeAPIToken(context.Background(), tok2.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, func() error { _, err := op2.Whoami(context.Background()); return err }(), http.StatusUnauthorized, apiv1.CodeUnauthenticated)
	// The last tenant Owner cannot be removed.
	as, err := e.owner.ListRoleAssignments(context.Background(), "/")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Role == rbac.Owner && a.Scope == "/" {
			wantCode(t, e.owner.DeleteRoleAssignment(context.Background(), a.ID), http.StatusConflict, apiv1.CodeConflict, "last Owner")
		}
	}
}

// TestForbiddenHidesResource checks that the 403 for a resource named by
// id outside the caller's scopes names neither the resource's scope (machine
// name, subscription, resource group) nor tells it apart from a resource
// that does not exist; an Owner of the tenant still gets 404 for the latter.
func TestForbiddenHidesResource(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("payroll-sub", "public-rg", "payroll-rg")
	hidden := e.mustRegister(sub, "payroll-rg", "payroll-db-01")
	ra, err := e.owner.AssignRole(ctx, apiv1.CreateRoleAssignmentRequest{Principal: "payroll-admin", Role: rbac.Reader, Scope: rbac.ResourceGroupScope(sub, "payroll-rg")})
	if err != nil {
		t.Fatal(err)
	}
	cred := e.onboarding(sub, "payroll-rg", 1, "1h")
	// A full administrator of the sibling group, with every permission
	// there but none on payroll-rg.
	if _, err := e.owner.AssignRole(ctx, apiv1.CreateRoleAssignmentRequest{Principal: "neighbour", Role: rbac.Owner, Scope: rbac.ResourceGroupScope(sub, "public-rg")}); err != nil {
		t.Fatal(err)
	}
	tok, err := e.owner.CreateAPIToken(ctx, apiv1.CreateAPITokenRequest{Principal: "neighbour"})
	if err != nil {
		t.Fatal(err)
	}
	ownerTok, err := e.owner.CreateAPIToken(ctx, apiv1.CreateAPITokenRequest{Principal: "owner"})
	if err != nil {
		t.Fatal(err)
	}
	const missing = "3f1c2b4e-9d8a-4c7b-8e6f-5a4b3c2d1e0f"
	secrets := []string{"payroll", sub, hidden.reg.ResourceID, "payroll-db-01"}
	tests := []struct {
		name, method, path, missingPath, body string
	}{
		{"read a machine", "GET", "/v1/machines/" + hidden.reg.MachineID, "/v1/machines/" + missing, ""},
		{"tag a machine", "PATCH", "/v1/machines/" + hidden.reg.MachineID, "/v1/machines/" + missing, `{"tags":{"a":"b"}}`},
		{"delete a machine", "DELETE", "/v1/machines/" + hidden.reg.MachineID, "/v1/machines/" + missing, ""},
		{"delete a role assignment", "DELETE", "/v1/roleAssignments/" + ra.ID, "/v1/roleAssignments/" + missing, ""},
		{"revoke an onboarding credential", "DELETE", "/v1/onboardingCredentials/" + cred.ID, "/v1/onboardingCredentials/" + missing, ""},
	}
	send := func(method, path, auth, body string) (int, apiv1.Error) {
		var rd io.Reader
		ct := ""
		if body != "" {
			rd, ct = strings.NewReader(body), "application/json"
		}
		status, _, ae, _ := e.raw(method, path, auth, ct, rd)
		return status, ae
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, ae := send(tc.method, tc.path, tok.Token, tc.body)
			if status != http.StatusForbidden || ae.Code != string(apiv1.CodeForbidden) {
				t.Fatalf("existing resource: got %d %s %q, want 403", status, ae.Code, ae.Message)
			}
			for _, s := range secrets {
				if strings.Contains(ae.Message, s) {
					t.Errorf("403 message %q reveals %q", ae.Message, s)
				}
			}
			mStatus, mae := send(tc.method, tc.missingPath, tok.Token, tc.body)
			id := tc.path[strings.LastIndex(tc.path, "/")+1:]
			if mStatus != status || mae.Code != ae.Code || strings.ReplaceAll(mae.Message, missing, id) != ae.Message {
				t.Errorf("a missing resource answers %d %s %q; an existing one %d %s %q: they must not differ", mStatus, mae.Code, mae.Message, status, ae.Code, ae.Message)
			}
			if oStatus, oae := send(tc.method, tc.missingPath, ownerTok.Token, tc.body); oStatus != http.StatusNotFound {
				t.Errorf("tenant Owner, missing resource: got %d %s %q, want 404", oStatus, oae.Code, oae.Message)
			}
		})
	}
	// The hidden resources are untouched.
	if _, err := e.owner.GetMachine(ctx, hidden.reg.MachineID); err != nil {
		t.Errorf("machine gone: %v", err)
	}
}
