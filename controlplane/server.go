// Package controlplane is arcserver, the source of truth the agents talk
// to: an HTTPS REST/JSON API under /v1 with scopes (subscriptions ›
// resource groups › machines), role-based access control, onboarding
// credentials, machine registration and heartbeats, desired state, and a
// token issuer for machine managed identities with OIDC discovery and JWKS.
//
// Persistence is behind controlplane/store; scopes, roles and permissions
// live in controlplane/rbac; the JSON wire types and error codes are in
// controlplane/apiv1 so that clients (agent/cloud) share them.
package controlplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/releases"
)

// Config configures a Server.
type Config struct {
	Store store.Store
	// Issuer is the https URL the server is reached at; it is the iss of
	// issued tokens and the base of the OIDC discovery document.
	Issuer string
	Logger *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// TokenLifetime of issued managed-identity tokens; 0 means one hour.
	TokenLifetime time.Duration
	// HeartbeatInterval the agents are told to use; 0 means 5 minutes.
	HeartbeatInterval time.Duration
	// DataDir is the data directory: the protected-settings fingerprint
	// key lives in it, and packages that servers before the package bytes
	// moved into the database kept in its packages/ directory are imported
	// from there at New (ImportPackageFiles). Empty in some tests.
	DataDir string
	// KeyReload is how often signing keys are re-read from the store (to
	// pick up `arcserver keys rotate`); 0 means one minute. A new key is
	// published at once and signs only after two reload intervals, so
	// that every replica publishes it before any replica signs with it.
	KeyReload time.Duration
	// AuditHistory is how many uploaded audit reports of one machine and
	// profile are kept (the oldest are deleted); 0 means
	// DefaultAuditHistory (20).
	AuditHistory int
	// Releases classifies agent versions on the dashboard (current,
	// behind, unsupported) under ReleasePolicy; nil shows plain counts.
	Releases      releases.Source
	ReleasePolicy releases.Policies
	// Exclusive says that no other process uses Store: Serve sets it
	// while it holds the data directory's lock. The assertion replay
	// cache and the machine cache then live in this process's memory.
	// Otherwise (replicas over one database) the replay cache is in the
	// store and cached machines are re-read after MachineCacheTTL.
	Exclusive bool
	// MachineCacheTTL bounds how long a replica trusts its cached view of
	// a machine (its existence, desired-state ETag and last heartbeat)
	// before reading it again; 0 means one second. Unused when Exclusive.
	MachineCacheTTL time.Duration
}

// Server is the control plane's HTTP API.
type Server struct {
	st        store.Store
	log       *slog.Logger
	now       func() time.Time
	issuer    string
	audience  string
	tenantID  string
	tokenLife time.Duration
	hbEvery   time.Duration
	keyReload time.Duration
	// auditHistory bounds the stored reports per machine and profile.
	auditHistory int

	dataDir string

	keyMu sync.Mutex
	fpKey []byte // protected-settings fingerprint key, loaded on first use

	keys   *keyring
	replay *replayCache
	// exclusive says the in-memory replay cache and machine cache stand
	// in for the store's replica-shared state.
	// Otherwise replayDB and machineDB batch the replay rows and the
	// machine re-reads of concurrent requests.
	replayDB  *groupBatch[store.AssertionKey, bool]
	machineDB *groupBatch[string, machineRead]
	exclusive bool
	// ticketCfg is the TLS configuration whose session ticket keys the
	// reload loop keeps current (ShareSessionTickets; nil: none).
	ticketCfg atomic.Pointer[tls.Config]
	cacheTTL  time.Duration
	// started bounds replays across restarts: an exclusive server's
	// replay cache lives in memory, so assertions issued before this
	// process started are refused (they may have been used with the
	// previous process, which may also have been exclusive).
	started time.Time
	hb      *heartbeatBatcher
	mux     *http.ServeMux

	mu       sync.RWMutex
	machines map[string]*machineEntry
	// deleted remembers machines deleted while this process runs, so that
	// a lookup that raced with the delete cannot cache the machine again.
	deleted map[string]struct{}
	reqSeq  atomic.Uint64

	releases  releases.Source
	relPolicy releases.Policies
	uiRules   uiRuleCache // the dashboard's top failing rules, per scope
}

