// Package himds is the metadata and identity service (HIMDS) of a connected
// machine: the registration state in agentconfig.json, the heartbeat loop,
// the local REST API on 127.0.0.1:40342 (instance metadata, agent status,
// and managed-identity tokens through the challenge flow that MSAL and the
// Azure SDKs implement), and the unix-socket admin API that `arcagent show`
// reads. Process lifecycle and privilege drop live in agent/daemon.
package himds

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

// Local statuses. Connected, Disconnected and Expired match the control
// plane's; NotConnected means the machine was never connected (or was
// disconnected with `arcagent disconnect`).
const (
	StatusConnected    = "Connected"
	StatusDisconnected = "Disconnected"
	StatusExpired      = "Expired"
	StatusNotConnected = "NotConnected"
)

// Status thresholds (docs/himds.md).
const (
	DefaultHeartbeatInterval = 5 * time.Minute
)

// AgentConfig is agentconfig.json: the registration written by
// `arcagent connect` (root:himds 0640). The audit reads machineId,
// resourceId, server, agentVersion, status and lastHeartbeat.
type AgentConfig struct {
	MachineID         string            `json:"machineId"`
	ResourceID        string            `json:"resourceId"`
	Name              string            `json:"name"`
	SubscriptionID    string            `json:"subscriptionId"`
	ResourceGroup     string            `json:"resourceGroup"`
	TenantID          string            `json:"tenantId"`
	Location          string            `json:"location"`
	Tags              map[string]string `json:"tags,omitempty"`
	Server            string            `json:"server"`
	Audience          string            `json:"audience"`
	Issuer            string            `json:"issuer"`
	AgentVersion      string            `json:"agentVersion"`
	Status            string            `json:"status"`
	LastHeartbeat     *time.Time        `json:"lastHeartbeat,omitempty"`
	ConnectedAt       time.Time         `json:"connectedAt"`
	HeartbeatSeconds  int               `json:"heartbeatIntervalSeconds,omitempty"`
	MachineKeyPath    string            `json:"machineKeyPath"`
	ServerCAPath      string            `json:"serverCAPath,omitempty"`
	OSType            string            `json:"osType"`
	VMID              string            `json:"vmId,omitempty"`
	ScopeDescription  string            `json:"scope"`
	ConfigFileVersion int               `json:"configVersion"`
}

// LoadAgentConfig reads agentconfig.json. A missing file returns
// (nil, nil): the machine is not connected.
func LoadAgentConfig(l layout.Layout) (*AgentConfig, error) {
	data, err := os.ReadFile(l.AgentConfig())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case errors.Is(err, fs.ErrPermission):
		return nil, errcode.Wrap(CodeStateUnreadable, err, "cannot read %s (it is readable by root and group himds only)", l.AgentConfig())
	case err != nil:
		return nil, errcode.Wrap(CodeStateUnreadable, err, "cannot read %s", l.AgentConfig())
	}
	var c AgentConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, errcode.Wrap(CodeStateUnreadable, err, "%s is not valid JSON", l.AgentConfig())
	}
	if c.MachineID == "" || c.Server == "" {
		return nil, errcode.New(CodeStateUnreadable, "%s names no machine or server", l.AgentConfig())
	}
	return &c, nil
}

// WriteAgentConfig writes agentconfig.json atomically, root:himds 0640.
func WriteAgentConfig(l layout.Layout, c *AgentConfig) error {
	c.ConfigFileVersion = 1
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode agentconfig.json: %w", err)
	}
	e, _ := layout.Lookup("agentconfig")
	if err := atomicfile.WriteFile(l.AgentConfig(), append(b, '\n'), atomicfile.WriteOptions{Mode: e.Mode, Owner: atomicfile.Owner{User: e.Owner, Group: e.Group}}); err != nil {
		return errcode.Wrap(errcode.WriteFailed, err, "write the registration")
	}
	return nil
}

// StatusFile is what HIMDS records after every heartbeat attempt in
// run/status.json (himds:himds 0640), because it cannot rewrite the
// root-owned agentconfig.json. `arcagent show` and the audit read it.
type StatusFile struct {
	MachineID     string     `json:"machineId"`
	Status        string     `json:"status"`
	LastHeartbeat *time.Time `json:"lastHeartbeat,omitempty"`
	LastAttempt   *time.Time `json:"lastAttempt,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	AgentVersion  string     `json:"agentVersion,omitempty"`
	UpdatedAt     time.Time  `json:"updatedAt"`
}

// LoadStatus reads run/status.json; a missing file returns (nil, nil).
func LoadStatus(l layout.Layout) (*StatusFile, error) {
	data, err := os.ReadFile(l.HIMDSStatus())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", l.HIMDSStatus(), err)
	}
	var s StatusFile
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", l.HIMDSStatus(), err)
	}
	return &s, nil
}

// WriteStatus writes run/status.json atomically, himds:himds 0640.
func WriteStatus(l layout.Layout, s *StatusFile) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode status.json: %w", err)
	}
	return atomicfile.WriteFile(l.HIMDSStatus(), append(b, '\n'), atomicfile.WriteOptions{Mode: 0o640, Owner: atomicfile.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS}})
}

// StatusAt computes the status from the last successful heartbeat exactly
// as the control plane does (apiv1.StatusAt); no heartbeat yet is
// Disconnected.
func StatusAt(last, now time.Time) string {
	if last.IsZero() {
		return StatusDisconnected
	}
	return apiv1.StatusAt(last, now)
}
