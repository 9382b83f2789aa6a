package controlplane_test

import (
	"context"
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
