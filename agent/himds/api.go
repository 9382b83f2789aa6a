package himds

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// DefaultListen is the local API's address.
const DefaultListen = "127.0.0.1:40342"

// apiVersions are the IMDS/HIMDS api-version values the local API accepts.
var apiVersions = map[string]bool{}

func init() {
	for _, v := range []string{
		"2017-03-01", "2017-04-02", "2017-08-01", "2017-10-01", "2017-12-01", "2018-02-01", "2018-04-02",
		"2018-10-01", "2019-02-01", "2019-03-11", "2019-04-30", "2019-06-01", "2019-06-04", "2019-08-01",
		"2019-08-15", "2019-11-01", "2020-06-01", "2020-07-15", "2020-09-01", "2020-10-01", "2020-12-01",
		"2021-01-01", "2021-02-01", "2021-03-01", "2021-05-01", "2021-10-01", "2021-11-01", "2021-11-15",
		"2021-12-13", "2023-07-01",
	} {
		apiVersions[v] = true
	}
}

// apiError writes an IMDS-style error body.
func apiError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
		Desc  string `json:"error_description"`
	}{code, desc})
	_, _ = w.Write(append(b, '\n'))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	b, _ := json.Marshal(v)
	_, _ = w.Write(append(b, '\n'))
}

// proxyHeaders mark a request relayed by a proxy: a local proxy must not
// turn HIMDS into a token service for remote clients.
var proxyHeaders = []string{"X-Forwarded-For", "Forwarded", "Via"}

// proxyHeader returns the first proxy header present in h, or "".
func proxyHeader(h http.Header) string {
	for _, k := range proxyHeaders {
		if _, ok := h[k]; ok {
			return k
		}
	}
	return ""
}

// Handler is the local REST API of docs/himds.md. Every request must come
// from a loopback address, carry `Metadata: true` and none of the proxy
// headers X-Forwarded-For, Forwarded and Via.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metadata/instance", s.handleInstance)
	mux.HandleFunc("/metadata/instance/", s.handleInstance)
	mux.HandleFunc("/agentstatus", s.handleAgentStatus)
	mux.HandleFunc("/metadata/identity/oauth2/token", s.handleToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fromLoopback(r.RemoteAddr) {
			apiError(w, http.StatusForbidden, "forbidden", "HIMDS answers loopback clients only")
			return
		}
		if !loopbackHost(r.Host) {
			// A page whose name was rebound to 127.0.0.1 (DNS rebinding)
			// sends its own name here; only loopback names are ours.
			apiError(w, http.StatusForbidden, "forbidden", "HIMDS answers requests for localhost, 127.0.0.1 or [::1] only")
			return
		}
		if h := proxyHeader(r.Header); h != "" {
			apiError(w, http.StatusBadRequest, "invalid_request", "requests through a proxy ("+h+") are refused")
			return
		}
		if !strings.EqualFold(r.Header.Get("Metadata"), "true") {
			apiError(w, http.StatusBadRequest, "invalid_request", "Required metadata header not specified: send the header Metadata: true")
			return
		}
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			apiError(w, http.StatusMethodNotAllowed, "invalid_request", "only GET is allowed")
			return
		}
		if !s.waitReady(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names this machine's loopback
// interface: localhost or a loopback IP, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func fromLoopback(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		host, _, err := net.SplitHostPort(remote)
		if err != nil {
			return false
		}
		a, err := netip.ParseAddr(host)
		return err == nil && a.Unmap().IsLoopback()
	}
	return ap.Addr().Unmap().IsLoopback()
}

func checkAPIVersion(w http.ResponseWriter, q map[string][]string) bool {
	v := q["api-version"]
	if len(v) == 0 || v[0] == "" {
		apiError(w, http.StatusBadRequest, "invalid_request", "api-version is required, e.g. api-version=2020-06-01")
		return false
	}
	if !apiVersions[v[0]] {
		apiError(w, http.StatusBadRequest, "invalid_request", "api-version "+strconv.Quote(v[0])+" is not supported; use 2020-06-01 or another IMDS version")
		return false
	}
	return true
}

