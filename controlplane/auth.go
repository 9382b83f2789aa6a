package controlplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/controlplane/store"
)

// principal is an authenticated operator and their role assignments.
type principal struct {
	name        string
	assignments []store.RoleAssignment
	rbac        []rbac.Assignment
}

func (p *principal) can(perm, scope string) bool { return rbac.Allowed(p.rbac, perm, scope) }

// require returns a 403 error naming perm when p lacks it at scope.
func (p *principal) require(perm, scope string) error {
	if p.can(perm, scope) {
		return nil
	}
	return forbidden(perm, scope)
}

// requireHidden checks perm on a resource the caller named by id (what),
// given the store lookup's error and the resource's scope. A caller without
// perm gets the same 403 whether the resource lies outside their scopes or
// does not exist (forbiddenHidden); only a caller holding perm on the whole
// tenant learns that it does not exist (404).
func (p *principal) requireHidden(lookupErr error, perm, scope, what string) error {
	switch {
	case errors.Is(lookupErr, store.ErrNotFound):
		if p.can(perm, rbac.TenantScope) {
			return errf(apiv1.CodeNotFound, "%s does not exist", what)
		}
		return forbiddenHidden(perm, what)
	case lookupErr != nil:
		return lookupErr
	case !p.can(perm, scope):
		return forbiddenHidden(perm, what)
	}
	return nil
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "Bearer ") {
		return "", false
	}
	t := strings.TrimSpace(h[7:])
	return t, t != ""
}

type operatorHandler func(w http.ResponseWriter, r *http.Request, p *principal) error

// operator authenticates an API token and runs h with the principal.
func (s *Server) operator(h operatorHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticateOperator(r)
		if err == nil {
			err = h(w, r, p)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	}
}

func (s *Server) authenticateOperator(r *http.Request) (*principal, error) {
	tok, ok := bearer(r)
	if !ok {
		return nil, errf(apiv1.CodeUnauthenticated, "this endpoint needs an operator API token: send Authorization: Bearer <token>")
	}
	return s.authenticateToken(r, tok)
}

// authenticateToken checks an operator API token (from the Authorization
// header or the dashboard's cookie) and loads the principal's roles.
func (s *Server) authenticateToken(r *http.Request, tok string) (*principal, error) {
	if !strings.HasPrefix(tok, apiTokenPrefix) {
		return nil, errf(apiv1.CodeUnauthenticated, "the bearer token is not an operator API token (they start with %q)", apiTokenPrefix)
	}
	t, err := s.st.APITokenByHash(r.Context(), hashSecret(tok))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errf(apiv1.CodeUnauthenticated, "the API token is not known to this server")
	}
	if err != nil {
		return nil, err
	}
	if !t.ExpiresAt.IsZero() && !s.now().Before(t.ExpiresAt) {
		return nil, errf(apiv1.CodeUnauthenticated, "the API token %s expired at %s", t.ID, t.ExpiresAt.Format(time.RFC3339))
	}
	as, err := s.st.RoleAssignmentsFor(r.Context(), t.Principal)
	if err != nil {
		return nil, err
	}
	p := &principal{name: t.Principal, assignments: as}
	for _, a := range as {
		p.rbac = append(p.rbac, rbac.Assignment{Role: a.Role, Scope: a.Scope})
	}
	if c, ok := r.Context().Value(callerKey{}).(*caller); ok {
		c.principal = t.Principal
	}
	return p, nil
}

type machineHandler func(w http.ResponseWriter, r *http.Request, id string, m *machineEntry) error

// machine authenticates a machine assertion for the machine in the path.
func (s *Server) machine(h machineHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		m, err := s.authenticateMachine(r, id)
		if err == nil {
			err = h(w, r, id, m)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	}
}

