package controlplane

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/store"
)

// validateRegister checks a registration request and returns the machine
// name and the parsed key's thumbprint.
func validateRegister(req *apiv1.RegisterRequest) (name, thumb string, err error) {
	inv := &req.Inventory
	if err := validateInventory("inventory", inv); err != nil {
		return "", "", err
	}
	name = req.Name
	if name == "" {
		name, _, _ = strings.Cut(inv.Hostname, ".")
	}
	if err := checkName("name", name, 64); err != nil {
		return "", "", err
	}
	if err := checkTags(req.Tags); err != nil {
		return "", "", err
	}
	if req.PublicKey == "" {
		return "", "", errf(apiv1.CodeBadRequest, "publicKey is required: the machine's ECDSA P-256 public key as PEM")
	}
	pub, err := parsePublicKey(req.PublicKey)
	if err != nil {
		return "", "", errf(apiv1.CodeBadRequest, "%s", err.Error())
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	h := sha256.Sum256(der)
	return name, base64.RawURLEncoding.EncodeToString(h[:]), nil
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if err := s.register(w, r); err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	secret, ok := bearer(r)
	if !ok || !strings.HasPrefix(secret, onboardingPrefix) {
		return errf(apiv1.CodeOnboardingInvalid, "registration needs an onboarding credential: send Authorization: Bearer %s…", onboardingPrefix)
	}
	var req apiv1.RegisterRequest
	if err := decodeBody(w, r, maxBody, &req); err != nil {
		return err
	}
	name, thumb, err := validateRegister(&req)
	if err != nil {
		return err
	}
	inv, _ := json.Marshal(req.Inventory)
	if req.Tags == nil {
		req.Tags = apiv1.Tags{}
	}
	now := s.now().UTC()
	doc := emptyDesiredState()
	m := store.Machine{
		ID: newUUID(), Name: name, PublicKeyPEM: req.PublicKey, KeyThumbprint: thumb, Inventory: inv, Tags: req.Tags,
		AgentVersion: req.Inventory.AgentVersion, CreatedAt: now, LastHeartbeat: now, DesiredState: doc, DesiredETag: etagOf(doc),
	}
	err = s.st.RegisterMachine(r.Context(), hashSecret(secret), now, &m)
	switch {
	case errors.Is(err, store.ErrOnboardingExpired), errors.Is(err, store.ErrOnboardingRevoked), errors.Is(err, store.ErrOnboardingUsedUp):
		return errf(apiv1.CodeOnboardingInvalid, "%s", err.Error())
	case errors.Is(err, store.ErrConflict):
		return errf(apiv1.CodeConflict, "%s: delete the old machine (`arcagent fleet machines delete`) or register under another name", err.Error())
	case errors.Is(err, store.ErrNotFound) && strings.HasPrefix(err.Error(), "onboarding credential"):
		return errf(apiv1.CodeOnboardingInvalid, "the onboarding credential is not known to this server")
	case err != nil:
		return storeErr(err, "the resource group of the onboarding credential")
	}
	if c, ok := r.Context().Value(callerKey{}).(*caller); ok {
		c.machine = m.ID
	}
	// Before the machine learns its id: its first desired state already
	// holds its resource group's guest configuration assignments.
	if err := s.syncGroupFor(r, m.ID); err != nil {
		s.log.Error("machine registered without its resource group's guest configuration assignments", "machine", m.ID, "error", err)
		return fmt.Errorf("machine %s was registered, but its resource group's guest configuration could not be added: delete it (`arcagent fleet machines delete`) and connect again: %w", m.ID, err)
	}
	s.log.Info("machine registered", "machine", m.ID, "resource_id", m.ResourceID, "onboarding_credential", m.OnboardingID)
	g, _ := s.st.ResourceGroup(r.Context(), m.SubscriptionID, m.ResourceGroup)
	writeJSON(w, http.StatusCreated, apiv1.Registration{
		MachineID: m.ID, ResourceID: m.ResourceID, Name: m.Name, SubscriptionID: m.SubscriptionID, ResourceGroup: m.ResourceGroup,
		TenantID: s.tenantID, Location: g.Location, Audience: s.audience, Issuer: s.issuer, HeartbeatSeconds: int(s.hbEvery / time.Second),
	})
	return nil
}

// readOptionalBody decodes a JSON body into dst if there is one.
func readOptionalBody(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errf(apiv1.CodeTooLarge, "the request body is larger than the limit of %d bytes", limit)
		}
		return errf(apiv1.CodeBadRequest, "the request body could not be read")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return errf(apiv1.CodeUnsupportedMedia, "Content-Type %q is not accepted: send application/json", ct)
	}
	return decodeStrictBytes(b, dst) // read once, within limit, above
}

