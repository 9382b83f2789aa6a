package controlplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/signing"
)

// Guest configuration assignment limits.
const (
	// maxGCParameters bounds the parameters of one assignment, and
	// maxGCParameterValue the bytes of one value.
	maxGCParameters     = 64
	maxGCParameterValue = 4096
	// maxGCAssignments bounds the assignments of one machine (its own and
	// its group's) and of one resource group.
	maxGCAssignments = 100
	// maxGCBody is the body of PUT …/guestconfiguration/{name}.
	maxGCBody = 512 << 10
)

// Guest configuration modes.
const (
	ModeAudit               = "Audit"
	ModeApplyAndMonitor     = "ApplyAndMonitor"
	ModeApplyAndAutoCorrect = "ApplyAndAutoCorrect"
)

// validAssignment is an assign request that passed every check.
type validAssignment struct {
	pkg    signing.Package // Type is the configuration's name
	mode   string
	params map[string]string
}

// splitPolicy splits "<Publisher>.<Name>" at its last dot (publishers
// hold dots, names do not).
func splitPolicy(policy string) (publisher, name string, ok bool) {
	i := strings.LastIndexByte(policy, '.')
	if i <= 0 || i == len(policy)-1 {
		return "", "", false
	}
	return policy[:i], policy[i+1:], true
}

// validParameterName reports whether n matches [A-Za-z][A-Za-z0-9_]{0,63}.
func validParameterName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i, r := range n {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '_'):
		default:
			return false
		}
	}
	return true
}

// ValidateGuestConfigParameters checks assignment parameters: at most 64,
// names [A-Za-z][A-Za-z0-9_]{0,63}, values valid UTF-8 of at most 4096
// bytes without control characters.
func ValidateGuestConfigParameters(params map[string]string) error {
	if len(params) > maxGCParameters {
		return errf(apiv1.CodeBadRequest, "%d parameters given; at most %d are allowed", len(params), maxGCParameters)
	}
	for k, v := range params {
		if !validParameterName(k) {
			return errf(apiv1.CodeBadRequest, "parameter name %q: use a letter followed by at most 63 letters, digits or _", k)
		}
		if len(v) > maxGCParameterValue {
			return errf(apiv1.CodeBadRequest, "parameter %s is %d bytes long; at most %d are allowed", k, len(v), maxGCParameterValue)
		}
		if !printable(v) {
			return errf(apiv1.CodeBadRequest, "parameter %s holds control characters or is not UTF-8; give printable text", k)
		}
	}
	return nil
}

// validateAssign checks the name and body of a guest configuration
// assignment.
func validateAssign(name string, req *apiv1.GuestConfigurationAssignRequest) (*validAssignment, error) {
	if err := checkName("assignment name", name, 64); err != nil {
		return nil, err
	}
	if req.Policy == "" || req.Version == "" {
		return nil, errf(apiv1.CodeBadRequest, "policy and version are required: the <Publisher>.<Name> and version of a published guest configuration package")
	}
	pub, n, ok := splitPolicy(req.Policy)
	if !ok {
		return nil, errf(apiv1.CodeBadRequest, "policy %q is not <Publisher>.<Name>, e.g. Contoso.Baseline.SSH", req.Policy)
	}
	p := signing.Package{Publisher: pub, Type: n, Version: req.Version}
	if err := p.Validate(); err != nil {
		return nil, errf(apiv1.CodeBadRequest, "%s", err.Error())
	}
	mode := req.Mode
	switch mode {
	case "":
		mode = ModeAudit
	case ModeAudit, ModeApplyAndMonitor, ModeApplyAndAutoCorrect:
	default:
		return nil, errf(apiv1.CodeBadRequest, "mode %q: use %s, %s or %s", req.Mode, ModeAudit, ModeApplyAndMonitor, ModeApplyAndAutoCorrect)
	}
	if err := ValidateGuestConfigParameters(req.Parameters); err != nil {
		return nil, err
	}
	params := req.Parameters
	if len(params) == 0 {
		params = nil
	}
	return &validAssignment{pkg: p, mode: mode, params: params}, nil
}

