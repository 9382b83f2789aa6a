package cloud

import (
	"context"
	"net/http"
	"net/url"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// Operator is the API as seen by an operator holding an API token.
type Operator struct {
	c     *Client
	token string
}

// Operator returns the operator view authenticated with token.
func (c *Client) Operator(token string) *Operator { return &Operator{c: c, token: token} }

func (o *Operator) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	_, _, err := o.c.call(ctx, method, path, q, o.token, nil, body, out)
	return err
}

// Whoami returns the caller's principal and role assignments.
func (o *Operator) Whoami(ctx context.Context) (apiv1.Whoami, error) {
	var out apiv1.Whoami
	err := o.do(ctx, http.MethodGet, "/v1/whoami", nil, nil, &out)
	return out, err
}

// CreateSubscription creates a subscription.
func (o *Operator) CreateSubscription(ctx context.Context, req apiv1.CreateSubscriptionRequest) (apiv1.Subscription, error) {
	var out apiv1.Subscription
	err := o.do(ctx, http.MethodPost, "/v1/subscriptions", nil, req, &out)
	return out, err
}

// ListSubscriptions lists the subscriptions the caller can see.
func (o *Operator) ListSubscriptions(ctx context.Context) ([]apiv1.Subscription, error) {
	var out apiv1.List[apiv1.Subscription]
	err := o.do(ctx, http.MethodGet, "/v1/subscriptions", nil, nil, &out)
	return out.Value, err
}

// CreateResourceGroup creates a resource group in a subscription.
func (o *Operator) CreateResourceGroup(ctx context.Context, sub string, req apiv1.CreateResourceGroupRequest) (apiv1.ResourceGroup, error) {
	var out apiv1.ResourceGroup
	err := o.do(ctx, http.MethodPost, "/v1/subscriptions/"+url.PathEscape(sub)+"/resourceGroups", nil, req, &out)
	return out, err
}

// ListResourceGroups lists the groups of a subscription the caller can see.
func (o *Operator) ListResourceGroups(ctx context.Context, sub string) ([]apiv1.ResourceGroup, error) {
	var out apiv1.List[apiv1.ResourceGroup]
	err := o.do(ctx, http.MethodGet, "/v1/subscriptions/"+url.PathEscape(sub)+"/resourceGroups", nil, nil, &out)
	return out.Value, err
}

// RoleDefinitions lists the built-in roles.
func (o *Operator) RoleDefinitions(ctx context.Context) ([]apiv1.RoleDefinition, error) {
	var out apiv1.List[apiv1.RoleDefinition]
	err := o.do(ctx, http.MethodGet, "/v1/roleDefinitions", nil, nil, &out)
	return out.Value, err
}

// AssignRole grants a role to a principal at a scope.
func (o *Operator) AssignRole(ctx context.Context, req apiv1.CreateRoleAssignmentRequest) (apiv1.RoleAssignment, error) {
	var out apiv1.RoleAssignment
	err := o.do(ctx, http.MethodPost, "/v1/roleAssignments", nil, req, &out)
	return out, err
}

// ListRoleAssignments lists assignments (affecting scope, if given).
func (o *Operator) ListRoleAssignments(ctx context.Context, scope string) ([]apiv1.RoleAssignment, error) {
	var q url.Values
	if scope != "" {
		q = url.Values{"scope": {scope}}
	}
	var out apiv1.List[apiv1.RoleAssignment]
	err := o.do(ctx, http.MethodGet, "/v1/roleAssignments", q, nil, &out)
	return out.Value, err
}

// DeleteRoleAssignment removes an assignment.
func (o *Operator) DeleteRoleAssignment(ctx context.Context, id string) error {
	return o.do(ctx, http.MethodDelete, "/v1/roleAssignments/"+url.PathEscape(id), nil, nil, nil)
}

// CreateAPIToken creates an API token for a principal; the secret is in
// the result's Token field and is shown only now.
func (o *Operator) CreateAPIToken(ctx context.Context, req apiv1.CreateAPITokenRequest) (apiv1.APIToken, error) {
	var out apiv1.APIToken
	err := o.do(ctx, http.MethodPost, "/v1/apiTokens", nil, req, &out)
	return out, err
}

// ListAPITokens lists API tokens (never their secrets).
func (o *Operator) ListAPITokens(ctx context.Context) ([]apiv1.APIToken, error) {
	var out apiv1.List[apiv1.APIToken]
	err := o.do(ctx, http.MethodGet, "/v1/apiTokens", nil, nil, &out)
	return out.Value, err
}

// RevokeAPIToken deletes an API token; it stops working at once.
func (o *Operator) RevokeAPIToken(ctx context.Context, id string) error {
	return o.do(ctx, http.MethodDelete, "/v1/apiTokens/"+url.PathEscape(id), nil, nil, nil)
}

