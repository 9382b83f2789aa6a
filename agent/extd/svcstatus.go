package extd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/saferead"
	"github.com/arcagent/arcagent/internal/strictjson"
)

// ServiceFile is the extension manager's own status, beside its state:
// written by the daemon after every pass, read by `arcagent show`.
const ServiceFile = "service.json"

// Service states.
const (
	ServiceRunning  = "running"
	ServiceDegraded = "degraded"
	ServiceStopped  = "stopped"
)

// ServiceStatus is service.json.
type ServiceStatus struct {
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"startedAt"`
	LastPass  time.Time `json:"lastPass,omitzero"`
	State     string    `json:"state"` // running or degraded
	Message   string    `json:"message,omitempty"`
	Pending   bool      `json:"statusPending,omitempty"`
}

func writeServiceStatus(l layout.Layout, s ServiceStatus) error {
	if err := ensureDir(l.ExtMgrDir()); err != nil {
		return err
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(l.ExtMgrDir(), ServiceFile), append(data, '\n'), atomicfile.WriteOptions{Mode: 0o600})
}

// ReadServiceStatus reads service.json and says whether the daemon that
// wrote it still runs (State becomes "stopped" when not). A missing file
// is fs.ErrNotExist.
func ReadServiceStatus(l layout.Layout) (ServiceStatus, error) {
	var s ServiceStatus
	data, err := saferead.File(filepath.Join(l.ExtMgrDir(), ServiceFile), 64<<10)
	if err != nil {
		return s, err
	}
	if err := strictjson.Unmarshal(data, &s); err != nil {
		return s, err
	}
	if s.PID <= 0 || !alive(s.PID) {
		s.State = ServiceStopped
	}
	return s, nil
}

// removeServiceStatus removes service.json when the daemon stops.
func removeServiceStatus(l layout.Layout) {
	_ = os.Remove(filepath.Join(l.ExtMgrDir(), ServiceFile))
}