// resolveAssignment finds the published guest configuration package of an
// assignment and returns the assignment pinned to it.
func (s *Server) resolveAssignment(r *http.Request, name, scope string, v *validAssignment) (apiv1.GuestConfigurationAssignment, error) {
	pkg, err := s.st.PackageByName(r.Context(), v.pkg.Publisher, v.pkg.Type, v.pkg.Version)
	if errors.Is(err, store.ErrNotFound) {
		return apiv1.GuestConfigurationAssignment{}, errf(apiv1.CodeNotFound, "guest configuration package %s is not published: publish it first with `arcagent fleet guestconfig publish %s`", v.pkg.Name(), v.pkg.FileName())
	}
	if err != nil {
		return apiv1.GuestConfigurationAssignment{}, err
	}
	if pkg.Kind != store.KindGuestConfig {
		return apiv1.GuestConfigurationAssignment{}, errf(apiv1.CodeBadRequest, "%s is an extension package, not a guest configuration package: assign it with `arcagent fleet extensions set`", v.pkg.Name())
	}
	return apiv1.GuestConfigurationAssignment{
		Name: name, Policy: pkg.Publisher + "." + pkg.Type, Version: pkg.Version, Mode: v.mode, Parameters: v.params,
		PackageSHA256: pkg.SHA256, PackageSize: pkg.Size, Scope: scope,
	}, nil
}

func findAssignment(list []apiv1.GuestConfigurationAssignment, name string) int {
	return slices.IndexFunc(list, func(a apiv1.GuestConfigurationAssignment) bool { return strings.EqualFold(a.Name, name) })
}

// machineScoped reports whether a (in the desired state of the machine
// with resource id rid) was made on the machine itself.
func machineScoped(a apiv1.GuestConfigurationAssignment, rid string) bool {
	return a.Scope == "" || strings.EqualFold(a.Scope, rid)
}

// syncGroup is the store.SyncFunc that replaces the group-level
// assignments in a machine's desired state with its group's current ones.
// A group assignment whose name a machine-level one holds is a conflict.
func syncGroup(m store.MachineRef, cur store.DesiredState, group []store.GroupAssignment) (*store.DesiredState, error) {
	ds, priv, err := decodeDesired(cur)
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", m.ID, err)
	}
	var next []apiv1.GuestConfigurationAssignment
	for _, a := range ds.GuestConfigurationAssignments {
		if machineScoped(a, m.ResourceID) {
			next = append(next, a)
		}
	}
	for _, g := range group {
		var a apiv1.GuestConfigurationAssignment
		if err := json.Unmarshal(g.Doc, &a); err != nil {
			return nil, fmt.Errorf("the stored guest configuration assignment %s is damaged: %w", g.Name, err)
		}
		if i := findAssignment(next, a.Name); i >= 0 {
			return nil, errf(apiv1.CodeConflict, "machine %s already has its own guest configuration assignment %q: remove it (`arcagent fleet guestconfig remove --machine %s --name %s`) or choose another name", m.ID, next[i].Name, m.ID, next[i].Name)
		}
		next = append(next, a)
	}
	if len(next) > maxGCAssignments {
		return nil, errf(apiv1.CodeBadRequest, "machine %s would have %d guest configuration assignments; at most %d are allowed", m.ID, len(next), maxGCAssignments)
	}
	if next == nil {
		next = []apiv1.GuestConfigurationAssignment{}
	}
	ds.GuestConfigurationAssignments = next
	return encodeDesired(cur, ds, priv)
}

// syncGroupFor runs syncGroup for one machine and refreshes its cached
// ETag; registration calls it so that a new machine gets its group's
// assignments at once.
func (s *Server) syncGroupFor(r *http.Request, id string) error {
	var etag string
	err := s.st.SyncGroupAssignments(r.Context(), id, func(m store.MachineRef, cur store.DesiredState, group []store.GroupAssignment) (*store.DesiredState, error) {
		next, err := syncGroup(m, cur, group)
		if next != nil {
			etag = next.ETag
		}
		return next, err
	})
	if err == nil && etag != "" {
		s.noteETag(id, etag)
	}
	return err
}

