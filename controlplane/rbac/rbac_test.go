package rbac

import "testing"

func TestAllowed(t *testing.T) {
	sub := SubscriptionScope("s1")
	rg := ResourceGroupScope("s1", "web")
	m := MachineScope("s1", "web", "m1")
	tests := []struct {
		name  string
		as    []Assignment
		perm  string
		scope string
		want  bool
	}{
		{"owner at tenant reaches a machine", []Assignment{{Owner, "/"}}, MachinesDelete, m, true},
		{"reader inherits from subscription to machine", []Assignment{{Reader, sub}}, MachinesRead, m, true},
		{"reader cannot write", []Assignment{{Reader, sub}}, MachinesWrite, m, false},
		{"assignment below does not reach up", []Assignment{{Owner, rg}}, ResourceGroupsWrite, sub, false},
		{"sibling group", []Assignment{{Owner, rg}}, MachinesRead, MachineScope("s1", "db", "m2"), false},
		{"prefix is not ancestry", []Assignment{{Owner, ResourceGroupScope("s1", "we")}}, MachinesRead, m, false},
		{"case-insensitive scopes", []Assignment{{Reader, "/SUBSCRIPTIONS/S1/resourcegroups/WEB"}}, MachinesRead, m, true},
		{"onboarding creates credentials", []Assignment{{Onboarding, rg}}, OnboardingWrite, rg, true},
		{"onboarding reads no machines", []Assignment{{Onboarding, rg}}, MachinesRead, m, false},
		{"admin manages extensions", []Assignment{{ResourceAdministrator, rg}}, ExtensionsWrite, m, true},
		{"admin publishes packages", []Assignment{{ResourceAdministrator, "/"}}, PackagesWrite, "/", true},
		{"admin below the tenant cannot publish", []Assignment{{ResourceAdministrator, sub}}, PackagesWrite, "/", false},
		{"reader lists packages", []Assignment{{Reader, "/"}}, PackagesRead, "/", true},
		{"reader cannot publish", []Assignment{{Reader, "/"}}, PackagesWrite, "/", false},
		{"onboarding cannot publish", []Assignment{{Onboarding, "/"}}, PackagesWrite, "/", false},
		{"admin manages guest configuration", []Assignment{{ResourceAdministrator, rg}}, GuestConfigWrite, m, true},
		{"admin assigns guest configuration at its group", []Assignment{{ResourceAdministrator, rg}}, GuestConfigWrite, rg, true},
		{"owner assigns guest configuration", []Assignment{{Owner, sub}}, GuestConfigWrite, rg, true},
		{"reader reads guest configuration", []Assignment{{Reader, sub}}, GuestConfigRead, m, true},
		{"reader cannot assign guest configuration", []Assignment{{Reader, "/"}}, GuestConfigWrite, rg, false},
		{"onboarding cannot assign guest configuration", []Assignment{{Onboarding, "/"}}, GuestConfigWrite, m, false},
		{"admin assigns no roles", []Assignment{{ResourceAdministrator, rg}}, RoleAssignmentsWrite, rg, false},
		{"unknown role grants nothing", []Assignment{{"God", "/"}}, MachinesRead, m, false},
		{"role names are case-insensitive", []Assignment{{"owner", "/"}}, MachinesRead, m, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Allowed(tc.as, tc.perm, tc.scope); got != tc.want {
				t.Fatalf("Allowed(%v, %s, %s) = %v", tc.as, tc.perm, tc.scope, got)
			}
		})
	}
}

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in, level string
		ok        bool
	}{
		{"/", "tenant", true},
		{"", "tenant", true},
		{"/subscriptions/a", "subscription", true},
		{"/subscriptions/a/resourceGroups/b/", "resourceGroup", true},
		{"/subscriptions/a/resourceGroups/b/providers/Microsoft.HybridCompute/machines/c", "machine", true},
		{"/subscriptions", "", false},
		{"/subscriptions/a/foo/b", "", false},
		{"/subscriptions//resourceGroups/b", "", false},
		{"/subscriptions/a/resourceGroups/b/providers/Other/machines/c", "", false},
		{"/tenants/x", "", false},
	} {
		p, err := ParseScope(tc.in)
		if (err == nil) != tc.ok || (tc.ok && p.Level() != tc.level) {
			t.Errorf("ParseScope(%q) = %+v, %v", tc.in, p, err)
		}
	}
}

func TestMatchAction(t *testing.T) {
	for _, tc := range []struct {
		pattern, perm string
		want          bool
	}{
		{"*", "a/b/read", true},
		{"*/read", "Microsoft.HybridCompute/machines/read", true},
		{"*/read", "Microsoft.HybridCompute/machines/write", false},
		{"Microsoft.HybridCompute/machines/*", "Microsoft.HybridCompute/machines/extensions/write", true},
		{"Microsoft.HybridCompute/machines/*", "Microsoft.HybridCompute/onboardingCredentials/write", false},
		{"a/read", "A/READ", true},
	} {
		if got := matchAction(tc.pattern, tc.perm); got != tc.want {
			t.Errorf("matchAction(%q, %q) = %v", tc.pattern, tc.perm, got)
		}
	}
	// Every built-in role is reachable and every permission is granted by Owner.
	for _, p := range AllPermissions() {
		if r, _ := LookupRole(Owner); !r.Allows(p) {
			t.Errorf("Owner lacks %s", p)
		}
	}
}
