package controlplane

import (
	"cmp"
	"net/http"
	"slices"
	"strings"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/controlplane/store"
)

// adminPermissions are the permissions that make a role administrative
// over a machine: whoever holds one can change what the agent does (its
// representation, extensions that run code, guest configuration that
// changes files) or grant that to others. Of the built-in roles, Owner and
// Connected Machine Resource Administrator hold them; Reader and Connected
// Machine Onboarding do not.
var adminPermissions = []string{
	rbac.MachinesWrite, rbac.MachinesDelete, rbac.ExtensionsWrite, rbac.GuestConfigWrite, rbac.RoleAssignmentsWrite,
}

// adminRoles lists the built-in roles the cloud facts count as standing
// administrative roles (see adminPermissions).
func adminRoles() []string {
	var out []string
	for _, r := range rbac.BuiltIn() {
		if isAdminRole(r) {
			out = append(out, r.Name)
		}
	}
	return out
}

func isAdminRole(r rbac.Role) bool {
	return slices.ContainsFunc(adminPermissions, r.Allows)
}

// levelRank orders InheritedFrom values from the widest scope.
var levelRank = map[string]int{apiv1.FromTenant: 0, apiv1.FromSubscription: 1, apiv1.FromResourceGroup: 2, apiv1.FromMachine: 3}

// handleCloudFacts tells a machine what the audit's cloud-side rules need
// about its own scope: the role assignments that apply to it (with where
// each was made), its standing administrators and how many other machines
// share its subscription. Nothing about another scope is in it: no
// assignment made elsewhere, no other machine's name.
func (s *Server) handleCloudFacts(w http.ResponseWriter, r *http.Request, id string, _ *machineEntry) error {
	m, err := s.st.Machine(r.Context(), id)
	if err != nil {
		return storeErr(err, "machine "+id)
	}
	out, err := s.cloudFacts(r, m)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) cloudFacts(r *http.Request, m store.Machine) (apiv1.CloudFacts, error) {
	out := apiv1.CloudFacts{
		MachineID: m.ID, ResourceID: m.ResourceID, SubscriptionID: m.SubscriptionID, ResourceGroup: m.ResourceGroup,
		Assignments: []apiv1.CloudRoleAssignment{}, AdminRoles: adminRoles(), StandingAdmins: []string{},
	}
	as, err := s.st.ListRoleAssignments(r.Context())
	if err != nil {
		return out, err
	}
	admins := map[string]bool{}
	for _, a := range as {
		if !rbac.Within(a.Scope, m.ResourceID) {
			continue // made at another scope: not the machine's to see
		}
		from, ok := inheritedFrom(a.Scope)
		if !ok {
			continue
		}
		out.Assignments = append(out.Assignments, apiv1.CloudRoleAssignment{Principal: a.Principal, Role: a.Role, Scope: rbac.Clean(a.Scope), InheritedFrom: from})
		if role, ok := rbac.LookupRole(a.Role); ok && isAdminRole(role) && !admins[strings.ToLower(a.Principal)] {
			admins[strings.ToLower(a.Principal)] = true
			out.StandingAdmins = append(out.StandingAdmins, a.Principal)
		}
	}
	slices.SortFunc(out.Assignments, func(a, b apiv1.CloudRoleAssignment) int {
		return cmp.Or(cmp.Compare(levelRank[a.InheritedFrom], levelRank[b.InheritedFrom]),
			cmp.Compare(strings.ToLower(a.Principal), strings.ToLower(b.Principal)), cmp.Compare(a.Role, b.Role))
	})
	slices.SortFunc(out.StandingAdmins, func(a, b string) int { return cmp.Compare(strings.ToLower(a), strings.ToLower(b)) })
	out.OtherMachines, err = s.otherMachines(r, m)
	return out, err
}

// otherMachines counts the machines of m's subscription besides m.
func (s *Server) otherMachines(r *http.Request, m store.Machine) (int, error) {
	return s.st.CountOtherMachines(r.Context(), m.SubscriptionID, m.ID)
}

// inheritedFrom names the level of a scope that contains the machine.
func inheritedFrom(scope string) (string, bool) {
	p, err := rbac.ParseScope(scope)
	if err != nil {
		return "", false
	}
	switch p.Level() {
	case "tenant":
		return apiv1.FromTenant, true
	case "subscription":
		return apiv1.FromSubscription, true
	case "resourceGroup":
		return apiv1.FromResourceGroup, true
	case "machine":
		return apiv1.FromMachine, true
	}
	return "", false
}