// machineEntry caches what authenticating a machine needs.
type machineEntry struct {
	pub        *ecdsa.PublicKey
	pemKey     string // pub as stored, to tell a refreshed entry apart
	resourceID string
	lastHB     atomic.Int64 // unix ms
	etag       atomic.Value // string
	invDigest  atomic.Value // string: SHA-256 of the inventory this process stored last
	// loaded is when the entry was last read from the store (unix ns of
	// the server clock); replicas re-read entries older than cacheTTL.
	loaded atomic.Int64
}

// New builds a server over an initialised store.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("controlplane: Config.Store is required")
	}
	s := &Server{
		st:           cfg.Store,
		log:          cfg.Logger,
		now:          cfg.Now,
		issuer:       strings.TrimRight(cfg.Issuer, "/"),
		tokenLife:    cfg.TokenLifetime,
		hbEvery:      cfg.HeartbeatInterval,
		keyReload:    cfg.KeyReload,
		dataDir:      cfg.DataDir,
		auditHistory: cfg.AuditHistory,
		replay:       newReplayCache(),
		exclusive:    cfg.Exclusive,
		cacheTTL:     cfg.MachineCacheTTL,
		machines:     map[string]*machineEntry{},
		deleted:      map[string]struct{}{},
		releases:     cfg.Releases,
		relPolicy:    cfg.ReleasePolicy,
	}
	if s.log == nil {
		s.log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.tokenLife <= 0 {
		s.tokenLife = time.Hour
	}
	if s.hbEvery <= 0 {
		s.hbEvery = 5 * time.Minute
	}
	if s.auditHistory <= 0 {
		s.auditHistory = DefaultAuditHistory
	}
	if s.keyReload <= 0 {
		s.keyReload = time.Minute
	}
	if s.cacheTTL <= 0 {
		s.cacheTTL = time.Second
	}
	s.replayDB = newReplayBatch(cfg.Store, s.now)
	s.machineDB = newMachineBatch(cfg.Store)
	t, err := s.st.Tenant(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("the database holds no tenant: run `arcserver init --data DIR` first: %w", err)
	}
	if err != nil {
		return nil, err
	}
	s.tenantID = t.ID
	s.started = s.now()
	s.audience = Audience(t.ID)
	s.keys = &keyring{st: s.st, lifetime: s.tokenLife, prepublish: prepublication(s.keyReload)}
	if err := s.keys.load(ctx, s.now()); err != nil {
		return nil, err
	}
	if s.dataDir != "" {
		// Fail at start, not at first use, on a replica whose
		// protected-settings key differs from the others'.
		if _, err := s.settingsKey(ctx); err != nil {
			return nil, err
		}
		// Packages published before their bytes moved into the database
		// (files only): copy them in, so that every replica serves them.
		// A package that cannot be copied is still served from its file.
		if n, err := ImportPackageFiles(ctx, s.st, s.dataDir); err != nil {
			s.log.Warn("some published packages could not be copied from the data directory into the database", "imported", n, "error", err)
		} else if n > 0 {
			s.log.Info("published packages copied from the data directory into the database", "imported", n)
		}
	}
	s.hb = newHeartbeatBatcher(s.st, s.log)
	s.routes()
	return s, nil
}

// Audience is the aud a machine assertion must carry for a tenant.
func Audience(tenantID string) string { return "urn:arcserver:tenant:" + tenantID }

// SetIssuer sets the issuer URL (once the listen address is known).
func (s *Server) SetIssuer(u string) { s.issuer = strings.TrimRight(u, "/") }

// Issuer returns the issuer URL.
func (s *Server) Issuer() string { return s.issuer }

// TenantID returns the tenant's id.
func (s *Server) TenantID() string { return s.tenantID }

// RotateKey publishes a new token-signing key now and reloads the keys;
// the new key signs once the pre-publication period (two key reload
// intervals) has passed, so that every replica publishes it first.
func (s *Server) RotateKey(ctx context.Context) (string, error) {
	kid, err := newSigningKey(ctx, s.st, s.now(), s.keys.prepublish)
	if err != nil {
		return "", err
	}
	return kid, s.keys.load(ctx, s.now())
}

// ReloadKeys re-reads the signing keys from the store.
func (s *Server) ReloadKeys(ctx context.Context) error { return s.keys.load(ctx, s.now()) }

