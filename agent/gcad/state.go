package gcad

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/arcagent/arcagent/agent/guestconfig"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/saferead"
	"github.com/arcagent/arcagent/internal/strictjson"
)

// StateFile is gcad's state under gc_agent.
const StateFile = "state.json"

// maxStateSize and maxReportSize bound what is read back.
const (
	maxStateSize  = 16 << 20
	maxReportSize = 16 << 20
)

// stateVersion is the format of state.json.
const stateVersion = 1

// nameRE is what an assignment name may be: it names a report file and a
// backup directory.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`) })

// State is gc_agent/state.json.
type State struct {
	Version     int    `json:"version"`
	DesiredETag string `json:"desiredStateETag,omitempty"`
	// Desired are the assignments of the last desired state (nil: never
	// polled).
	Desired     []apiv1.GuestConfigurationAssignment `json:"desired"`
	Assignments []Entry                              `json:"assignments"`
	// StatusPending says a status report is still to be sent.
	StatusPending bool `json:"statusPending,omitempty"`
}

// Entry is what gcad keeps of one assignment.
type Entry struct {
	Name    string `json:"name"`
	Policy  string `json:"policy"`
	Version string `json:"version"`
	Mode    string `json:"mode"`
	// Evaluated is the assignment (fingerprint) of the last evaluation;
	// a different one is evaluated at once.
	Evaluated string `json:"evaluated,omitempty"`
	// Applied is the assignment (fingerprint) whose sets ran to the end
	// (ApplyAndMonitor applies once per fingerprint), AppliedAt when.
	Applied   string    `json:"applied,omitempty"`
	AppliedAt time.Time `json:"appliedAt,omitzero"`
	// LastEvaluation is when the last pass of this assignment ended.
	LastEvaluation time.Time `json:"lastEvaluation,omitzero"`
	// Status is the last reported status (with every resource).
	Status apiv1.GuestConfigurationStatus `json:"status"`
}

// NonCompliant counts the resources of the last status that are not
// compliant (NonCompliant, Error or Skipped; NotApplicable counts as
// compliant).
func (e *Entry) NonCompliant() int {
	n := 0
	for _, r := range e.Status.Resources {
		if !apiv1.GuestConfigResourceCompliant(r.Compliance) {
			n++
		}
	}
	return n
}

// Lookup returns the entry of name, or nil.
func (s *State) Lookup(name string) *Entry {
	for i := range s.Assignments {
		if s.Assignments[i].Name == name {
			return &s.Assignments[i]
		}
	}
	return nil
}

// StatePath is gc_agent/state.json.
func StatePath(l layout.Layout) string { return filepath.Join(l.GCAgentDir(), StateFile) }

// ReportPath is the last report of an assignment.
func ReportPath(l layout.Layout, name string) string {
	return filepath.Join(l.GCReportsDir(), name+".json")
}

// LoadState reads the state; a missing file is an empty state.
func LoadState(l layout.Layout) (*State, error) {
	data, err := saferead.File(StatePath(l), maxStateSize)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, errcode.Wrap(guestconfig.CodeState, err, "read guest configuration's state")
	}
	var s State
	if err := strictjson.Unmarshal(data, &s); err != nil {
		return nil, errcode.Wrap(guestconfig.CodeState, err, "guest configuration's state %s is malformed: move it away and gcad starts afresh (every assignment is evaluated again)", StatePath(l))
	}
	if s.Version != stateVersion {
		return nil, errcode.New(guestconfig.CodeState, "guest configuration's state %s has format %d, this agent knows %d", StatePath(l), s.Version, stateVersion)
	}
	return &s, nil
}

func saveState(l layout.Layout, s *State) error {
	if err := ensureDir(l.GCAgentDir()); err != nil {
		return err
	}
	sort.Slice(s.Assignments, func(i, j int) bool { return s.Assignments[i].Name < s.Assignments[j].Name })
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if len(data) > maxStateSize {
		return errcode.New(guestconfig.CodeState, "guest configuration's state would be %d bytes, more than %d", len(data), maxStateSize)
	}
	if err := atomicfile.WriteFile(StatePath(l), append(data, '\n'), atomicfile.WriteOptions{Mode: 0o600}); err != nil {
		return errcode.Wrap(guestconfig.CodeState, err, "write guest configuration's state")
	}
	return nil
}

func lockState(ctx context.Context, l layout.Layout) (*atomicfile.Lock, error) {
	if err := ensureDir(l.GCAgentDir()); err != nil {
		return nil, err
	}
	lk, err := atomicfile.LockFile(ctx, StatePath(l))
	if err != nil {
		return nil, errcode.Wrap(guestconfig.CodeState, err, "lock guest configuration's state")
	}
	return lk, nil
}

func writeReport(l layout.Layout, name string, r *guestconfig.Report) error {
	if err := ensureDir(l.GCReportsDir()); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(ReportPath(l, name), append(data, '\n'), atomicfile.WriteOptions{Mode: 0o600})
}

// ReadReport reads the last report of an assignment; a missing one is
// fs.ErrNotExist.
func ReadReport(l layout.Layout, name string) (*guestconfig.Report, error) {
	if !nameRE().MatchString(name) {
		return nil, fmt.Errorf("%q is not an assignment name: %w", name, fs.ErrNotExist)
	}
	data, err := saferead.File(ReportPath(l, name), maxReportSize)
	if err != nil {
		return nil, err
	}
	var r guestconfig.Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, errcode.Wrap(guestconfig.CodeState, err, "the report %s is malformed", ReportPath(l, name))
	}
	return &r, nil
}

// ensureDir creates dir (and missing parents) as 0700 and refuses a link.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errcode.Wrap(guestconfig.CodeState, err, "create %s", dir)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return errcode.Wrap(guestconfig.CodeState, err, "inspect %s", dir)
	}
	if !fi.IsDir() {
		return errcode.New(guestconfig.CodeState, "%s is not a directory (a link?): refusing to use it", dir)
	}
	return nil
}
