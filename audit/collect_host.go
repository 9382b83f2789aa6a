package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/internal/saferead"
)

func (c *collector) collectHost() {
	h := &c.facts.Host
	h.Available = true
	if c.facts.Target.Live {
		if n, err := os.Hostname(); err == nil {
			h.Name = n
		}
		h.Kernel = kernelRelease()
	} else if b, err := c.read("/etc/hostname", smallLimit); err == nil {
		h.Name = strings.TrimSpace(string(b))
	}
	if h.Name == "" {
		h.Name = filepath.Base(c.l.Root())
	}
	if b, err := c.read("/etc/machine-id", smallLimit); err == nil {
		h.MachineID = strings.TrimSpace(string(b))
	} else if !errors.Is(err, fs.ErrNotExist) {
		c.errorf("host", "/etc/machine-id", "%v", err)
	}
	h.OS = c.osRelease()
	h.HimdsMembers, h.HimdsGroup = c.acct.groupMembers(layout.GroupHIMDS)
	switch {
	case c.acctErr != nil:
		h.Available, h.Error = false, true
		h.Reason = "the target's users and groups cannot be read: " + c.acctErr.Error()
	case !h.HimdsGroup:
		h.Reason = "group himds does not exist on this target"
	}
}

// smallLimit bounds one-line files (hostname, machine-id, VERSION).
const smallLimit = 64 << 10