func (s *Server) handleAssignMachineGC(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.loadMachine(r, p, rbac.GuestConfigWrite)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	var req apiv1.GuestConfigurationAssignRequest
	if err := decodeBody(w, r, maxGCBody, &req); err != nil {
		return err
	}
	v, err := validateAssign(name, &req)
	if err != nil {
		return err
	}
	a, err := s.resolveAssignment(r, name, m.ResourceID, v)
	if err != nil {
		return err
	}
	created := false
	etag := ""
	err = s.st.UpdateDesiredState(r.Context(), m.ID, func(cur store.DesiredState) (*store.DesiredState, error) {
		etag = cur.ETag
		ds, priv, err := decodeDesired(cur)
		if err != nil {
			return nil, err
		}
		list := ds.GuestConfigurationAssignments
		if i := findAssignment(list, name); i >= 0 {
			if !machineScoped(list[i], m.ResourceID) {
				return nil, errf(apiv1.CodeConflict, "machine %s already gets guest configuration assignment %q from %s: change it there, or choose another name", m.Name, list[i].Name, list[i].Scope)
			}
			list[i] = a
		} else {
			if len(list) >= maxGCAssignments {
				return nil, errf(apiv1.CodeBadRequest, "machine %s already has %d guest configuration assignments, the most allowed: remove one first", m.Name, maxGCAssignments)
			}
			list = append(list, a)
			created = true
		}
		ds.GuestConfigurationAssignments = list
		next, err := encodeDesired(cur, ds, priv)
		if next != nil {
			etag = next.ETag
		}
		return next, err
	})
	if err != nil {
		return storeErr(err, "machine "+m.ID)
	}
	s.noteETag(m.ID, etag)
	s.log.Info("guest configuration assigned", "machine", m.ID, "assignment", name, "package", v.pkg.Name(), "mode", a.Mode, "etag", etag)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	w.Header().Set("ETag", etag)
	writeJSON(w, status, a)
	return nil
}

