package cloud

import (
	"context"
	"net/http"
	"net/url"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// guestConfigPath is the path of an assignment: on a machine (machineID
// set) or on a resource group.
func guestConfigPath(machineID, sub, rg, name string) string {
	p := "/v1/machines/" + url.PathEscape(machineID) + "/guestconfiguration"
	if machineID == "" {
		p = "/v1/subscriptions/" + url.PathEscape(sub) + "/resourceGroups/" + url.PathEscape(rg) + "/guestconfiguration"
	}
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p
}

// AssignGuestConfig assigns (or changes) guest configuration assignment
// name on a machine; the result carries the pinned package digest.
func (o *Operator) AssignGuestConfig(ctx context.Context, machineID, name string, req apiv1.GuestConfigurationAssignRequest) (apiv1.GuestConfigurationAssignment, error) {
	var out apiv1.GuestConfigurationAssignment
	err := o.do(ctx, http.MethodPut, guestConfigPath(machineID, "", "", name), nil, req, &out)
	return out, err
}

// AssignGroupGuestConfig assigns (or changes) guest configuration
// assignment name on a resource group: every machine of the group gets it,
// including machines registered later.
func (o *Operator) AssignGroupGuestConfig(ctx context.Context, sub, rg, name string, req apiv1.GuestConfigurationAssignRequest) (apiv1.GuestConfigurationAssignment, error) {
	var out apiv1.GuestConfigurationAssignment
	err := o.do(ctx, http.MethodPut, guestConfigPath("", sub, rg, name), nil, req, &out)
	return out, err
}

// RemoveGuestConfig removes a machine's own guest configuration assignment.
func (o *Operator) RemoveGuestConfig(ctx context.Context, machineID, name string) error {
	return o.do(ctx, http.MethodDelete, guestConfigPath(machineID, "", "", name), nil, nil, nil)
}

// RemoveGroupGuestConfig removes a resource group's guest configuration
// assignment from the group and all its machines.
func (o *Operator) RemoveGroupGuestConfig(ctx context.Context, sub, rg, name string) error {
	return o.do(ctx, http.MethodDelete, guestConfigPath("", sub, rg, name), nil, nil, nil)
}

// ListGroupGuestConfig lists the assignments made at a resource group.
func (o *Operator) ListGroupGuestConfig(ctx context.Context, sub, rg string) ([]apiv1.GuestConfigurationAssignment, error) {
	var out apiv1.List[apiv1.GuestConfigurationAssignment]
	err := o.do(ctx, http.MethodGet, guestConfigPath("", sub, rg, ""), nil, nil, &out)
	return out.Value, err
}

// GuestConfig lists a machine's guest configuration assignments (its own
// and its group's) next to their reported compliance, resources included.
func (o *Operator) GuestConfig(ctx context.Context, machineID string) ([]apiv1.GuestConfigurationView, error) {
	var out apiv1.List[apiv1.GuestConfigurationView]
	err := o.do(ctx, http.MethodGet, guestConfigPath(machineID, "", "", ""), nil, nil, &out)
	return out.Value, err
}

// FleetGuestConfig lists the guest configuration of every machine the
// caller may read (optionally of one subscription or resource group),
// without the per-resource detail.
func (o *Operator) FleetGuestConfig(ctx context.Context, sub, rg string) ([]apiv1.MachineGuestConfiguration, error) {
	var out apiv1.List[apiv1.MachineGuestConfiguration]
	err := o.do(ctx, http.MethodGet, "/v1/guestconfiguration", scopeQuery(sub, rg), nil, &out)
	return out.Value, err
}