func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request, id string, m *machineEntry) error {
	var req apiv1.HeartbeatRequest
	if err := readOptionalBody(w, r, maxHeartbeatBody, &req); err != nil {
		return err
	}
	if err := validateHeartbeat(&req); err != nil {
		return err
	}
	if req.Inventory != nil {
		// Rare (an agent's start, a change): written at once, outside the
		// batch; a refused inventory refuses the heartbeat (400) and the
		// agent sends it again without one.
		if err := s.storeInventory(r, id, m, req.Inventory); err != nil {
			return err
		}
		if req.AgentVersion == "" {
			req.AgentVersion = req.Inventory.AgentVersion
		}
	}
	now := s.now()
	if err := s.hb.record(r.Context(), store.Heartbeat{MachineID: id, At: now, AgentVersion: req.AgentVersion}); err != nil {
		if errors.Is(err, errShuttingDown) {
			w.Header().Set("Retry-After", "5")
		}
		return err
	}
	if ms := now.UnixMilli(); ms > m.lastHB.Load() {
		m.lastHB.Store(ms)
	}
	etag, _ := m.etag.Load().(string)
	writeJSON(w, http.StatusOK, apiv1.HeartbeatResponse{Status: apiv1.StatusConnected, HeartbeatSeconds: int(s.hbEvery / time.Second), DesiredStateETag: etag})
	return nil
}

func validateHeartbeat(req *apiv1.HeartbeatRequest) error {
	if err := checkText("agentVersion", req.AgentVersion, 64, false); err != nil {
		return err
	}
	if req.Inventory != nil {
		if err := validateInventory("inventory", req.Inventory); err != nil {
			return err
		}
	}
	return checkText("agentStatus", req.AgentStatus, 64, false)
}

