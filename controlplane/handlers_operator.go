package controlplane

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/controlplane/store"
)

// canAnywhere reports whether any of p's roles grants perm at some scope.
func (p *principal) canAnywhere(perm string) bool {
	for _, a := range p.rbac {
		if r, ok := rbac.LookupRole(a.Role); ok && r.Allows(perm) {
			return true
		}
	}
	return false
}

// storeErr turns store errors into API errors with what as the subject.
func storeErr(err error, what string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errf(apiv1.CodeNotFound, "%s does not exist", what)
	case errors.Is(err, store.ErrConflict):
		return errf(apiv1.CodeConflict, "%s already exists", what)
	}
	return err
}

func toRA(a store.RoleAssignment) apiv1.RoleAssignment {
	return apiv1.RoleAssignment{ID: a.ID, Principal: a.Principal, Role: a.Role, Scope: a.Scope, CreatedAt: a.CreatedAt}
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request, p *principal) error {
	out := apiv1.Whoami{Principal: p.name, TenantID: s.tenantID, Assignments: []apiv1.RoleAssignment{}}
	for _, a := range p.assignments {
		out.Assignments = append(out.Assignments, toRA(a))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleRoleDefinitions(w http.ResponseWriter, r *http.Request, p *principal) error {
	out := apiv1.List[apiv1.RoleDefinition]{Value: []apiv1.RoleDefinition{}}
	for _, role := range rbac.BuiltIn() {
		out.Value = append(out.Value, apiv1.RoleDefinition{Name: role.Name, Description: role.Description, Actions: role.Actions})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// checkScopeExists answers 404 for a well-formed scope naming nothing.
func (s *Server) checkScopeExists(r *http.Request, scope string) (string, error) {
	ps, err := rbac.ParseScope(scope)
	if err != nil {
		return "", errf(apiv1.CodeBadRequest, "%s", err.Error())
	}
	ctx := r.Context()
	switch ps.Level() {
	case "tenant":
		return rbac.TenantScope, nil
	case "subscription":
		sub, err := s.st.Subscription(ctx, ps.Subscription)
		if err != nil {
			return "", storeErr(err, "subscription "+ps.Subscription)
		}
		return rbac.SubscriptionScope(sub.ID), nil
	case "resourceGroup":
		g, err := s.st.ResourceGroup(ctx, ps.Subscription, ps.ResourceGroup)
		if err != nil {
			return "", storeErr(err, "resource group "+ps.ResourceGroup+" in subscription "+ps.Subscription)
		}
		return rbac.ResourceGroupScope(g.SubscriptionID, g.Name), nil
	}
	ms, err := s.st.ListMachines(ctx, store.MachineFilter{SubscriptionID: ps.Subscription, ResourceGroup: ps.ResourceGroup})
	if err != nil {
		return "", err
	}
	for _, m := range ms {
		if strings.EqualFold(m.Name, ps.Machine) {
			return m.ResourceID, nil
		}
	}
	return "", errf(apiv1.CodeNotFound, "machine %s does not exist", scope)
}

func (s *Server) handleListRoleAssignments(w http.ResponseWriter, r *http.Request, p *principal) error {
	all, err := s.st.ListRoleAssignments(r.Context())
	if err != nil {
		return err
	}
	out := apiv1.List[apiv1.RoleAssignment]{Value: []apiv1.RoleAssignment{}}
	if q := r.URL.Query().Get("scope"); q != "" {
		if _, err := rbac.ParseScope(q); err != nil {
			return errf(apiv1.CodeBadRequest, "%s", err.Error())
		}
		scope := rbac.Clean(q)
		if err := p.require(rbac.RoleAssignmentsRead, scope); err != nil {
			return err
		}
		for _, a := range all {
			if rbac.Within(a.Scope, scope) || rbac.Within(scope, a.Scope) {
				out.Value = append(out.Value, toRA(a))
			}
		}
	} else {
		if !p.canAnywhere(rbac.RoleAssignmentsRead) {
			return forbidden(rbac.RoleAssignmentsRead, rbac.TenantScope)
		}
		for _, a := range all {
			if p.can(rbac.RoleAssignmentsRead, a.Scope) || a.Principal == p.name {
				out.Value = append(out.Value, toRA(a))
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleCreateRoleAssignment(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req apiv1.CreateRoleAssignmentRequest
	if err := decodeBody(w, r, maxBody, &req); err != nil {
		return err
	}
	if err := checkPrincipal(req.Principal); err != nil {
		return err
	}
	role, ok := rbac.LookupRole(req.Role)
	if !ok {
		return errf(apiv1.CodeBadRequest, "role %q does not exist; the roles are: %s", req.Role, strings.Join(rbac.RoleNames(), ", "))
	}
	if req.Scope == "" {
		return errf(apiv1.CodeBadRequest, "scope is required (\"/\" for the whole tenant)")
	}
	if _, err := rbac.ParseScope(req.Scope); err != nil {
		return errf(apiv1.CodeBadRequest, "%s", err.Error())
	}
	if err := p.require(rbac.RoleAssignmentsWrite, rbac.Clean(req.Scope)); err != nil {
		return err
	}
	scope, err := s.checkScopeExists(r, req.Scope)
	if err != nil {
		return err
	}
	a := store.RoleAssignment{ID: newUUID(), Principal: req.Principal, Role: role.Name, Scope: scope, CreatedAt: s.now().UTC()}
	if err := s.st.CreateRoleAssignment(r.Context(), a); err != nil {
		return storeErr(err, "the assignment of "+role.Name+" to "+req.Principal+" at "+scope)
	}
	writeJSON(w, http.StatusCreated, toRA(a))
	return nil
}

func (s *Server) handleDeleteRoleAssignment(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	a, err := s.st.RoleAssignment(r.Context(), id)
	if err = p.requireHidden(err, rbac.RoleAssignmentsDelete, a.Scope, "role assignment "+id); err != nil {
		return err
	}
	// The count of tenant Owners and the delete are one store transaction
	// (atomic across replicas): the last Owner at / is never removed.
	err = s.st.DeleteRoleAssignmentKeepOne(r.Context(), id, rbac.Owner, rbac.TenantScope)
	if errors.Is(err, store.ErrLastAssignment) {
		return errf(apiv1.CodeConflict, "this is the last Owner assignment at the tenant scope; assign Owner at / to another principal first")
	}
	if err != nil {
		return storeErr(err, "role assignment "+id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleCreateAPIToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req apiv1.CreateAPITokenRequest
	if err := decodeBody(w, r, maxBody, &req); err != nil {
		return err
	}
	if err := checkPrincipal(req.Principal); err != nil {
		return err
	}
	if err := checkText("description", req.Description, 256, false); err != nil {
		return err
	}
	life := 90 * 24 * time.Hour
	if req.ExpiresIn != "" {
		d, err := parseDuration("expiresIn", req.ExpiresIn, time.Minute, 2*365*24*time.Hour)
		if err != nil {
			return err
		}
		life = d
	}
	if err := p.require(rbac.APITokensWrite, rbac.TenantScope); err != nil {
		return err
	}
	now := s.now().UTC()
	secret := newSecret(apiTokenPrefix)
	t := store.APIToken{ID: newUUID(), Principal: req.Principal, Hash: hashSecret(secret), Description: req.Description, CreatedAt: now, ExpiresAt: now.Add(life)}
	if err := s.st.CreateAPIToken(r.Context(), t); err != nil {
		return err
	}
	exp := t.ExpiresAt
	writeJSON(w, http.StatusCreated, apiv1.APIToken{ID: t.ID, Principal: t.Principal, Description: t.Description, CreatedAt: now, ExpiresAt: &exp, Token: secret})
	return nil
}

func toToken(t store.APIToken) apiv1.APIToken {
	out := apiv1.APIToken{ID: t.ID, Principal: t.Principal, Description: t.Description, CreatedAt: t.CreatedAt}
	if !t.ExpiresAt.IsZero() {
		e := t.ExpiresAt
		out.ExpiresAt = &e
	}
	return out
}

func (s *Server) handleListAPITokens(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(rbac.APITokensRead, rbac.TenantScope); err != nil {
		return err
	}
	ts, err := s.st.ListAPITokens(r.Context())
	if err != nil {
		return err
	}
	out := apiv1.List[apiv1.APIToken]{Value: []apiv1.APIToken{}}
	for _, t := range ts {
		out.Value = append(out.Value, toToken(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleDeleteAPIToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := p.require(rbac.APITokensDelete, rbac.TenantScope); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.st.DeleteAPIToken(r.Context(), id); err != nil {
		return storeErr(err, "API token "+id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func toSub(sub store.Subscription) apiv1.Subscription {
	return apiv1.Subscription{ID: rbac.SubscriptionScope(sub.ID), SubID: sub.ID, DisplayName: sub.DisplayName, Tags: sub.Tags, CreatedAt: sub.CreatedAt}
}

func (s *Server) handleListSubscriptions(w http.ResponseWriter, r *http.Request, p *principal) error {
	if !p.canAnywhere(rbac.SubscriptionsRead) {
		return forbidden(rbac.SubscriptionsRead, rbac.TenantScope)
	}
	subs, err := s.st.ListSubscriptions(r.Context())
	if err != nil {
		return err
	}
	out := apiv1.List[apiv1.Subscription]{Value: []apiv1.Subscription{}}
	for _, sub := range subs {
		switch {
		case p.can(rbac.SubscriptionsRead, rbac.SubscriptionScope(sub.ID)):
			out.Value = append(out.Value, toSub(sub))
		case p.hasBelow(rbac.SubscriptionScope(sub.ID)):
			// Enough to navigate to the scope it was assigned below; the
			// subscription's tags are not its to read.
			v := toSub(sub)
			v.Tags = nil
			out.Value = append(out.Value, v)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// hasBelow reports whether p holds any assignment below scope, so that a
// principal assigned on a resource group can see the subscription it is in
// (its name, nothing more) to navigate to it.
func (p *principal) hasBelow(scope string) bool {
	for _, a := range p.rbac {
		if rbac.Within(scope, a.Scope) {
			return true
		}
	}
	return false
}

func (s *Server) handleCreateSubscription(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req apiv1.CreateSubscriptionRequest
	if err := decodeBody(w, r, maxBody, &req); err != nil {
		return err
	}
	if err := checkText("displayName", req.DisplayName, 128, true); err != nil {
		return err
	}
	if err := checkTags(req.Tags); err != nil {
		return err
	}
	if err := p.require(rbac.SubscriptionsWrite, rbac.TenantScope); err != nil {
		return err
	}
	subs, err := s.st.ListSubscriptions(r.Context())
	if err != nil {
		return err
	}
	for _, sub := range subs {
		if strings.EqualFold(sub.DisplayName, req.DisplayName) {
			return errf(apiv1.CodeConflict, "a subscription named %q already exists (%s)", sub.DisplayName, sub.ID)
		}
	}
	sub := store.Subscription{ID: newUUID(), DisplayName: req.DisplayName, Tags: req.Tags, CreatedAt: s.now().UTC()}
	if sub.Tags == nil {
		sub.Tags = map[string]string{}
	}
	if err := s.st.CreateSubscription(r.Context(), sub); err != nil {
		return storeErr(err, "subscription "+req.DisplayName)
	}
	writeJSON(w, http.StatusCreated, toSub(sub))
	return nil
}

func (s *Server) handleGetSubscription(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("sub")
	if err := p.require(rbac.SubscriptionsRead, rbac.SubscriptionScope(id)); err != nil {
		return err
	}
	sub, err := s.st.Subscription(r.Context(), id)
	if err != nil {
		return storeErr(err, "subscription "+id)
	}
	writeJSON(w, http.StatusOK, toSub(sub))
	return nil
}

func toRG(g store.ResourceGroup) apiv1.ResourceGroup {
	return apiv1.ResourceGroup{ID: rbac.ResourceGroupScope(g.SubscriptionID, g.Name), SubscriptionID: g.SubscriptionID, Name: g.Name, Location: g.Location, Tags: g.Tags, CreatedAt: g.CreatedAt}
}

func (s *Server) handleListResourceGroups(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("sub")
	scope := rbac.SubscriptionScope(id)
	all := p.can(rbac.ResourceGroupsRead, scope)
	if !all && !p.canAnywhere(rbac.ResourceGroupsRead) {
		return forbidden(rbac.ResourceGroupsRead, scope)
	}
	if _, err := s.st.Subscription(r.Context(), id); err != nil {
		if !all {
			return forbidden(rbac.ResourceGroupsRead, scope)
		}
		return storeErr(err, "subscription "+id)
	}
	gs, err := s.st.ListResourceGroups(r.Context(), id)
	if err != nil {
		return err
	}
	out := apiv1.List[apiv1.ResourceGroup]{Value: []apiv1.ResourceGroup{}}
	for _, g := range gs {
		if all || p.can(rbac.ResourceGroupsRead, rbac.ResourceGroupScope(g.SubscriptionID, g.Name)) {
			out.Value = append(out.Value, toRG(g))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleCreateResourceGroup(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("sub")
	var req apiv1.CreateResourceGroupRequest
	if err := decodeBody(w, r, maxBody, &req); err != nil {
		return err
	}
	if err := checkName("name", req.Name, 90); err != nil {
		return err
	}
	if req.Location == "" {
		req.Location = "local"
	}
	if err := checkName("location", req.Location, 64); err != nil {
		return err
	}
	if err := checkTags(req.Tags); err != nil {
		return err
	}
	if err := p.require(rbac.ResourceGroupsWrite, rbac.SubscriptionScope(id)); err != nil {
		return err
	}
	sub, err := s.st.Subscription(r.Context(), id)
	if err != nil {
		return storeErr(err, "subscription "+id)
	}
	g := store.ResourceGroup{SubscriptionID: sub.ID, Name: req.Name, Location: req.Location, Tags: req.Tags, CreatedAt: s.now().UTC()}
	if g.Tags == nil {
		g.Tags = map[string]string{}
	}
	if err := s.st.CreateResourceGroup(r.Context(), g); err != nil {
		return storeErr(err, "resource group "+req.Name)
	}
	writeJSON(w, http.StatusCreated, toRG(g))
	return nil
}

func (s *Server) handleGetResourceGroup(w http.ResponseWriter, r *http.Request, p *principal) error {
	sub, name := r.PathValue("sub"), r.PathValue("rg")
	if err := p.require(rbac.ResourceGroupsRead, rbac.ResourceGroupScope(sub, name)); err != nil {
		return err
	}
	g, err := s.st.ResourceGroup(r.Context(), sub, name)
	if err != nil {
		return storeErr(err, "resource group "+name)
	}
	writeJSON(w, http.StatusOK, toRG(g))
	return nil
}

func (s *Server) toOnboarding(c store.OnboardingCredential) apiv1.OnboardingCredential {
	out := apiv1.OnboardingCredential{
		ID: c.ID, Scope: rbac.ResourceGroupScope(c.SubscriptionID, c.ResourceGroup), SubscriptionID: c.SubscriptionID, ResourceGroup: c.ResourceGroup,
		Description: c.Description, CreatedBy: c.CreatedBy, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt, UsesLeft: c.UsesLeft, UsesTotal: c.UsesTotal,
	}
	switch {
	case !c.RevokedAt.IsZero():
		rv := c.RevokedAt
		out.RevokedAt, out.State = &rv, "Revoked"
	case !s.now().Before(c.ExpiresAt):
		out.State = "Expired"
	case c.UsesLeft <= 0:
		out.State = "UsedUp"
	default:
		out.State = "Active"
	}
	return out
}

func (s *Server) handleCreateOnboarding(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req apiv1.CreateOnboardingRequest
	if err := decodeBody(w, r, maxBody, &req); err != nil {
		return err
	}
	if !isUUID(req.SubscriptionID) {
		return errf(apiv1.CodeBadRequest, "subscriptionId %q is not a subscription id (a UUID): list them with `arcagent fleet subscriptions list`", req.SubscriptionID)
	}
	if err := checkName("resourceGroup", req.ResourceGroup, 90); err != nil {
		return err
	}
	if req.ExpiresIn == "" {
		return errf(apiv1.CodeBadRequest, "expiresIn is required, e.g. \"1h\" (at most 30 days)")
	}
	life, err := parseDuration("expiresIn", req.ExpiresIn, time.Minute, 30*24*time.Hour)
	if err != nil {
		return err
	}
	if req.Uses < 1 || req.Uses > 10000 {
		return errf(apiv1.CodeBadRequest, "uses must be between 1 and 10000, not %d", req.Uses)
	}
	if err := checkText("description", req.Description, 256, false); err != nil {
		return err
	}
	scope := rbac.ResourceGroupScope(req.SubscriptionID, req.ResourceGroup)
	if err := p.require(rbac.OnboardingWrite, scope); err != nil {
		return err
	}
	g, err := s.st.ResourceGroup(r.Context(), req.SubscriptionID, req.ResourceGroup)
	if err != nil {
		return storeErr(err, "resource group "+req.ResourceGroup+" in subscription "+req.SubscriptionID)
	}
	now := s.now().UTC()
	secret := newSecret(onboardingPrefix)
	c := store.OnboardingCredential{
		ID: newUUID(), Hash: hashSecret(secret), SubscriptionID: g.SubscriptionID, ResourceGroup: g.Name, Description: req.Description,
		CreatedBy: p.name, CreatedAt: now, ExpiresAt: now.Add(life), UsesTotal: req.Uses, UsesLeft: req.Uses,
	}
	if err := s.st.CreateOnboarding(r.Context(), c); err != nil {
		return err
	}
	out := s.toOnboarding(c)
	out.Secret = secret
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// filterScope reads the subscription/resourceGroup query filter and
// returns its scope ("" when absent).
func filterScope(r *http.Request) (sub, rg, scope string, err error) {
	q := r.URL.Query()
	sub, rg = q.Get("subscription"), q.Get("resourceGroup")
	switch {
	case rg != "" && sub == "":
		return "", "", "", errf(apiv1.CodeBadRequest, "resourceGroup needs subscription too")
	case rg != "":
		return sub, rg, rbac.ResourceGroupScope(sub, rg), nil
	case sub != "":
		return sub, "", rbac.SubscriptionScope(sub), nil
	}
	return "", "", "", nil
}

// listScope reads the subscription/resourceGroup query filter of a fleet
// listing and checks that p holds perm at that scope, or, without a filter,
// somewhere (the rows are then filtered one by one).
func listScope(r *http.Request, p *principal, perm string) (sub, rg string, err error) {
	sub, rg, scope, err := filterScope(r)
	if err != nil {
		return "", "", err
	}
	if scope != "" {
		if err := p.require(perm, scope); err != nil {
			return "", "", err
		}
	} else if !p.canAnywhere(perm) {
		return "", "", forbidden(perm, rbac.TenantScope)
	}
	return sub, rg, nil
}

func (s *Server) handleListOnboarding(w http.ResponseWriter, r *http.Request, p *principal) error {
	_, _, scope, err := filterScope(r)
	if err != nil {
		return err
	}
	if scope != "" {
		if err := p.require(rbac.OnboardingRead, scope); err != nil {
			return err
		}
	} else if !p.canAnywhere(rbac.OnboardingRead) {
		return forbidden(rbac.OnboardingRead, rbac.TenantScope)
	}
	cs, err := s.st.ListOnboarding(r.Context())
	if err != nil {
		return err
	}
	out := apiv1.List[apiv1.OnboardingCredential]{Value: []apiv1.OnboardingCredential{}}
	for _, c := range cs {
		cscope := rbac.ResourceGroupScope(c.SubscriptionID, c.ResourceGroup)
		if (scope == "" || rbac.Within(scope, cscope)) && p.can(rbac.OnboardingRead, cscope) {
			out.Value = append(out.Value, s.toOnboarding(c))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleRevokeOnboarding(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	c, err := s.st.Onboarding(r.Context(), id)
	if err = p.requireHidden(err, rbac.OnboardingDelete, rbac.ResourceGroupScope(c.SubscriptionID, c.ResourceGroup), "onboarding credential "+id); err != nil {
		return err
	}
	if err := s.st.RevokeOnboarding(r.Context(), id, s.now().UTC()); err != nil {
		return storeErr(err, "onboarding credential "+id)
	}
	c, err = s.st.Onboarding(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.toOnboarding(c))
	return nil
}

// locationOf returns the location of a machine's resource group.
func (s *Server) locationOf(r *http.Request, m store.Machine) string {
	g, err := s.st.ResourceGroup(r.Context(), m.SubscriptionID, m.ResourceGroup)
	if err != nil {
		return ""
	}
	return g.Location
}

func (s *Server) toMachine(m store.Machine, withStatus bool) apiv1.Machine {
	out := apiv1.Machine{
		ID: m.ID, ResourceID: m.ResourceID, Name: m.Name, SubscriptionID: m.SubscriptionID, ResourceGroup: m.ResourceGroup,
		Status: apiv1.StatusAt(m.LastHeartbeat, s.now()), LastHeartbeat: m.LastHeartbeat, AgentVersion: m.AgentVersion,
		Tags: m.Tags, KeyThumbprint: m.KeyThumbprint, CreatedAt: m.CreatedAt, DesiredStateTag: m.DesiredETag,
	}
	_ = json.Unmarshal(m.Inventory, &out.Inventory)
	if withStatus && len(m.Status) > 0 {
		var st apiv1.MachineStatus
		if json.Unmarshal(m.Status, &st) == nil {
			out.ReportedStatus = &st
		}
	}
	return out
}

func (s *Server) handleListMachines(w http.ResponseWriter, r *http.Request, p *principal) error {
	sub, rg, err := listScope(r, p, rbac.MachinesRead)
	if err != nil {
		return err
	}
	ms, err := s.st.ListMachines(r.Context(), store.MachineFilter{SubscriptionID: sub, ResourceGroup: rg})
	if err != nil {
		return err
	}
	gs, err := s.st.ListResourceGroups(r.Context(), sub)
	if err != nil {
		return err
	}
	loc := map[string]string{}
	for _, g := range gs {
		loc[strings.ToLower(rbac.ResourceGroupScope(g.SubscriptionID, g.Name))] = g.Location
	}
	out := apiv1.List[apiv1.Machine]{Value: []apiv1.Machine{}}
	for _, m := range ms {
		if p.can(rbac.MachinesRead, m.ResourceID) {
			v := s.toMachine(m, false)
			v.Location = loc[strings.ToLower(rbac.ResourceGroupScope(m.SubscriptionID, m.ResourceGroup))]
			out.Value = append(out.Value, v)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// loadMachine loads a machine by id for an operator holding perm on it.
func (s *Server) loadMachine(r *http.Request, p *principal, perm string) (store.Machine, error) {
	id := r.PathValue("id")
	if !isUUID(id) {
		return store.Machine{}, errf(apiv1.CodeNotFound, "machine %q does not exist (machine ids are UUIDs: see `arcagent fleet machines list`)", id)
	}
	m, err := s.st.Machine(r.Context(), id)
	if err = p.requireHidden(err, perm, m.ResourceID, "machine "+id); err != nil {
		return store.Machine{}, err
	}
	return m, nil
}

func (s *Server) handleGetMachine(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.loadMachine(r, p, rbac.MachinesRead)
	if err != nil {
		return err
	}
	out := s.toMachine(m, true)
	out.Location = s.locationOf(r, m)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleUpdateMachine(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req apiv1.UpdateMachineRequest
	if err := decodeBody(w, r, maxBody, &req); err != nil {
		return err
	}
	if err := checkTags(req.Tags); err != nil {
		return err
	}
	m, err := s.loadMachine(r, p, rbac.MachinesWrite)
	if err != nil {
		return err
	}
	if req.Tags == nil {
		req.Tags = apiv1.Tags{}
	}
	if err := s.st.UpdateMachineTags(r.Context(), m.ID, req.Tags); err != nil {
		return storeErr(err, "machine "+m.ID)
	}
	m.Tags = req.Tags
	out := s.toMachine(m, true)
	out.Location = s.locationOf(r, m)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleDeleteMachine(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.loadMachine(r, p, rbac.MachinesDelete)
	if err != nil {
		return err
	}
	// Forget first: from here on no request can authenticate as the
	// machine, even one whose store lookup races with the delete.
	s.forgetMachine(m.ID)
	if err := s.st.DeleteMachine(r.Context(), m.ID); err != nil {
		return storeErr(err, "machine "+m.ID)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
