// Package cloudfacts is the adapter between the control plane and the
// audit engine: it asks the control plane, as the machine (an assertion
// signed with the machine key, as heartbeats are), for the facts of the
// machine's own scope (GET /v1/machines/{id}/cloudFacts) and fills the
// audit's facts.cloud for the Tier 0 cloud-side rules (ARC-T0-006/007/008).
package cloudfacts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/audit"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// DefaultTimeout bounds the one request to the control plane: the audit
// stays fast when the control plane is slow or away.
const DefaultTimeout = 10 * time.Second

// Collector fills facts.cloud from the control plane the agent under Root
// is connected to. It implements audit.CloudCollector.
type Collector struct {
	// Root is the root prefix of the agent ("" or "/": the live host).
	Root string
	// Timeout bounds the request; 0 means DefaultTimeout.
	Timeout time.Duration
	// UserAgent is sent with the request.
	UserAgent string
}

var _ audit.CloudCollector = (*Collector)(nil)

// CollectCloud asks the control plane. A machine key or registration the
// caller may not read (the audit not run as root) makes the section not
// available, with the reason; a failed request, a bad answer or a
// missing or broken key is an error naming the server, so that the cloud
// rules yield error, never a false pass.
func (c *Collector) CollectCloud(ctx context.Context, _ *audit.Facts) (audit.CloudFacts, error) {
	out := audit.CloudFacts{StandingAdmins: []string{}, InheritedAssignments: []string{}}
	l := layout.New(c.Root)
	cfg, err := himds.LoadAgentConfig(l)
	switch {
	case errors.Is(err, fs.ErrPermission):
		out.Reason = "the agent's registration (" + layout.AgentConfig + ") is readable only by root and group himds: run the audit as root to ask the control plane"
		return out, nil
	case err != nil:
		return out, err
	case cfg == nil:
		out.Reason = "the agent is not connected to a control plane"
		return out, nil
	}
	out.Server = cfg.Server
	if _, err := himds.LoadMachineKey(l); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			out.Reason = "the machine key is readable only by root: run the audit as root to ask the control plane at " + cfg.Server
			return out, nil
		}
		return out, fmt.Errorf("ask %s for the cloud facts: %w", cfg.Server, err)
	}
	settings, _, err := config.NewStore(l).Load()
	if err != nil {
		return out, fmt.Errorf("ask %s for the cloud facts: the local configuration cannot be read: %w", cfg.Server, err)
	}
	ua := c.UserAgent
	if ua == "" {
		ua = "arcagent-audit"
	}
	m, err := himds.MachineClient(l, cfg, settings, ua)
	if err != nil {
		return out, fmt.Errorf("ask %s for the cloud facts: %w", cfg.Server, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	got, err := m.CloudFacts(rctx)
	switch {
	case err != nil && errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		return out, fmt.Errorf("%s did not answer within %s (GET cloudFacts); run with --offline to skip the control plane", cfg.Server, timeout)
	case err != nil:
		return out, fmt.Errorf("ask %s for the cloud facts: %w", cfg.Server, err)
	case got.MachineID != "" && got.MachineID != cfg.MachineID:
		return out, fmt.Errorf("%s answered with the cloud facts of machine %s, not of this machine %s", cfg.Server, got.MachineID, cfg.MachineID)
	}
	return FromAPI(cfg.Server, got), nil
}

// FromAPI turns the control plane's answer into the audit's facts: the
// subscription is dedicated when no other machine shares it, and the
// inherited assignments are those made at the tenant or the subscription
// ("principal: Role at the tenant"), above the machine's resource group.
func FromAPI(server string, in apiv1.CloudFacts) audit.CloudFacts {
	out := audit.CloudFacts{
		Section: audit.Section{Available: true}, Server: server,
		Subscription: in.SubscriptionID, ResourceGroup: in.ResourceGroup,
		DedicatedSubscription: in.OtherMachines == 0, OtherMachines: in.OtherMachines,
		StandingAdmins: append([]string{}, in.StandingAdmins...), AdminRoles: append([]string{}, in.AdminRoles...),
		InheritedAssignments: []string{}, Assignments: []audit.CloudAssignment{},
	}
	for _, a := range in.Assignments {
		out.Assignments = append(out.Assignments, audit.CloudAssignment{Principal: a.Principal, Role: a.Role, Scope: a.Scope, InheritedFrom: a.InheritedFrom})
		switch a.InheritedFrom {
		case apiv1.FromTenant:
			out.InheritedAssignments = append(out.InheritedAssignments, a.Principal+": "+a.Role+" at the tenant")
		case apiv1.FromSubscription:
			out.InheritedAssignments = append(out.InheritedAssignments, a.Principal+": "+a.Role+" at the subscription")
		}
	}
	return out
}