// Start runs the background work (heartbeat writer, key reload, and on
// replicas the replay sweep and ticket key reload) until ctx
// ends; Close waits for it.
func (s *Server) Start(ctx context.Context) {
	go s.hb.run()
	go func() {
		t := time.NewTicker(s.keyReload)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.keys.load(ctx, s.now()); err != nil && ctx.Err() == nil {
					s.log.Warn("reload signing keys", "err", err)
				}
				if !s.exclusive {
					if _, err := s.st.SweepAssertions(ctx, s.now()); err != nil && ctx.Err() == nil {
						s.log.Warn("sweep expired assertions", "err", err)
					}
					s.reloadTicketKeys(ctx)
				}
			}
		}
	}()
}

// Close flushes pending heartbeats. Call it after the HTTP server has shut
// down.
func (s *Server) Close() { s.hb.stop() }

// Handler is the server's HTTP handler (every route, with logging,
// recovery and JSON errors for unknown paths and methods).
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := fmt.Sprintf("%x-%d", start.UnixNano()&0xffffffff, s.reqSeq.Add(1))
	w.Header().Set("X-Request-Id", rid)
	if isUIPath(r.URL.Path) {
		// Also on what the router answers itself (405, path cleaning).
		uiHeaders(w)
	}
	rec := &statusRecorder{ResponseWriter: w}
	c := &caller{}
	r = r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "request_id", rid)
			if rec.status == 0 {
				s.writeError(rec, r, errf(apiv1.CodeServerError, "the server failed while handling the request (request id %s)", rid))
			}
		}
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		if s.log.Enabled(r.Context(), level) {
			attrs := []slog.Attr{
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rec.status),
				slog.Int64("bytes", rec.bytes), slog.Duration("duration", time.Since(start)),
				slog.String("remote", r.RemoteAddr), slog.String("request_id", rid),
			}
			s.log.LogAttrs(r.Context(), level, "request", append(attrs, logAttrs(c)...)...)
		}
	}()
	// mux.Handler finds no pattern for unknown paths and methods; answer
	// those with JSON errors. ServeHTTP (not the returned handler) is what
	// fills in the path values.
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.notRouted(rec, r)
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// notRouted answers 405 (with Allow) when the path exists for another
// method, 404 otherwise, both as JSON errors.
func (s *Server) notRouted(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := s.mux.Handler(r2); p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, errf(apiv1.CodeMethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
		return
	}
	s.writeError(w, r, errf(apiv1.CodeNotFound, "there is no API at %s: see docs/controlplane.md for the paths", r.URL.Path))
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", s.handleHealth)
	m.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery)
	m.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)

	m.HandleFunc("GET /v1/whoami", s.operator(s.handleWhoami))
	m.HandleFunc("GET /v1/roleDefinitions", s.operator(s.handleRoleDefinitions))
	m.HandleFunc("GET /v1/roleAssignments", s.operator(s.handleListRoleAssignments))
	m.HandleFunc("POST /v1/roleAssignments", s.operator(s.handleCreateRoleAssignment))
	m.HandleFunc("DELETE /v1/roleAssignments/{id}", s.operator(s.handleDeleteRoleAssignment))
	m.HandleFunc("POST /v1/apiTokens", s.operator(s.handleCreateAPIToken))
	m.HandleFunc("GET /v1/apiTokens", s.operator(s.handleListAPITokens))
	m.HandleFunc("DELETE /v1/apiTokens/{id}", s.operator(s.handleDeleteAPIToken))

	m.HandleFunc("GET /v1/subscriptions", s.operator(s.handleListSubscriptions))
	m.HandleFunc("POST /v1/subscriptions", s.operator(s.handleCreateSubscription))
	m.HandleFunc("GET /v1/subscriptions/{sub}", s.operator(s.handleGetSubscription))
	m.HandleFunc("GET /v1/subscriptions/{sub}/resourceGroups", s.operator(s.handleListResourceGroups))
	m.HandleFunc("POST /v1/subscriptions/{sub}/resourceGroups", s.operator(s.handleCreateResourceGroup))
	m.HandleFunc("GET /v1/subscriptions/{sub}/resourceGroups/{rg}", s.operator(s.handleGetResourceGroup))

	m.HandleFunc("GET /v1/onboardingCredentials", s.operator(s.handleListOnboarding))
	m.HandleFunc("POST /v1/onboardingCredentials", s.operator(s.handleCreateOnboarding))
	m.HandleFunc("DELETE /v1/onboardingCredentials/{id}", s.operator(s.handleRevokeOnboarding))

	m.HandleFunc("GET /v1/machines", s.operator(s.handleListMachines))
	m.HandleFunc("GET /v1/machines/{id}", s.operator(s.handleGetMachine))
	m.HandleFunc("PATCH /v1/machines/{id}", s.operator(s.handleUpdateMachine))
	m.HandleFunc("DELETE /v1/machines/{id}", s.operator(s.handleDeleteMachine))
	m.HandleFunc("GET /v1/inventory", s.operator(s.handleListInventory))

	m.HandleFunc("POST /v1/packages", s.operator(s.handlePublishPackage))
	m.HandleFunc("GET /v1/packages", s.operator(s.handleListPackages))
	m.HandleFunc("GET /v1/machines/{id}/extensions", s.operator(s.handleListExtensions))
	m.HandleFunc("PUT /v1/machines/{id}/extensions/{name}", s.operator(s.handleSetExtension))
	m.HandleFunc("DELETE /v1/machines/{id}/extensions/{name}", s.operator(s.handleRemoveExtension))
	m.HandleFunc("GET /v1/guestconfiguration", s.operator(s.handleFleetGC))
	m.HandleFunc("GET /v1/audits/findings", s.operator(s.handleAuditFindings))
	m.HandleFunc("GET /v1/machines/{id}/audits", s.operator(s.handleMachineAudits))
	m.HandleFunc("GET /v1/machines/{id}/audits/{reportId}", s.operator(s.handleMachineAuditReport))
	m.HandleFunc("GET /v1/machines/{id}/guestconfiguration", s.operator(s.handleMachineGC))
	m.HandleFunc("PUT /v1/machines/{id}/guestconfiguration/{name}", s.operator(s.handleAssignMachineGC))
	m.HandleFunc("DELETE /v1/machines/{id}/guestconfiguration/{name}", s.operator(s.handleRemoveMachineGC))
	m.HandleFunc("GET /v1/subscriptions/{sub}/resourceGroups/{rg}/guestconfiguration", s.operator(s.handleListGroupGC))
	m.HandleFunc("PUT /v1/subscriptions/{sub}/resourceGroups/{rg}/guestconfiguration/{name}", s.operator(s.handleAssignGroupGC))
	m.HandleFunc("DELETE /v1/subscriptions/{sub}/resourceGroups/{rg}/guestconfiguration/{name}", s.operator(s.handleRemoveGroupGC))

	m.HandleFunc("POST /v1/machines/register", s.handleRegister)
	m.HandleFunc("GET /v1/machines/{id}/self", s.machine(s.handleSelf))
	m.HandleFunc("DELETE /v1/machines/{id}/self", s.machine(s.handleDeleteSelf))
	m.HandleFunc("POST /v1/machines/{id}/heartbeat", s.machine(s.handleHeartbeat))
	m.HandleFunc("GET /v1/machines/{id}/desiredState", s.machine(s.handleDesiredState))
	m.HandleFunc("PUT /v1/machines/{id}/status", s.machine(s.handleStatus))
	m.HandleFunc("GET /v1/machines/{id}/cloudFacts", s.machine(s.handleCloudFacts))
	m.HandleFunc("POST /v1/machines/{id}/audits", s.machine(s.handleUploadAudit))
	m.HandleFunc("POST /v1/machines/{id}/token", s.machine(s.handleToken))
	m.HandleFunc("GET /v1/machines/{id}/packages/{sha256}", s.machine(s.handleDownloadPackage))
	m.HandleFunc("GET /v1/machines/{id}/packages/{sha256}/signature", s.machine(s.handleDownloadSignature))
	s.uiRoutes(m)
	s.mux = m
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, apiv1.OpenIDConfiguration{
		Issuer:                           s.issuer,
		JWKSURI:                          s.issuer + "/.well-known/jwks.json",
		TokenEndpoint:                    s.issuer + "/v1/machines/{machineId}/token",
		ResponseTypesSupported:           []string{"token"},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: []string{"ES256"},
		ClaimsSupported:                  []string{"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "tid", "oid", "xms_mirid"},
	})
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.keys.jwks())
}

// etagOf is the strong ETag of a desired-state document.
func etagOf(doc []byte) string {
	h := sha256.Sum256(doc)
	return `"` + hex.EncodeToString(h[:12]) + `"`
}

// emptyDesiredState is the document every new machine starts with.
func emptyDesiredState() []byte {
	b, _ := json.Marshal(apiv1.DesiredState{Extensions: []apiv1.ExtensionSpec{}, GuestConfigurationAssignments: []apiv1.GuestConfigurationAssignment{}})
	return b
}