// osRelease reads PRETTY_NAME from /etc/os-release or, as os-release(5)
// says when that is missing (or, here, a link, which is not followed), from
// /usr/lib/os-release.
func (c *collector) osRelease() string {
	b, err := c.read("/etc/os-release", smallLimit)
	if err != nil {
		if b, err = c.read("/usr/lib/os-release", smallLimit); err != nil {
			return ""
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

// agentConfigFile is the part of agentconfig.json that audit reads.
type agentConfigFile struct {
	MachineID     string     `json:"machineId"`
	ResourceID    string     `json:"resourceId"`
	Server        string     `json:"server"`
	AgentVersion  string     `json:"agentVersion"`
	Status        string     `json:"status"`
	LastHeartbeat *time.Time `json:"lastHeartbeat"`
}

// versionFile is written beside the binary by `make install` and packages.
const versionFile = layout.BinDir + "/VERSION"

func (c *collector) collectAgent() {
	a := &c.facts.Agent
	a.Available = true
	a.Binary = layout.Rel(layout.Binary)
	a.HeartbeatAgeMinutes = -1
	a.Installed = c.exists(layout.Binary) || c.exists(layout.LocalConfig) || c.exists(layout.AgentConfig)
	if b, err := c.read(versionFile, smallLimit); err == nil {
		a.Version = strings.TrimSpace(string(b))
	}
	data, err := c.read(layout.AgentConfig, saferead.ConfigLimit)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		a.Status = "NotConnected"
		return
	case err != nil:
		c.errorf("agent", layout.AgentConfig, "cannot read: %v", err)
		a.Available, a.Error = false, true
		a.Reason = "agentconfig.json cannot be read: " + err.Error()
		return
	}
	var ac agentConfigFile
	if err := json.Unmarshal(data, &ac); err != nil {
		c.errorf("agent", layout.AgentConfig, "not valid JSON: %v", err)
		a.Available, a.Error = false, true
		a.Reason = "agentconfig.json is not valid JSON"
		return
	}
	a.Connected = ac.ResourceID != ""
	a.MachineID, a.ResourceID, a.Server, a.Status = ac.MachineID, ac.ResourceID, ac.Server, ac.Status
	if ac.AgentVersion != "" {
		a.Version = ac.AgentVersion
	}
	if a.Status == "" {
		a.Status = "Connected"
		if !a.Connected {
			a.Status = "NotConnected"
		}
	}
	// HIMDS runs as himds and cannot rewrite the root-owned
	// agentconfig.json: it records each heartbeat in run/status.json.
	if st, ok := c.himdsStatus(ac.MachineID); ok && st.LastHeartbeat != nil &&
		(ac.LastHeartbeat == nil || st.LastHeartbeat.After(*ac.LastHeartbeat)) {
		ac.LastHeartbeat = st.LastHeartbeat
		if st.Status != "" {
			a.Status = st.Status
		}
	}
	if ac.LastHeartbeat != nil {
		a.LastHeartbeat = ac.LastHeartbeat
		a.HeartbeatAgeMinutes = int(c.opts.Now.Sub(*ac.LastHeartbeat).Minutes())
	}
}

// himdsStatusFile is the part of run/status.json that audit reads.
type himdsStatusFile struct {
	MachineID     string     `json:"machineId"`
	Status        string     `json:"status"`
	LastHeartbeat *time.Time `json:"lastHeartbeat"`
}

// himdsStatus reads HIMDS's status file for machineID; a missing,
// unreadable or foreign file is ignored (agentconfig.json then stands).
func (c *collector) himdsStatus(machineID string) (himdsStatusFile, bool) {
	var st himdsStatusFile
	data, err := c.read(layout.HIMDSStatus, saferead.ConfigLimit)
	if err != nil || json.Unmarshal(data, &st) != nil || machineID == "" || st.MachineID != machineID {
		return st, false
	}
	return st, true
}

// collectConfig reads localconfig.json (source "file"), a planned file
// ("planned") or nothing ("default"). A corrupt file is a collector error
// and the config section is unavailable: rules then say error, not fail.
func (c *collector) collectConfig(path, source string) error {
	cf := &c.facts.Config
	cf.Source = source
	cf.Path = layout.Rel(layout.LocalConfig)
	cf.Lines = map[string]int{}
	cf.Set = []string{}
	cf.UnknownKeys = []string{}
	s := config.NewSettings()
	if source != "default" {
		var data []byte
		var err error
		if source == "planned" {
			data, err = readPlanned(path)
		} else {
			data, err = c.readLocalConfig()
		}
		switch {
		case errors.Is(err, fs.ErrNotExist) && source == "file":
			cf.Source = "default"
		case err != nil:
			if source == "planned" {
				return &TargetError{What: "--config " + path, Err: err}
			}
			c.errorf("config", layout.LocalConfig, "cannot read: %v", err)
			cf.Reason, cf.Error = "localconfig.json cannot be read: "+err.Error(), true
			return nil
		default:
			parsed, _, err := config.ParseFile(path, data)
			if err != nil {
				if source == "planned" {
					return &TargetError{What: "--config " + path, Err: err}
				}
				c.errorf("config", layout.LocalConfig, "%v", err)
				cf.Reason, cf.Error = "localconfig.json is not valid: "+err.Error(), true
				return nil
			}
			s = parsed
			cf.Lines = keyLines(data)
			cf.UnknownKeys = s.UnknownKeys()
		}
	}
	cf.Available = true
	c.settings = s
	cf.Values = map[string]any{}
	cf.Effective = map[string]any{}
	for _, st := range s.All() {
		cf.Values[st.Name] = st.Configured
		cf.Effective[st.Name] = st.Effective
		if st.IsSet {
			cf.Set = append(cf.Set, st.Name)
		}
	}
	cf.Mode = s.Mode()
	cf.ProxyHasCredentials = s.ProxyHasCredentials()
	cf.ScriptExtensionsAllowed = scriptExtensionsAllowed(s, c.facts.Target.OS == "windows")
	return nil
}

// readLocalConfig reads the target's localconfig.json: through the root
// (see read) or, in the Windows layout, inside its own folder (a link or
// anything but a regular file refused).
func (c *collector) readLocalConfig() ([]byte, error) {
	if !c.l.IsWindows() {
		return c.read(layout.LocalConfig, saferead.ConfigLimit)
	}
	p := c.l.LocalConfig()
	root, err := saferead.Open(filepath.Dir(p))
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.ReadFile(filepath.Base(p), saferead.ConfigLimit)
}

// readPlanned reads a planned localconfig.json named on the command line:
// a link the user names is theirs to follow, but the file itself must be a
// regular file within saferead.ConfigLimit (a FIFO or /dev/zero is refused).
func readPlanned(path string) ([]byte, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return nil, err
	}
	root, err := saferead.Open(filepath.Dir(real))
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.ReadFile(filepath.Base(real), saferead.ConfigLimit)
}

// keyLines finds the line of each top-level key of a JSON object, so that
// findings point at the setting itself.
func keyLines(data []byte) map[string]int {
	out := map[string]int{}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return out
	}
	for dec.More() {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		key, ok := tok.(string)
		if !ok {
			return out
		}
		// The key starts after the whitespace that follows offset off.
		rest := data[off:]
		skip := len(rest) - len(bytes.TrimLeft(rest, " \t\r\n,"))
		line := 1 + bytes.Count(data[:int(off)+skip], []byte("\n"))
		if p, ok := config.Lookup(key); ok {
			out[p.Name] = line
		} else if _, seen := out[key]; !seen {
			out[key] = line // an unknown key, for its warning
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out
		}
	}
	return out
}