func (s *Server) handleDesiredState(w http.ResponseWriter, r *http.Request, id string, e *machineEntry) error {
	m, err := s.st.Machine(r.Context(), id)
	if err != nil {
		return storeErr(err, "machine "+id)
	}
	// Refresh the ETag heartbeats report: an assignment that raced with
	// the first caching of this machine may have left an older one there.
	e.etag.Store(m.DesiredETag)
	w.Header().Set("ETag", m.DesiredETag)
	w.Header().Set("Cache-Control", "no-cache")
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, t := range strings.Split(inm, ",") {
			if t = strings.TrimSpace(t); t == m.DesiredETag || t == "*" {
				w.WriteHeader(http.StatusNotModified)
				return nil
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(m.DesiredState, '\n'))
	return nil
}

// ValidateStatus applies to a status report the checks PUT
// /v1/machines/{id}/status applies, so that the agent's tests, which
// drive passes against an in-memory stand-in for the control plane,
// refuse what the server refuses.
func ValidateStatus(st *apiv1.MachineStatus) error { return validateStatus(st) }

// validateStatus bounds a status report.
func validateStatus(st *apiv1.MachineStatus) error {
	if len(st.Extensions) > 500 || len(st.GuestConfiguration) > 500 || len(st.Services) > maxServices {
		return errf(apiv1.CodeBadRequest, "a status report may list at most 500 extensions, 500 guest configuration assignments and 32 services")
	}
	if err := checkText("desiredStateETag", st.DesiredStateETag, 128, false); err != nil {
		return err
	}
	for i, e := range st.Extensions {
		f := "extensions[" + strconv.Itoa(i) + "]."
		for _, c := range []struct {
			field, v string
			max      int
			required bool
		}{
			{"name", e.Name, 256, true}, {"state", e.State, 64, true}, {"publisher", e.Publisher, 128, false}, {"type", e.Type, 64, false},
			{"version", e.Version, 64, false}, {"operation", e.Operation, 32, false},
		} {
			if err := checkText(f+c.field, c.v, c.max, c.required); err != nil {
				return err
			}
		}
		if err := checkMessage(f+"message", e.Message, maxStatusMessage); err != nil {
			return err
		}
		if err := checkMessage(f+"degraded", e.Degraded, 1024); err != nil {
			return err
		}
		if e.Sequence < 0 {
			return errf(apiv1.CodeBadRequest, "%ssequence must not be negative", f)
		}
	}
	if err := validateGuestConfigStatus(st.GuestConfiguration); err != nil {
		return err
	}
	for i, sv := range st.Services {
		f := "services[" + strconv.Itoa(i) + "]."
		if err := checkText(f+"name", sv.Name, 64, true); err != nil {
			return err
		}
		if err := checkText(f+"state", sv.State, 64, true); err != nil {
			return err
		}
		if err := checkMessage(f+"message", sv.Message, maxStatusMessage); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, id string, _ *machineEntry) error {
	var st apiv1.MachineStatus
	if err := decodeBody(w, r, maxStatusBody, &st); err != nil {
		return err
	}
	if err := validateStatus(&st); err != nil {
		return err
	}
	now := s.now().UTC()
	if st.ReportedAt.IsZero() {
		st.ReportedAt = now
	}
	err := s.st.UpdateMachineStatus(r.Context(), id, now, func(cur []byte) ([]byte, error) {
		var old apiv1.MachineStatus
		if len(cur) > 0 {
			if err := json.Unmarshal(cur, &old); err != nil {
				s.log.Warn("replacing a damaged stored status report", "machine", id, "error", err)
				old = apiv1.MachineStatus{}
			}
		}
		return json.Marshal(mergeStatus(old, st))
	})
	if err != nil {
		return storeErr(err, "machine "+id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// mergeStatus merges a report into the stored one by section, as each
// agent service reports its own: a null or absent extensions or
// guestConfiguration section keeps the stored one, an empty list clears
// it; services are merged by name (the reported ones replace theirs).
func mergeStatus(old, rep apiv1.MachineStatus) apiv1.MachineStatus {
	out := rep
	if rep.Extensions == nil {
		out.Extensions = old.Extensions
	}
	if rep.GuestConfiguration == nil {
		out.GuestConfiguration = old.GuestConfiguration
	}
	if rep.DesiredStateETag == "" {
		out.DesiredStateETag = old.DesiredStateETag
	}
	out.Services = append([]apiv1.ServiceStatus(nil), rep.Services...)
	for _, o := range old.Services {
		if len(out.Services) >= maxServices {
			break
		}
		if !slices.ContainsFunc(rep.Services, func(n apiv1.ServiceStatus) bool { return strings.EqualFold(n.Name, o.Name) }) {
			out.Services = append(out.Services, o)
		}
	}
	slices.SortFunc(out.Services, func(a, b apiv1.ServiceStatus) int {
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	if out.Extensions == nil {
		out.Extensions = []apiv1.ExtensionStatus{}
	}
	if out.GuestConfiguration == nil {
		out.GuestConfiguration = []apiv1.GuestConfigurationStatus{}
	}
	if len(out.Services) == 0 {
		out.Services = nil
	}
	return out
}

// tokenClaims are the claims of an issued managed-identity token.
type tokenClaims struct {
	jwt.RegisteredClaims
	TenantID string `json:"tid"`
	ObjectID string `json:"oid"`
	MIRID    string `json:"xms_mirid"`
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, id string, m *machineEntry) error {
	resource := r.URL.Query().Get("resource")
	if err := checkResource(resource); err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Second)
	exp := now.Add(s.tokenLife)
	claims := tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.issuer, Subject: m.resourceID, Audience: jwt.ClaimStrings{resource},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp), ID: newUUID(),
		},
		TenantID: s.tenantID, ObjectID: id, MIRID: m.resourceID,
	}
	tok, err := s.keys.sign(claims)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apiv1.TokenResponse{
		AccessToken: tok, ExpiresOn: strconv.FormatInt(exp.Unix(), 10), ExpiresIn: strconv.FormatInt(int64(s.tokenLife/time.Second), 10),
		NotBefore: strconv.FormatInt(now.Unix(), 10), TokenType: "Bearer", Resource: resource,
	})
	return nil
}

// handleSelf lets a machine read its own representation (name, resource
// id, location, tags, status), which HIMDS serves as instance metadata.
func (s *Server) handleSelf(w http.ResponseWriter, r *http.Request, id string, _ *machineEntry) error {
	m, err := s.st.Machine(r.Context(), id)
	if err != nil {
		return storeErr(err, "machine "+id)
	}
	out := s.toMachine(m, false)
	out.Location = s.locationOf(r, m)
	out.TenantID = s.tenantID
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleDeleteSelf lets a machine delete its own resource, as
// `arcagent disconnect` does. The machine's key stops working at once.
func (s *Server) handleDeleteSelf(w http.ResponseWriter, r *http.Request, id string, _ *machineEntry) error {
	s.forgetMachine(id)
	if err := s.st.DeleteMachine(r.Context(), id); err != nil {
		return storeErr(err, "machine "+id)
	}
	s.log.Info("machine deleted itself", "machine", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