// CreateOnboarding creates an onboarding credential; its secret is in the
// result's Secret field and is shown only now.
func (o *Operator) CreateOnboarding(ctx context.Context, req apiv1.CreateOnboardingRequest) (apiv1.OnboardingCredential, error) {
	var out apiv1.OnboardingCredential
	err := o.do(ctx, http.MethodPost, "/v1/onboardingCredentials", nil, req, &out)
	return out, err
}

// ListOnboarding lists onboarding credentials, optionally in one scope.
func (o *Operator) ListOnboarding(ctx context.Context, sub, rg string) ([]apiv1.OnboardingCredential, error) {
	var out apiv1.List[apiv1.OnboardingCredential]
	err := o.do(ctx, http.MethodGet, "/v1/onboardingCredentials", scopeQuery(sub, rg), nil, &out)
	return out.Value, err
}

// RevokeOnboarding revokes an onboarding credential.
func (o *Operator) RevokeOnboarding(ctx context.Context, id string) (apiv1.OnboardingCredential, error) {
	var out apiv1.OnboardingCredential
	err := o.do(ctx, http.MethodDelete, "/v1/onboardingCredentials/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// ListMachines lists machines, optionally in one subscription or group.
func (o *Operator) ListMachines(ctx context.Context, sub, rg string) ([]apiv1.Machine, error) {
	var out apiv1.List[apiv1.Machine]
	err := o.do(ctx, http.MethodGet, "/v1/machines", scopeQuery(sub, rg), nil, &out)
	return out.Value, err
}

// GetMachine returns one machine by id.
func (o *Operator) GetMachine(ctx context.Context, id string) (apiv1.Machine, error) {
	var out apiv1.Machine
	err := o.do(ctx, http.MethodGet, "/v1/machines/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// UpdateMachineTags replaces a machine's tags.
func (o *Operator) UpdateMachineTags(ctx context.Context, id string, tags apiv1.Tags) (apiv1.Machine, error) {
	var out apiv1.Machine
	err := o.do(ctx, http.MethodPatch, "/v1/machines/"+url.PathEscape(id), nil, apiv1.UpdateMachineRequest{Tags: tags}, &out)
	return out, err
}

// DeleteMachine deletes a machine.
func (o *Operator) DeleteMachine(ctx context.Context, id string) error {
	return o.do(ctx, http.MethodDelete, "/v1/machines/"+url.PathEscape(id), nil, nil, nil)
}

func scopeQuery(sub, rg string) url.Values {
	q := url.Values{}
	if sub != "" {
		q.Set("subscription", sub)
	}
	if rg != "" {
		q.Set("resourceGroup", rg)
	}
	return q
}

// PublishPackage uploads a signed extension package (the zip and its DSSE
// envelope) to the control plane's package repository. Publishing the
// same bytes again returns the existing entry.
func (o *Operator) PublishPackage(ctx context.Context, req apiv1.PublishPackageRequest) (apiv1.PackageInfo, error) {
	var out apiv1.PackageInfo
	err := o.do(ctx, http.MethodPost, "/v1/packages", nil, req, &out)
	return out, err
}

// ListPackages lists published packages, optionally of one publisher,
// type and kind (apiv1.PackageKindExtension or PackageKindGuestConfig).
func (o *Operator) ListPackages(ctx context.Context, publisher, typ, kind string) ([]apiv1.PackageInfo, error) {
	q := url.Values{}
	if kind != "" {
		q.Set("kind", kind)
	}
	if publisher != "" {
		q.Set("publisher", publisher)
	}
	if typ != "" {
		q.Set("type", typ)
	}
	var out apiv1.List[apiv1.PackageInfo]
	err := o.do(ctx, http.MethodGet, "/v1/packages", q, nil, &out)
	return out.Value, err
}

func extensionPath(machineID, name string) string {
	return "/v1/machines/" + url.PathEscape(machineID) + "/extensions/" + url.PathEscape(name)
}

// SetExtension assigns (or changes) extension name on a machine. The
// returned spec carries the pinned package digest; its protected settings
// are sealed on the server and never returned.
func (o *Operator) SetExtension(ctx context.Context, machineID, name string, req apiv1.SetExtensionRequest) (apiv1.ExtensionSpec, error) {
	var out apiv1.ExtensionSpec
	err := o.do(ctx, http.MethodPut, extensionPath(machineID, name), nil, req, &out)
	return out, err
}

// ListExtensions lists a machine's extensions: desired next to reported.
func (o *Operator) ListExtensions(ctx context.Context, machineID string) ([]apiv1.ExtensionView, error) {
	var out apiv1.List[apiv1.ExtensionView]
	err := o.do(ctx, http.MethodGet, "/v1/machines/"+url.PathEscape(machineID)+"/extensions", nil, nil, &out)
	return out.Value, err
}

// RemoveExtension removes an extension from a machine's desired state;
// the machine then disables and uninstalls it.
func (o *Operator) RemoveExtension(ctx context.Context, machineID, name string) error {
	return o.do(ctx, http.MethodDelete, extensionPath(machineID, name), nil, nil, nil)
}