func (s *Server) handleRemoveMachineGC(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.loadMachine(r, p, rbac.GuestConfigWrite)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	etag := ""
	err = s.st.UpdateDesiredState(r.Context(), m.ID, func(cur store.DesiredState) (*store.DesiredState, error) {
		ds, priv, err := decodeDesired(cur)
		if err != nil {
			return nil, err
		}
		i := findAssignment(ds.GuestConfigurationAssignments, name)
		if i < 0 {
			return nil, errf(apiv1.CodeNotFound, "guest configuration assignment %q is not assigned to machine %s (see `arcagent fleet guestconfig list --machine %s`)", name, m.Name, m.Name)
		}
		if a := ds.GuestConfigurationAssignments[i]; !machineScoped(a, m.ResourceID) {
			return nil, errf(apiv1.CodeConflict, "guest configuration assignment %q of machine %s is made at %s: remove it there (`arcagent fleet guestconfig remove --resource-group …`)", a.Name, m.Name, a.Scope)
		}
		ds.GuestConfigurationAssignments = slices.Delete(ds.GuestConfigurationAssignments, i, i+1)
		next, err := encodeDesired(cur, ds, priv)
		if next != nil {
			etag = next.ETag
		}
		return next, err
	})
	if err != nil {
		return storeErr(err, "machine "+m.ID)
	}
	s.noteETag(m.ID, etag)
	s.log.Info("guest configuration assignment removed", "machine", m.ID, "assignment", name, "etag", etag)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// loadGroup checks perm at a resource group named in the path and
// returns the group.
func (s *Server) loadGroup(r *http.Request, p *principal, perm string) (store.ResourceGroup, error) {
	sub, rg := r.PathValue("sub"), r.PathValue("rg")
	if err := p.require(perm, rbac.ResourceGroupScope(sub, rg)); err != nil {
		return store.ResourceGroup{}, err
	}
	g, err := s.st.ResourceGroup(r.Context(), sub, rg)
	if err != nil {
		return g, storeErr(err, "resource group "+rg)
	}
	return g, nil
}

// updateGroup changes a group's assignments with fn and brings every
// machine of the group up to date, noting their new ETags.
func (s *Server) updateGroup(r *http.Request, g store.ResourceGroup, fn func(cur []store.GroupAssignment) ([]store.GroupAssignment, error)) error {
	etags := map[string]string{}
	err := s.st.UpdateGroupAssignments(r.Context(), g.SubscriptionID, g.Name, fn, func(m store.MachineRef, cur store.DesiredState, group []store.GroupAssignment) (*store.DesiredState, error) {
		next, err := syncGroup(m, cur, group)
		if next != nil {
			etags[m.ID] = next.ETag
		}
		return next, err
	})
	if err != nil {
		return storeErr(err, "resource group "+g.Name)
	}
	for id, etag := range etags {
		s.noteETag(id, etag)
	}
	return nil
}

func (s *Server) handleAssignGroupGC(w http.ResponseWriter, r *http.Request, p *principal) error {
	g, err := s.loadGroup(r, p, rbac.GuestConfigWrite)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	var req apiv1.GuestConfigurationAssignRequest
	if err := decodeBody(w, r, maxGCBody, &req); err != nil {
		return err
	}
	v, err := validateAssign(name, &req)
	if err != nil {
		return err
	}
	a, err := s.resolveAssignment(r, name, rbac.ResourceGroupScope(g.SubscriptionID, g.Name), v)
	if err != nil {
		return err
	}
	doc, err := json.Marshal(a)
	if err != nil {
		return err
	}
	created := false
	err = s.updateGroup(r, g, func(cur []store.GroupAssignment) ([]store.GroupAssignment, error) {
		row := store.GroupAssignment{Name: name, Doc: doc, UpdatedAt: s.now().UTC()}
		for i, c := range cur {
			if strings.EqualFold(c.Name, name) {
				if c.Name == name && sameJSON(c.Doc, doc) {
					return nil, nil // unchanged: no machine's ETag moves
				}
				cur[i] = row
				return cur, nil
			}
		}
		if len(cur) >= maxGCAssignments {
			return nil, errf(apiv1.CodeBadRequest, "resource group %s already has %d guest configuration assignments, the most allowed: remove one first", g.Name, maxGCAssignments)
		}
		created = true
		return append(cur, row), nil
	})
	if err != nil {
		return err
	}
	s.log.Info("guest configuration assigned", "scope", a.Scope, "assignment", name, "package", v.pkg.Name(), "mode", a.Mode)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, a)
	return nil
}