func (s *Server) authenticateMachine(r *http.Request, id string) (*machineEntry, error) {
	raw, ok := bearer(r)
	if !ok {
		return nil, errf(apiv1.CodeAssertionInvalid, "this endpoint needs a machine assertion: send Authorization: Bearer <JWT signed by the machine key>")
	}
	if strings.HasPrefix(raw, apiTokenPrefix) {
		return nil, errf(apiv1.CodeAssertionInvalid, "operator API tokens cannot act as a machine: this endpoint needs the machine's signed assertion")
	}
	var entry *machineEntry
	sub, err := s.verifyAssertion(r.Context(), raw, func(sub string) (*ecdsa.PublicKey, error) {
		e, err := s.machineEntry(r.Context(), sub)
		if err != nil {
			return nil, err
		}
		entry = e
		return e.pub, nil
	})
	if err != nil {
		return nil, err
	}
	if c, ok := r.Context().Value(callerKey{}).(*caller); ok {
		c.machine = sub
	}
	if !strings.EqualFold(sub, id) {
		return nil, errf(apiv1.CodeForbidden, "the assertion is for machine %s; a machine may act only on itself, not on %s", sub, id)
	}
	if last := time.UnixMilli(entry.lastHB.Load()); apiv1.StatusAt(last, s.now()) == apiv1.StatusExpired {
		return nil, errf(apiv1.CodeMachineExpired, "machine %s sent no heartbeat since %s and has expired", sub, last.UTC().Format(time.RFC3339))
	}
	return entry, nil
}

// machineEntry returns the cached authentication data of a machine. When
// the store is shared with other replicas, an entry older than cacheTTL is
// read again, so that a machine deleted elsewhere stops authenticating,
// and a desired state or heartbeat recorded elsewhere is seen, within
// that bound.
func (s *Server) machineEntry(ctx context.Context, id string) (*machineEntry, error) {
	s.mu.RLock()
	e := s.machines[id]
	s.mu.RUnlock()
	if e != nil && (s.exclusive || s.now().UnixNano()-e.loaded.Load() < int64(s.cacheTTL)) {
		return e, nil
	}
	if !isUUID(id) {
		return nil, errf(apiv1.CodeAssertionInvalid, "machine %q is not registered with this server: connect the machine first", id)
	}
	loadedAt := s.now().UnixNano()
	m, err := s.readMachine(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		if e != nil {
			s.forgetMachine(id) // deleted through another replica
		}
		return nil, errf(apiv1.CodeAssertionInvalid, "machine %s is not registered with this server (it may have been deleted): connect it again", id)
	}
	if err != nil {
		return nil, err
	}
	if e != nil && e.pemKey == m.PublicKeyPEM {
		// Refresh in place: handlers holding e see the new values.
		if hb := m.LastHeartbeat.UnixMilli(); hb > e.lastHB.Load() {
			e.lastHB.Store(hb)
		}
		e.etag.Store(m.DesiredETag)
		e.loaded.Store(loadedAt)
		return e, nil
	}
	pub, err := parsePublicKey(m.PublicKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("machine %s has a damaged key in the database: %w", id, err)
	}
	n := &machineEntry{pub: pub, pemKey: m.PublicKeyPEM, resourceID: m.ResourceID}
	n.lastHB.Store(m.LastHeartbeat.UnixMilli())
	n.etag.Store(m.DesiredETag)
	n.loaded.Store(loadedAt)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, gone := s.deleted[id]; gone {
		return nil, errf(apiv1.CodeAssertionInvalid, "machine %s was deleted: connect it again", id)
	}
	if old := s.machines[id]; old != nil && old != e {
		return old, nil
	}
	s.machines[id] = n
	return n, nil
}

// readMachine reads what authenticating machine id needs: batched with
// the concurrent requests' reads when the store is shared, on its own
// otherwise (a process alone on its store reads a machine once).
func (s *Server) readMachine(ctx context.Context, id string) (store.MachineAuth, error) {
	if s.exclusive {
		return s.st.MachineAuth(ctx, id)
	}
	r, err := s.machineDB.do(id)
	if err != nil {
		return store.MachineAuth{}, fmt.Errorf("read machine %s: %w", id, err)
	}
	if !r.found {
		return store.MachineAuth{}, fmt.Errorf("machine %s: %w", id, store.ErrNotFound)
	}
	return r.auth, nil
}

// forgetMachine drops a deleted machine from the cache for good.
func (s *Server) forgetMachine(id string) {
	s.mu.Lock()
	delete(s.machines, id)
	s.deleted[id] = struct{}{}
	s.mu.Unlock()
}

// parsePublicKey reads a PEM PKIX ECDSA P-256 public key.
func parsePublicKey(p string) (*ecdsa.PublicKey, error) {
	b, rest := pem.Decode([]byte(p))
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, errors.New(`publicKey must be a PEM block of type "PUBLIC KEY"`)
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, errors.New("publicKey must hold exactly one PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("publicKey cannot be parsed: %w", err)
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok || ek.Curve.Params().Name != "P-256" {
		return nil, errors.New("publicKey must be an ECDSA P-256 key")
	}
	return ek, nil
}
