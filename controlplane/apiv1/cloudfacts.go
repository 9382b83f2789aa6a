package apiv1

// Where a role assignment that applies to a machine was made
// (CloudRoleAssignment.InheritedFrom): at the tenant, the machine's
// subscription, its resource group, or on the machine itself (not
// inherited).
const (
	FromTenant        = "tenant"
	FromSubscription  = "subscription"
	FromResourceGroup = "resourceGroup"
	FromMachine       = "machine"
)

// Bounds a client applies to a cloud facts body (the server never sends
// more: it would refuse to hold that many assignments at one scope chain).
const (
	MaxCloudAssignments = 2000
	MaxCloudFactsBody   = 1 << 20
)

// CloudFacts is the body of GET /v1/machines/{id}/cloudFacts: what the
// control plane knows about the machine's own scope, for the audit's
// cloud-side rules (ARC-T0-006/007/008). It holds only what applies to
// the machine: the role assignments at the tenant, its subscription, its
// resource group and on itself, and how many other machines share its
// subscription (a count, never their names).
type CloudFacts struct {
	MachineID      string `json:"machineId"`
	ResourceID     string `json:"resourceId"`
	SubscriptionID string `json:"subscriptionId"`
	ResourceGroup  string `json:"resourceGroup"`
	// OtherMachines counts the machines of the subscription besides this one.
	OtherMachines int `json:"otherMachines"`
	// Assignments are the role assignments that apply to the machine,
	// ordered from the widest scope (tenant) to the machine, then by
	// principal and role.
	Assignments []CloudRoleAssignment `json:"assignments"`
	// AdminRoles are the roles counted as administrative: those that can
	// change the machine, its extensions, its guest configuration or the
	// role assignments over it.
	AdminRoles []string `json:"adminRoles"`
	// StandingAdmins are the principals holding one of AdminRoles on the
	// machine (at any scope above it or on it), sorted, each once.
	StandingAdmins []string `json:"standingAdmins"`
}

// CloudRoleAssignment is one role assignment that applies to a machine.
type CloudRoleAssignment struct {
	Principal string `json:"principal"`
	Role      string `json:"role"`
	Scope     string `json:"scope"`
	// InheritedFrom is where the assignment was made: tenant,
	// subscription, resourceGroup, or machine (made on the machine itself).
	InheritedFrom string `json:"inheritedFrom"`
}