// Compute is the `compute` section of /metadata/instance.
type Compute struct {
	Name              string `json:"name"`
	ResourceID        string `json:"resourceId"`
	SubscriptionID    string `json:"subscriptionId"`
	ResourceGroupName string `json:"resourceGroupName"`
	Location          string `json:"location"`
	Tags              string `json:"tags"`
	TagsList          []Tag  `json:"tagsList"`
	OSType            string `json:"osType"`
	VMID              string `json:"vmId"`
	TenantID          string `json:"tenantId"`
	AzEnvironment     string `json:"azEnvironment"`
}

// Tag is one entry of compute.tagsList.
type Tag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (s *Service) handleInstance(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !checkAPIVersion(w, q) {
		return
	}
	s.mu.RLock()
	cfg, self := s.cfg, s.self
	s.mu.RUnlock()
	if cfg == nil {
		apiError(w, http.StatusNotFound, "not_connected", "this machine is not connected: run `sudo arcagent connect`")
		return
	}
	c := Compute{Name: cfg.Name, ResourceID: cfg.ResourceID, SubscriptionID: cfg.SubscriptionID, ResourceGroupName: cfg.ResourceGroup,
		Location: cfg.Location, OSType: cfg.OSType, VMID: cfg.VMID, TenantID: cfg.TenantID, AzEnvironment: "arcagent"}
	tags := cfg.Tags
	if self != nil {
		c.Name, c.Location, tags = self.Name, self.Location, self.Tags
	}
	c.TagsList = []Tag{}
	var parts []string
	for _, k := range sortedTagKeys(tags) {
		c.TagsList = append(c.TagsList, Tag{k, tags[k]})
		parts = append(parts, k+":"+tags[k])
	}
	c.Tags = strings.Join(parts, ";")
	writeJSON(w, map[string]any{"compute": c, "network": map[string]any{"interface": []any{}}})
}

