package cloud

import (
	"context"
	"strings"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
)

// The operator's names for things: a subscription, group or machine may be
// given by id or by name; these turn what the user typed into ids, and say
// what to give instead when a name is unknown or not unique.

// ResolveSubscription turns a subscription id or name into its id.
func (op *Operator) ResolveSubscription(ctx context.Context, s string) (string, error) {
	if s == "" {
		return "", errcode.New(errcode.Usage, "--subscription is required (a name or id; see `arcagent fleet subscriptions list`)")
	}
	if IsID(s) {
		return strings.ToLower(s), nil
	}
	subs, err := op.ListSubscriptions(ctx)
	if err != nil {
		return "", err
	}
	var ids []string
	for _, x := range subs {
		if strings.EqualFold(x.DisplayName, s) {
			ids = append(ids, x.SubID)
		}
	}
	switch len(ids) {
	case 0:
		return "", errcode.New(apiv1.CodeNotFound, "no subscription named %q that you can see", s)
	case 1:
		return ids[0], nil
	}
	return "", errcode.New(errcode.Usage, "%d subscriptions are named %q: give the id instead (%s)", len(ids), s, strings.Join(ids, ", "))
}

// ResolveGroup turns --resource-group (a scope /subscriptions/S/resourceGroups/G
// or a name) and --subscription into (subscription id, group name).
func (op *Operator) ResolveGroup(ctx context.Context, sub, rg string) (string, string, error) {
	if rg == "" {
		return "", "", errcode.New(errcode.Usage, "--resource-group is required")
	}
	if strings.HasPrefix(rg, "/") {
		parts := strings.Split(strings.Trim(rg, "/"), "/")
		if len(parts) != 4 || !strings.EqualFold(parts[0], "subscriptions") || !strings.EqualFold(parts[2], "resourceGroups") {
			return "", "", errcode.New(errcode.Usage, "--resource-group %q: give a name or /subscriptions/SUB/resourceGroups/NAME", rg)
		}
		return strings.ToLower(parts[1]), parts[3], nil
	}
	if sub != "" {
		id, err := op.ResolveSubscription(ctx, sub)
		return id, rg, err
	}
	subs, err := op.ListSubscriptions(ctx)
	if err != nil {
		return "", "", errcode.Wrap(errcode.Usage, err, "find resource group %q: pass --subscription", rg)
	}
	var found []string
	for _, s := range subs {
		gs, err := op.ListResourceGroups(ctx, s.SubID)
		if err != nil {
			continue
		}
		for _, g := range gs {
			if strings.EqualFold(g.Name, rg) {
				found = append(found, s.SubID)
			}
		}
	}
	switch len(found) {
	case 0:
		return "", "", errcode.New(apiv1.CodeNotFound, "no resource group named %q that you can see; pass --subscription", rg)
	case 1:
		return found[0], rg, nil
	}
	return "", "", errcode.New(errcode.Usage, "resource group %q exists in %d subscriptions: pass --subscription", rg, len(found))
}

// IsID reports whether s has the form of a control plane id (a UUID).
func IsID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// ResolveScope accepts "/", a scope path, or a subscription name
// optionally followed by /GROUP ("prod" or "prod/web").
func (op *Operator) ResolveScope(ctx context.Context, s string) (string, error) {
	if s == "" || strings.HasPrefix(s, "/") {
		if s == "" {
			s = "/"
		}
		return s, nil
	}
	name, rg, _ := strings.Cut(s, "/")
	id, err := op.ResolveSubscription(ctx, name)
	if err != nil {
		return "", err
	}
	if rg == "" {
		return "/subscriptions/" + id, nil
	}
	return "/subscriptions/" + id + "/resourceGroups/" + rg, nil
}

// ResolveMachine finds a machine by id, resource id or (unique) name.
func (op *Operator) ResolveMachine(ctx context.Context, ref string) (apiv1.Machine, error) {
	if IsID(ref) {
		return op.GetMachine(ctx, ref)
	}
	ms, err := op.ListMachines(ctx, "", "")
	if err != nil {
		return apiv1.Machine{}, err
	}
	var found []apiv1.Machine
	for _, m := range ms {
		if strings.EqualFold(m.Name, ref) || strings.EqualFold(m.ResourceID, ref) {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return apiv1.Machine{}, errcode.New(apiv1.CodeNotFound, "no machine %q that you can see", ref)
	case 1:
		return op.GetMachine(ctx, found[0].ID)
	}
	return apiv1.Machine{}, errcode.New(errcode.Usage, "%d machines are named %q: give the machine id", len(found), ref)
}

// ResolveListScope turns the optional --subscription and --resource-group
// filters of a list command into a subscription id and group name ("" for
// no filter).
func (op *Operator) ResolveListScope(ctx context.Context, sub, rg string) (sid, name string, err error) {
	switch {
	case rg != "":
		return op.ResolveGroup(ctx, sub, rg)
	case sub != "":
		sid, err = op.ResolveSubscription(ctx, sub)
		return sid, "", err
	}
	return "", "", nil
}
