package controlplane_test

import (
	"testing"

	"github.com/arcagent/arcagent/controlplane/store/storetest"
)

// TestOnPostgres runs server tests through the real HTTPS server again
// with the store on PostgreSQL (a fresh schema per test): registration
// and onboarding uses, assertions and replay, heartbeats and status,
// desired state, extension and guest configuration assignments, RBAC,
// the token issuer.
func TestOnPostgres(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"OnboardingCredentials", TestOnboardingCredentials},
		{"MachineAssertions", TestMachineAssertions},
		{"DesiredStateAndStatus", TestDesiredStateAndStatus},
		{"MachineDeletesItself", TestMachineDeletesItself},
		{"ExtensionAssignments", TestExtensionAssignments},
		{"GuestConfigAssignments", TestGuestConfigAssignments},
		{"StatusMergesSections", TestStatusMergesSections},
		{"Roles", TestRoles},
		{"OperatorAuthentication", TestOperatorAuthentication},
		{"ForbiddenHidesResource", TestForbiddenHidesResource},
		{"TokensValidateWithJWKS", TestTokensValidateWithJWKS},
		{"LastTenantOwnerSurvivesConcurrentDeletes", TestLastTenantOwnerSurvivesConcurrentDeletes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Postgres(t) // skip (or fail under CI) before changing anything
			envDatabase = func(t testing.TB) string { return storetest.Postgres(t) }
			defer func() { envDatabase = nil }()
			tc.f(t)
		})
	}
}