// AgentStatus answers /agentstatus.
type AgentStatus struct {
	Status        string     `json:"status"`
	MachineID     string     `json:"machineId,omitempty"`
	ResourceID    string     `json:"resourceId,omitempty"`
	Server        string     `json:"server,omitempty"`
	AgentVersion  string     `json:"agentVersion"`
	LastHeartbeat *time.Time `json:"lastHeartbeat,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	Remedy        string     `json:"remedy,omitempty"`
}

func (s *Service) agentStatus() AgentStatus {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := AgentStatus{Status: s.status, AgentVersion: s.o.AgentVersion, LastError: s.lastErr}
	if s.cfg != nil {
		a.MachineID, a.ResourceID, a.Server = s.cfg.MachineID, s.cfg.ResourceID, s.cfg.Server
	}
	if !s.lastHB.IsZero() {
		t := s.lastHB.UTC()
		a.LastHeartbeat = &t
	}
	a.Remedy = remedyFor(s.status)
	return a
}

// remedyFor says what to do about a status.
func remedyFor(status string) string {
	switch status {
	case StatusExpired:
		return "the identity expired: run `sudo arcagent disconnect --force-local-only`, then `sudo arcagent connect` with a fresh onboarding credential"
	case StatusDisconnected:
		return "the control plane cannot be reached; HIMDS retries on its own and serves cached metadata and tokens meanwhile"
	case StatusNotConnected:
		return "run `sudo arcagent connect --server URL --onboarding-token T --resource-group RG`"
	}
	return ""
}

func (s *Service) handleAgentStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.agentStatus())
}

// tokenReply is what MSAL and the Azure SDKs parse.
type tokenReply struct {
	AccessToken string `json:"access_token"`
	ExpiresOn   string `json:"expires_on"`
	ExpiresIn   string `json:"expires_in"`
	NotBefore   string `json:"not_before,omitempty"`
	TokenType   string `json:"token_type"`
	Resource    string `json:"resource"`
}

func (s *Service) handleToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !checkAPIVersion(w, q) {
		return
	}
	resource := q.Get("resource")
	if resource == "" || len(resource) > 1024 {
		apiError(w, http.StatusBadRequest, "invalid_request", "resource is required: the audience of the token, e.g. resource=https://management.azure.com/")
		return
	}
	for _, k := range []string{"client_id", "object_id", "msi_res_id", "mi_res_id", "principal_id"} {
		if q.Has(k) {
			apiError(w, http.StatusBadRequest, "invalid_request", "user-assigned identities are not supported: this machine has only its system-assigned identity (drop "+k+")")
			return
		}
	}
	s.mu.RLock()
	m, status := s.machine, s.status
	s.mu.RUnlock()
	if m == nil {
		apiError(w, http.StatusNotFound, "not_connected", "this machine has no identity: run `sudo arcagent connect`")
		return
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		path, err := s.ch.issue(s.peerOf(r))
		if err != nil {
			s.log.Error("cannot create a challenge secret file", "err", err)
			apiError(w, http.StatusInternalServerError, "server_error", "HIMDS cannot create the challenge file; see its log")
			return
		}
		w.Header().Set("WWW-Authenticate", "Basic realm="+path)
		apiError(w, http.StatusUnauthorized, "unauthorized", "read the file named in WWW-Authenticate and send its contents as Authorization: Basic <secret>")
		return
	}
	scheme, secret, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Basic") || s.ch.redeem(secret) != nil {
		apiError(w, http.StatusUnauthorized, "unauthorized", "the secret is wrong, already used or expired: request again without Authorization for a new challenge")
		return
	}
	if status == StatusExpired {
		apiError(w, http.StatusForbidden, "identity_expired", "the machine identity has expired (no heartbeat for 45 days): run `sudo arcagent disconnect --force-local-only`, then `sudo arcagent connect` with a fresh onboarding credential")
		return
	}
	var tok *cachedToken
	var ok bool
	if q.Get("bypass_cache") != "true" {
		tok, ok = s.cache.get(resource)
	}
	if !ok {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		var err error
		tok, err = s.cache.fetch(ctx, m, resource)
		cancel()
		if err != nil {
			if t, valid := s.cache.valid(resource); valid && unavailable(err) {
				tok = t // unreachable: a valid cached token is still good
			} else {
				s.tokenError(w, err)
				return
			}
		}
	}
	now := s.now()
	in := int64(tok.expires.Sub(now) / time.Second)
	writeJSON(w, tokenReply{AccessToken: tok.resp.AccessToken, ExpiresOn: tok.resp.ExpiresOn, ExpiresIn: strconv.FormatInt(in, 10),
		NotBefore: tok.resp.NotBefore, TokenType: tok.resp.TokenType, Resource: tok.resp.Resource})
}

func (s *Service) tokenError(w http.ResponseWriter, err error) {
	s.log.Warn("the control plane refused or did not answer a token request", "err", err)
	switch {
	case cloud.CodeOf(err) == apiv1.CodeMachineExpired:
		s.mu.Lock()
		s.status = StatusExpired
		s.mu.Unlock()
		apiError(w, http.StatusForbidden, "identity_expired", "the machine identity has expired: run `sudo arcagent disconnect --force-local-only`, then `sudo arcagent connect` with a fresh onboarding credential")
	case cloud.CodeOf(err) == apiv1.CodeBadRequest:
		apiError(w, http.StatusBadRequest, "invalid_resource", err.Error())
	case !unavailable(err):
		apiError(w, http.StatusBadGateway, "server_error", "the control plane refused the token request: "+err.Error())
	default:
		apiError(w, http.StatusServiceUnavailable, "service_unavailable", string(CodeServerUnreachable)+": the control plane cannot be reached and no valid token is cached; HIMDS keeps retrying")
	}
}

// OSType is the instance metadata osType.
func OSType() string {
	if runtime.GOOS == "windows" {
		return "Windows"
	}
	return "Linux"
}

// unavailable reports whether err means the control plane could not
// answer (network failure or a 5xx), as opposed to a refusal.
func unavailable(err error) bool {
	st := cloud.StatusOf(err)
	return st == 0 || st >= 500
}
