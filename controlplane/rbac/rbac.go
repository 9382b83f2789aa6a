// Package rbac holds the control plane's scopes, permissions and built-in
// roles, and decides whether a set of role assignments grants a permission
// at a scope. Scopes form a tree (tenant "/" › /subscriptions/{s} ›
// …/resourceGroups/{g} › …/providers/Microsoft.HybridCompute/machines/{m});
// an assignment at a scope applies there and to everything below it.
// Names compare case-insensitively, as in Azure.
package rbac

import (
	"fmt"
	"slices"
	"strings"
)

// Permissions (Azure-style action strings) that endpoints check.
const (
	SubscriptionsRead   = "Microsoft.Resources/subscriptions/read"
	SubscriptionsWrite  = "Microsoft.Resources/subscriptions/write"
	ResourceGroupsRead  = "Microsoft.Resources/subscriptions/resourceGroups/read"
	ResourceGroupsWrite = "Microsoft.Resources/subscriptions/resourceGroups/write"
	MachinesRead        = "Microsoft.HybridCompute/machines/read"
	MachinesWrite       = "Microsoft.HybridCompute/machines/write"
	MachinesDelete      = "Microsoft.HybridCompute/machines/delete"
	ExtensionsRead      = "Microsoft.HybridCompute/machines/extensions/read"
	ExtensionsWrite     = "Microsoft.HybridCompute/machines/extensions/write"
	// PackagesRead and PackagesWrite guard the package repository; they
	// are checked at the tenant scope ("/"), where the repository lives.
	PackagesRead          = "Microsoft.HybridCompute/extensionPackages/read"
	PackagesWrite         = "Microsoft.HybridCompute/extensionPackages/write"
	OnboardingRead        = "Microsoft.HybridCompute/onboardingCredentials/read"
	OnboardingWrite       = "Microsoft.HybridCompute/onboardingCredentials/write"
	OnboardingDelete      = "Microsoft.HybridCompute/onboardingCredentials/delete"
	GuestConfigRead       = "Microsoft.GuestConfiguration/guestConfigurationAssignments/read"
	GuestConfigWrite      = "Microsoft.GuestConfiguration/guestConfigurationAssignments/write"
	RoleAssignmentsRead   = "Microsoft.Authorization/roleAssignments/read"
	RoleAssignmentsWrite  = "Microsoft.Authorization/roleAssignments/write"
	RoleAssignmentsDelete = "Microsoft.Authorization/roleAssignments/delete"
	APITokensRead         = "Microsoft.Authorization/apiTokens/read"
	APITokensWrite        = "Microsoft.Authorization/apiTokens/write"
	APITokensDelete       = "Microsoft.Authorization/apiTokens/delete"
)

// Built-in role names.
const (
	Owner                 = "Owner"
	Reader                = "Reader"
	Onboarding            = "Connected Machine Onboarding"
	ResourceAdministrator = "Connected Machine Resource Administrator"
)

// Role is a named set of permission patterns. A pattern is an exact
// permission, "*" (everything), or a pattern with one "*" that matches any
// run of characters (e.g. "*/read", "Microsoft.HybridCompute/machines/*").
type Role struct {
	Name        string
	Description string
	Actions     []string
}

var builtIn = []Role{
	{Name: Owner, Description: "Full access to everything at the scope, including assigning roles.", Actions: []string{"*"}},
	{Name: Reader, Description: "View everything at the scope; change nothing.", Actions: []string{"*/read"}},
	{Name: Onboarding, Description: "Onboard machines into the scope (create onboarding credentials); nothing else.", Actions: []string{
		"Microsoft.HybridCompute/onboardingCredentials/*",
	}},
	{Name: ResourceAdministrator, Description: "Read, change and delete machines, their extensions and guest configuration assignments; publish extension packages; onboard machines.", Actions: []string{
		"Microsoft.HybridCompute/machines/*",
		"Microsoft.HybridCompute/extensionPackages/*",
		"Microsoft.HybridCompute/onboardingCredentials/*",
		"Microsoft.GuestConfiguration/guestConfigurationAssignments/*",
		SubscriptionsRead,
		ResourceGroupsRead,
	}},
}

// BuiltIn returns the built-in roles.
func BuiltIn() []Role {
	out := make([]Role, len(builtIn))
	copy(out, builtIn)
	return out
}

// LookupRole finds a built-in role by name, case-insensitively.
func LookupRole(name string) (Role, bool) {
	for _, r := range builtIn {
		if strings.EqualFold(r.Name, strings.TrimSpace(name)) {
			return r, true
		}
	}
	return Role{}, false
}

// RoleNames lists the built-in role names.
func RoleNames() []string {
	var n []string
	for _, r := range builtIn {
		n = append(n, r.Name)
	}
	return n
}