func (s *Server) handleRemoveGroupGC(w http.ResponseWriter, r *http.Request, p *principal) error {
	g, err := s.loadGroup(r, p, rbac.GuestConfigWrite)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	err = s.updateGroup(r, g, func(cur []store.GroupAssignment) ([]store.GroupAssignment, error) {
		for i, c := range cur {
			if strings.EqualFold(c.Name, name) {
				return slices.Delete(cur, i, i+1), nil
			}
		}
		return nil, errf(apiv1.CodeNotFound, "guest configuration assignment %q is not assigned to resource group %s (see `arcagent fleet guestconfig list --resource-group %s`)", name, g.Name, g.Name)
	})
	if err != nil {
		return err
	}
	s.log.Info("guest configuration assignment removed", "scope", rbac.ResourceGroupScope(g.SubscriptionID, g.Name), "assignment", name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleListGroupGC(w http.ResponseWriter, r *http.Request, p *principal) error {
	g, err := s.loadGroup(r, p, rbac.GuestConfigRead)
	if err != nil {
		return err
	}
	rows, err := s.st.ListGroupAssignments(r.Context(), g.SubscriptionID, g.Name)
	if err != nil {
		return err
	}
	out := apiv1.List[apiv1.GuestConfigurationAssignment]{Value: []apiv1.GuestConfigurationAssignment{}}
	for _, row := range rows {
		var a apiv1.GuestConfigurationAssignment
		if err := json.Unmarshal(row.Doc, &a); err != nil {
			return fmt.Errorf("the stored guest configuration assignment %s is damaged: %w", row.Name, err)
		}
		out.Value = append(out.Value, a)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Status report limits of guest configuration.
const (
	maxGCResourcesPerAssignment = 2000
	maxGCResourcesPerReport     = 5000
	maxGCEvidence               = 32
	// maxServices bounds the services of a (merged) status report.
	maxServices = 32
)

// Compliance values a machine reports.
var (
	assignmentCompliance = []string{apiv1.GuestConfigCompliant, apiv1.GuestConfigNonCompliant, apiv1.GuestConfigError, apiv1.GuestConfigNotApplied}
	resourceCompliance   = []string{apiv1.GuestConfigCompliant, apiv1.GuestConfigNonCompliant, apiv1.GuestConfigError, apiv1.GuestConfigSkipped, apiv1.GuestConfigNotApplicable}
)

// validateGuestConfigStatus bounds the guest configuration section of a
// status report: at most 2000 resources per assignment and 5000 in all,
// ids of at most 128 bytes, reasons of at most 4096, at most 32 evidence
// entries with keys of at most 64 bytes and values of at most 1024, and
// the known compliance values only.
func validateGuestConfigStatus(gs []apiv1.GuestConfigurationStatus) error {
	total := 0
	for i, g := range gs {
		f := fmt.Sprintf("guestConfiguration[%d].", i)
		if err := checkText(f+"name", g.Name, 256, true); err != nil {
			return err
		}
		if !slices.Contains(assignmentCompliance, g.Compliance) {
			return errf(apiv1.CodeBadRequest, "%scomplianceStatus %q: use %s", f, g.Compliance, strings.Join(assignmentCompliance, ", "))
		}
		if err := checkMessage(f+"message", g.Message, maxStatusMessage); err != nil {
			return err
		}
		for _, c := range []struct {
			field, v string
			max      int
		}{{"policy", g.Policy, 256}, {"version", g.Version, 64}, {"mode", g.Mode, 32}} {
			if err := checkText(f+c.field, c.v, c.max, false); err != nil {
				return err
			}
		}
		if g.DurationMs < 0 {
			return errf(apiv1.CodeBadRequest, "%sdurationMs must not be negative", f)
		}
		if len(g.Resources) > maxGCResourcesPerAssignment {
			return errf(apiv1.CodeBadRequest, "%sresources lists %d resources; at most %d are allowed per assignment", f, len(g.Resources), maxGCResourcesPerAssignment)
		}
		if total += len(g.Resources); total > maxGCResourcesPerReport {
			return errf(apiv1.CodeBadRequest, "the report lists more than %d guest configuration resources", maxGCResourcesPerReport)
		}
		for j, res := range g.Resources {
			rf := fmt.Sprintf("%sresources[%d].", f, j)
			if err := checkText(rf+"id", res.ID, 128, true); err != nil {
				return err
			}
			if err := checkText(rf+"type", res.Type, 64, false); err != nil {
				return err
			}
			if !slices.Contains(resourceCompliance, res.Compliance) {
				return errf(apiv1.CodeBadRequest, "%scomplianceStatus %q: use %s", rf, res.Compliance, strings.Join(resourceCompliance, ", "))
			}
			if err := checkMessage(rf+"reason", res.Reason, 4096); err != nil {
				return err
			}
			if res.DurationMs < 0 {
				return errf(apiv1.CodeBadRequest, "%sdurationMs must not be negative", rf)
			}
			if len(res.Evidence) > maxGCEvidence {
				return errf(apiv1.CodeBadRequest, "%sevidence has %d entries; at most %d are allowed", rf, len(res.Evidence), maxGCEvidence)
			}
			for k, v := range res.Evidence {
				if err := checkText(rf+"evidence key", k, 64, true); err != nil {
					return err
				}
				if err := checkMessage(rf+"evidence["+k+"]", v, 1024); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// guestConfigViews puts each desired assignment next to what the machine
// reported (matched by name, case-insensitively): State is the reported
// compliance when the machine reports this version and mode, else Pending;
// an assignment reported but no longer desired shows Removing. Sorted by
// name; with brief, the per-resource detail is left out (counts stay).
func guestConfigViews(desired []apiv1.GuestConfigurationAssignment, reported []apiv1.GuestConfigurationStatus, brief bool) []apiv1.GuestConfigurationView {
	out := []apiv1.GuestConfigurationView{}
	seen := map[string]bool{}
	find := func(name string) *apiv1.GuestConfigurationStatus {
		for i := range reported {
			if strings.EqualFold(reported[i].Name, name) {
				rep := reported[i]
				return &rep
			}
		}
		return nil
	}
	view := func(name string, d *apiv1.GuestConfigurationAssignment, rep *apiv1.GuestConfigurationStatus) apiv1.GuestConfigurationView {
		v := apiv1.GuestConfigurationView{Name: name, Desired: d, Reported: rep}
		if rep != nil {
			v.Resources = len(rep.Resources)
			for _, r := range rep.Resources {
				if !apiv1.GuestConfigResourceCompliant(r.Compliance) {
					v.NonCompliantResources++
				}
			}
			if brief {
				rep.Resources = nil
			}
		}
		return v
	}
	for i := range desired {
		d := desired[i]
		seen[strings.ToLower(d.Name)] = true
		rep := find(d.Name)
		v := view(d.Name, &d, rep)
		switch {
		case rep == nil:
			v.State, v.Reason = apiv1.GuestConfigPending, "the machine has not reported this assignment yet"
		case rep.Version != d.Version:
			v.State, v.Reason = apiv1.GuestConfigPending, fmt.Sprintf("the machine has not reported version %s yet (it reports %s)", d.Version, orDash(rep.Version))
		case rep.Mode != d.Mode:
			v.State, v.Reason = apiv1.GuestConfigPending, fmt.Sprintf("the machine has not reported mode %s yet (it reports %s)", d.Mode, orNone(rep.Mode))
		case rep.Policy != "" && !strings.EqualFold(rep.Policy, d.Policy):
			v.State, v.Reason = apiv1.GuestConfigPending, fmt.Sprintf("the machine reports policy %s, not %s", rep.Policy, d.Policy)
		default:
			v.State, v.Reason = rep.Compliance, rep.Message
		}
		out = append(out, v)
	}
	for i := range reported {
		if seen[strings.ToLower(reported[i].Name)] {
			continue
		}
		seen[strings.ToLower(reported[i].Name)] = true
		rep := reported[i]
		v := view(rep.Name, nil, &rep)
		v.State, v.Reason = apiv1.GuestConfigRemoving, "no longer assigned; the machine still reports it ("+rep.Compliance+")"
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b apiv1.GuestConfigurationView) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	return out
}

// machineGuestConfig is the views of one stored machine.
func machineGuestConfig(m store.Machine, brief bool) ([]apiv1.GuestConfigurationView, error) {
	ds, _, err := decodeDesired(store.DesiredState{Doc: m.DesiredState})
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", m.ID, err)
	}
	st, err := storedStatus(m)
	if err != nil {
		return nil, err
	}
	return guestConfigViews(ds.GuestConfigurationAssignments, st.GuestConfiguration, brief), nil
}

func (s *Server) handleMachineGC(w http.ResponseWriter, r *http.Request, p *principal) error {
	m, err := s.loadMachine(r, p, rbac.GuestConfigRead)
	if err != nil {
		return err
	}
	vs, err := machineGuestConfig(m, false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiv1.List[apiv1.GuestConfigurationView]{Value: vs})
	return nil
}

// handleFleetGC lists the guest configuration of every machine the caller
// may read it on, optionally within a subscription or resource group.
func (s *Server) handleFleetGC(w http.ResponseWriter, r *http.Request, p *principal) error {
	sub, rg, err := listScope(r, p, rbac.GuestConfigRead)
	if err != nil {
		return err
	}
	ms, err := s.st.ListMachines(r.Context(), store.MachineFilter{SubscriptionID: sub, ResourceGroup: rg})
	if err != nil {
		return err
	}
	out := apiv1.List[apiv1.MachineGuestConfiguration]{Value: []apiv1.MachineGuestConfiguration{}}
	for _, m := range ms {
		if !p.can(rbac.GuestConfigRead, m.ResourceID) {
			continue
		}
		vs, err := machineGuestConfig(m, true)
		if err != nil {
			return err
		}
		out.Value = append(out.Value, apiv1.MachineGuestConfiguration{MachineID: m.ID, Name: m.Name, ResourceID: m.ResourceID, Assignments: vs})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
