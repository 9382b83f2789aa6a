package himds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
)

// Info is what `arcagent show` prints.
type Info struct {
	Name           string            `json:"name"`
	MachineID      string            `json:"machineId"`
	ResourceID     string            `json:"resourceId"`
	SubscriptionID string            `json:"subscriptionId"`
	ResourceGroup  string            `json:"resourceGroup"`
	TenantID       string            `json:"tenantId"`
	Location       string            `json:"location"`
	Scope          string            `json:"scope"`
	Server         string            `json:"server"`
	AgentVersion   string            `json:"agentVersion"`
	Status         string            `json:"status"`
	LastHeartbeat  *time.Time        `json:"lastHeartbeat"`
	LastError      string            `json:"lastError,omitempty"`
	Remedy         string            `json:"remedy,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	Services       []ServiceState    `json:"services"`
	// Extensions is filled by `arcagent show` from the extension
	// manager's state (root only), not by HIMDS.
	Extensions  []ExtensionState `json:"extensions,omitempty"`
	ProxyURL    string           `json:"proxyUrl"`
	ProxyBypass []string         `json:"proxyBypass"`
	Listen      string           `json:"localApi,omitempty"`
	// Source says where the answer came from: "himds" (the running
	// service) or "files" (the service was not reachable).
	Source string `json:"source"`
}

// ServiceState is one agent service and its state.
type ServiceState struct {
	Name  string `json:"name"`
	User  string `json:"user"`
	State string `json:"state"`
}

// ExtensionState is one extension as `arcagent show` lists it.
type ExtensionState struct {
	Name     string `json:"name"`
	Version  string `json:"version,omitempty"`
	State    string `json:"state"`
	Message  string `json:"message,omitempty"`
	Degraded string `json:"degraded,omitempty"`
}

// Info reports the running service's view.
func (s *Service) Info() Info {
	a := s.agentStatus()
	s.mu.RLock()
	cfg, settings, self := s.cfg, s.settings, s.self
	s.mu.RUnlock()
	in := Info{Status: a.Status, AgentVersion: a.AgentVersion, LastHeartbeat: a.LastHeartbeat, LastError: a.LastError, Remedy: a.Remedy,
		Listen: s.o.Listen, Source: "himds"}
	fillFromConfig(&in, cfg, settings)
	if self != nil {
		in.Name, in.Location, in.Tags = self.Name, self.Location, self.Tags
	}
	in.Services = ServiceStates(s.o.Layout, true)
	return in
}

func fillFromConfig(in *Info, cfg *AgentConfig, settings *config.Settings) {
	if cfg != nil {
		in.Name, in.MachineID, in.ResourceID, in.SubscriptionID = cfg.Name, cfg.MachineID, cfg.ResourceID, cfg.SubscriptionID
		in.ResourceGroup, in.TenantID, in.Location, in.Server, in.Tags = cfg.ResourceGroup, cfg.TenantID, cfg.Location, cfg.Server, cfg.Tags
		in.Scope = "/subscriptions/" + cfg.SubscriptionID + "/resourceGroups/" + cfg.ResourceGroup
	}
	if settings != nil {
		in.ProxyURL = settings.String(config.ProxyURL)
		in.ProxyBypass = settings.List(config.ProxyBypass)
	}
	if in.ProxyBypass == nil {
		in.ProxyBypass = []string{}
	}
}

// ServiceStates lists the four services. himdsRunning is whether HIMDS
// answered; the others are "installed" when their unit file exists.
func ServiceStates(l layout.Layout, himdsRunning bool) []ServiceState {
	var out []ServiceState
	for _, sv := range layout.Services() {
		st := "not installed"
		if _, err := os.Stat(l.Path(layout.UnitDir + "/" + sv.Name + ".service")); err == nil {
			st = "installed"
		}
		if sv.Name == "himdsd" {
			st = "stopped or unreachable"
			if himdsRunning {
				st = "running"
			}
		}
		out = append(out, ServiceState{Name: sv.Name, User: sv.User, State: st})
	}
	return out
}

// InfoFromFiles builds the show view from the files when HIMDS does not
// answer: agentconfig.json, run/status.json and localconfig.json.
func InfoFromFiles(l layout.Layout, now time.Time) (Info, error) {
	in := Info{Source: "files", Status: StatusNotConnected}
	cfg, err := LoadAgentConfig(l)
	if errors.Is(err, fs.ErrPermission) {
		// show needs no root: say what cannot be seen instead of failing.
		in.Status, in.Services, in.ProxyBypass = "Unknown", ServiceStates(l, false), []string{}
		in.Remedy = "agentconfig.json and the admin socket are readable by root and group himds only: run `sudo arcagent show`, or ask for membership of group himds"
		return in, nil
	}
	if err != nil {
		return in, err
	}
	settings, _, _ := config.NewStore(l).Load()
	fillFromConfig(&in, cfg, settings)
	in.Services = ServiceStates(l, false)
	if cfg == nil {
		return in, nil
	}
	in.AgentVersion = cfg.AgentVersion
	in.LastHeartbeat = cfg.LastHeartbeat
	if st, _ := LoadStatus(l); st != nil && st.MachineID == cfg.MachineID {
		if st.LastHeartbeat != nil && (in.LastHeartbeat == nil || st.LastHeartbeat.After(*in.LastHeartbeat)) {
			in.LastHeartbeat = st.LastHeartbeat
		}
		in.LastError = st.LastError
	}
	var last time.Time
	if in.LastHeartbeat != nil {
		last = *in.LastHeartbeat
	}
	in.Status = StatusAt(last, now)
	in.Remedy = remedyFor(in.Status)
	if in.Status == StatusConnected {
		in.Remedy = "HIMDS is not running: start it (`sudo systemctl start himdsd`) or heartbeats stop and the machine becomes Disconnected"
	}
	return in, nil
}

// AdminHandler is the unix-socket admin API: GET /v1/info (show) and
// POST /v1/reload (connect tells the running service). The socket is
// himds:himds 0660; reload also needs the caller to be root or the
// service's own user.
func (s *Service) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) {
		if s.waitReady(w, r) {
			writeJSON(w, s.Info())
		}
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		if uid, ok := r.Context().Value(peerUIDKey{}).(int); ok && uid != 0 && uid != os.Geteuid() {
			apiError(w, http.StatusForbidden, "forbidden", "only root or the himds user may reload HIMDS")
			return
		}
		if err := s.Reload(r.Context()); err != nil {
			apiError(w, http.StatusInternalServerError, "reload_failed", err.Error())
			return
		}
		s.Kick()
		writeJSON(w, s.Info())
	})
	return mux
}

type peerUIDKey struct{}

// AdminConnContext records the peer's uid (SO_PEERCRED) of a unix-socket
// connection; use it as http.Server.ConnContext.
func AdminConnContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	uid, ok := socketPeerUID(uc)
	if !ok {
		return ctx
	}
	return context.WithValue(ctx, peerUIDKey{}, uid)
}

// AdminClient talks to HIMDS over its admin socket.
type AdminClient struct {
	hc *http.Client
}

// NewAdminClient returns a client for the socket at path.
func NewAdminClient(path string) *AdminClient {
	return &AdminClient{hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}}
}

func (c *AdminClient) do(ctx context.Context, method, path string) (Info, error) {
	var in Info
	req, err := http.NewRequestWithContext(ctx, method, "http://himds"+path, nil)
	if err != nil {
		return in, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return in, errcode.Wrap(CodeDaemonUnreachable, err, "reach HIMDS")
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return in, errcode.Wrap(CodeDaemonUnreachable, err, "read HIMDS's answer")
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Desc string `json:"error_description"`
		}
		_ = json.Unmarshal(b, &e)
		return in, errcode.New(CodeDaemonUnreachable, "HIMDS answered %d: %s", resp.StatusCode, e.Desc)
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("decode HIMDS's answer: %w", err)
	}
	return in, nil
}

// Info fetches the running service's view.
func (c *AdminClient) Info(ctx context.Context) (Info, error) {
	return c.do(ctx, http.MethodGet, "/v1/info")
}

// Reload asks the running service to reload its registration.
func (c *AdminClient) Reload(ctx context.Context) (Info, error) {
	return c.do(ctx, http.MethodPost, "/v1/reload")
}

func sortedTagKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