// Allows reports whether the role grants perm.
func (r Role) Allows(perm string) bool {
	for _, p := range r.Actions {
		if matchAction(p, perm) {
			return true
		}
	}
	return false
}

func matchAction(pattern, perm string) bool {
	pattern, perm = strings.ToLower(pattern), strings.ToLower(perm)
	i := strings.IndexByte(pattern, '*')
	if i < 0 {
		return pattern == perm
	}
	pre, suf := pattern[:i], pattern[i+1:]
	return len(perm) >= len(pre)+len(suf) && strings.HasPrefix(perm, pre) && strings.HasSuffix(perm, suf)
}

// Assignment is the part of a role assignment a decision needs.
type Assignment struct {
	Role  string
	Scope string
}

// Within reports whether scope is target or an ancestor of it.
func Within(scope, target string) bool {
	s, t := strings.ToLower(Clean(scope)), strings.ToLower(Clean(target))
	if s == "/" || s == t {
		return true
	}
	return strings.HasPrefix(t, s+"/")
}

// Clean normalises a scope: a leading slash, no trailing slash, "/" for
// the tenant.
func Clean(scope string) string {
	scope = strings.TrimSpace(scope)
	scope = strings.TrimRight(scope, "/")
	if scope == "" {
		return "/"
	}
	if !strings.HasPrefix(scope, "/") {
		scope = "/" + scope
	}
	return scope
}

// Allowed reports whether any assignment grants perm at scope (directly or
// by inheritance from an ancestor scope).
func Allowed(as []Assignment, perm, scope string) bool {
	for _, a := range as {
		r, ok := LookupRole(a.Role)
		if !ok || !r.Allows(perm) {
			continue
		}
		if Within(a.Scope, scope) {
			return true
		}
	}
	return false
}

// Scope helpers.

// TenantScope is the root scope.
const TenantScope = "/"

// SubscriptionScope is the scope of a subscription.
func SubscriptionScope(sub string) string { return "/subscriptions/" + sub }

// ResourceGroupScope is the scope of a resource group.
func ResourceGroupScope(sub, rg string) string {
	return SubscriptionScope(sub) + "/resourceGroups/" + rg
}

// MachineScope is the scope (resource id) of a machine.
func MachineScope(sub, rg, name string) string {
	return ResourceGroupScope(sub, rg) + "/providers/Microsoft.HybridCompute/machines/" + name
}

// ParsedScope is a scope split into its parts.
type ParsedScope struct {
	Subscription  string
	ResourceGroup string
	Machine       string
}

// Level names the kind of scope: tenant, subscription, resourceGroup or machine.
func (p ParsedScope) Level() string {
	switch {
	case p.Machine != "":
		return "machine"
	case p.ResourceGroup != "":
		return "resourceGroup"
	case p.Subscription != "":
		return "subscription"
	}
	return "tenant"
}

// ParseScope validates a scope string and splits it.
func ParseScope(scope string) (ParsedScope, error) {
	c := Clean(scope)
	if c == "/" {
		return ParsedScope{}, nil
	}
	parts := strings.Split(strings.TrimPrefix(c, "/"), "/")
	bad := fmt.Errorf("scope %q is not valid: use /, /subscriptions/SUB, /subscriptions/SUB/resourceGroups/RG or /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.HybridCompute/machines/NAME", scope)
	for _, p := range parts {
		if p == "" {
			return ParsedScope{}, bad
		}
	}
	var ps ParsedScope
	switch len(parts) {
	case 2, 4, 8:
	default:
		return ps, bad
	}
	if !strings.EqualFold(parts[0], "subscriptions") {
		return ps, bad
	}
	ps.Subscription = parts[1]
	if len(parts) >= 4 {
		if !strings.EqualFold(parts[2], "resourceGroups") {
			return ps, bad
		}
		ps.ResourceGroup = parts[3]
	}
	if len(parts) == 8 {
		if !strings.EqualFold(parts[4], "providers") || !strings.EqualFold(parts[5], "Microsoft.HybridCompute") || !strings.EqualFold(parts[6], "machines") {
			return ps, bad
		}
		ps.Machine = parts[7]
	}
	return ps, nil
}

// AllPermissions lists every permission an endpoint checks, sorted.
func AllPermissions() []string {
	p := []string{SubscriptionsRead, SubscriptionsWrite, ResourceGroupsRead, ResourceGroupsWrite, MachinesRead, MachinesWrite, MachinesDelete,
		ExtensionsRead, ExtensionsWrite, PackagesRead, PackagesWrite, OnboardingRead, OnboardingWrite, OnboardingDelete, GuestConfigRead, GuestConfigWrite,
		RoleAssignmentsRead, RoleAssignmentsWrite, RoleAssignmentsDelete, APITokensRead, APITokensWrite, APITokensDelete}
	slices.Sort(p)
	return p
}
