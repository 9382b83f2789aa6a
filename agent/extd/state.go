// Package extd is the extension manager: it turns the control plane's
// desired extensions into installed, enabled handlers on the machine and
// reports their state back, with the machine's local controls
// (localconfig.json's extensions.* settings, monitor mode, the trust store)
// deciding first, before any byte is downloaded.
//
// One reconcile pass compares the desired state with the persisted local
// state (ext_mgr/state.json) and drives each extension through its steps:
// download → verify → extract (package agent/extensions) → handler commands
// (package agent/extensions/handler) → status. The step in progress is
// written before it starts, so a restart after a crash rolls an unfinished
// install back (or an update back to the old version) and resumes enable,
// uninstall and removal, never leaving a half-installed tree recorded as
// installed.
package extd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/saferead"
	"github.com/arcagent/arcagent/internal/strictjson"
)

// StateFile is the name of the persisted state in the layout's ExtMgrDir.
const StateFile = "state.json"

// StateV1 names the state document's schema.
const StateV1 = "https://arcagent.dev/extd-state/v1"

const maxStateSize = 16 << 20

// Where an entry came from: an assignment of the control plane, or a local
// `arcagent package install`. Only control-plane entries are removed when
// the control plane stops asking for them.
const (
	SourceControlPlane = "controlplane"
	SourceLocal        = "local"
)

// Phases of an entry. Stable phases end a reconcile pass; the others are
// written before their step starts and mean "interrupted" when found at
// start-up.
const (
	PhaseInstalled = "Installed" // stable: extracted and recorded, not enabled
	PhaseEnabled   = "Enabled"   // stable: enable ran (its status says how it went)
	PhaseFailed    = "Failed"    // stable: the last attempt failed (retried with backoff)
	PhaseRefused   = "Refused"   // stable: local policy or signature refused it (retried on change)

	PhaseDownloading  = "Downloading"
	PhaseExtracting   = "Extracting"
	PhaseInstallCmd   = "RunningInstall"
	PhaseEnabling     = "Enabling"
	PhaseDisablingOld = "DisablingOld"
	PhaseUpdatingNew  = "UpdatingNew"
	PhaseUninstallOld = "UninstallingOld"
	PhaseInstallNew   = "InstallingNew"
	PhaseDisabling    = "Disabling"
	PhaseUninstalling = "Uninstalling"
	PhaseDeleting     = "Deleting"
)

// Entry is what the extension manager knows of one extension.
type Entry struct {
	Name      string `json:"name"` // the assignment name
	Source    string `json:"source"`
	Publisher string `json:"publisher"`
	Type      string `json:"type"`
	// Version is the version whose tree is installed (or being installed:
	// see Phase). Previous holds the version being replaced during an
	// update, until its tree is deleted.
	Version  string `json:"version"`
	Previous string `json:"previous,omitempty"`
	// Target is the version an unfinished update or install is going to.
	Target string `json:"target,omitempty"`
	// TargetSHA256 is the digest of the package Target is extracted from:
	// a tree of that name whose install record names another package (or
	// none) was not extracted by this entry and is never deleted for it.
	TargetSHA256  string `json:"targetSha256,omitempty"`
	PackageSHA256 string `json:"packageSha256,omitempty"`
	Phase         string `json:"phase"`
	// Sequence is the settings sequence number of the last settings
	// written, SettingsHash what they were made from.
	Sequence     int    `json:"sequence"`
	SettingsHash string `json:"settingsHash,omitempty"`
	// Removing is set once a removal started: it always finishes.
	Removing bool `json:"removing,omitempty"`
	// NeedInstall: the install command must (re)run before enable.
	NeedInstall bool `json:"needInstall,omitempty"`
	// TransitioningSince is when the handler's status first said
	// transitioning after the last enable (zero otherwise).
	TransitioningSince time.Time `json:"transitioningSince,omitzero"`
	// Attempts counts consecutive failures; NotBefore delays the next try.
	Attempts  int                   `json:"attempts,omitempty"`
	NotBefore time.Time             `json:"notBefore,omitzero"`
	FailedFor string                `json:"failedFor,omitempty"` // the desired key the failure is for
	Status    apiv1.ExtensionStatus `json:"status"`
}

// installed reports whether a tree of e.Version is on disk and recorded.
func (e *Entry) installed() bool {
	switch e.Phase {
	case PhaseInstalled, PhaseEnabled, PhaseEnabling, PhaseDisabling, PhaseUninstalling, PhaseDeleting,
		PhaseDisablingOld, PhaseUpdatingNew, PhaseUninstallOld, PhaseInstallNew:
		return true
	case PhaseFailed, PhaseRefused:
		return e.Version != ""
	}
	return false
}

// State is ext_mgr/state.json.
type State struct {
	Schema string `json:"schema"`
	// ETag of the desired state last applied in full.
	DesiredETag string `json:"desiredStateETag,omitempty"`
	// StatusPending is set when a status report could not be sent: it is
	// sent again on the next pass.
	StatusPending bool `json:"statusPending,omitempty"`
	// Desired is the desired state last fetched (protected settings stay
	// sealed): passes after a 304 and offline passes work from it.
	Desired    *apiv1.DesiredState `json:"desired,omitempty"`
	Extensions []*Entry            `json:"extensions"`
}

// Lookup returns the entry called name, or nil.
func (s *State) Lookup(name string) *Entry {
	for _, e := range s.Extensions {
		if e.Name == name {
			return e
		}
	}
	return nil
}

func (s *State) put(e *Entry) {
	if old := s.Lookup(e.Name); old != nil {
		*old = *e
		return
	}
	s.Extensions = append(s.Extensions, e)
	slices.SortFunc(s.Extensions, func(a, b *Entry) int { return strings.Compare(a.Name, b.Name) })
}

func (s *State) drop(name string) {
	s.Extensions = slices.DeleteFunc(s.Extensions, func(e *Entry) bool { return e.Name == name })
}

// StatePath is where the layout keeps the extension manager's state.
func StatePath(l layout.Layout) string { return filepath.Join(l.ExtMgrDir(), StateFile) }

// LoadState reads the state (an empty state when there is none yet). The
// file is read no-follow and bounded inside the extension manager's
// directory; a corrupt file is an error, never silently an empty state,
// since that would forget installed extensions.
func LoadState(l layout.Layout) (*State, error) {
	data, err := saferead.File(StatePath(l), maxStateSize)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Schema: StateV1}, nil
	}
	if err != nil {
		return nil, errcode.Wrap(CodeState, err, "read the extension manager's state")
	}
	return ParseState(data)
}

// ParseState decodes state.json strictly.
func ParseState(data []byte) (*State, error) {
	var s State
	err := strictjson.Check(data, &s)
	if err == nil {
		// Numbers in settings keep every digit (json.Number), as the
		// desired state was fetched, so their fingerprint is stable.
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		dec.UseNumber()
		if err = dec.Decode(&s); err == nil {
			if _, terr := dec.Token(); terr != io.EOF {
				err = errors.New("data after the JSON value")
			}
		}
	}
	if err != nil {
		return nil, errcode.Wrap(CodeState, err, "the extension manager's state %s is corrupt; move it aside only after checking /var/lib/waagent by hand", StateFile)
	}
	if s.Schema != StateV1 {
		return nil, errcode.New(CodeState, "the extension manager's state has schema %q, want %q", s.Schema, StateV1)
	}
	for i, e := range s.Extensions {
		if e == nil || e.Name == "" {
			return nil, errcode.New(CodeState, "the extension manager's state: entry %d has no name", i)
		}
	}
	return &s, nil
}

// saveState writes the state atomically (root 0600).
func saveState(l layout.Layout, s *State) error {
	data, err := marshalState(s)
	if err != nil {
		return err
	}
	return writeState(l, data)
}

func marshalState(s *State) ([]byte, error) {
	s.Schema = StateV1
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

func writeState(l layout.Layout, data []byte) error {
	if len(data) > maxStateSize {
		return errcode.New(CodeState, "the extension manager's state would be %d bytes, more than the %d it reads back: not saved", len(data), maxStateSize)
	}
	if err := ensureDir(l.ExtMgrDir()); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(StatePath(l), data, atomicfile.WriteOptions{Mode: 0o600}); err != nil {
		return errcode.Wrap(CodeState, err, "save the extension manager's state")
	}
	return nil
}

// lockState takes the state lock: the daemon holds it for each pass, the
// local CLI verbs for their change.
func lockState(ctx context.Context, l layout.Layout) (*atomicfile.Lock, error) {
	if err := ensureDir(l.ExtMgrDir()); err != nil {
		return nil, err
	}
	lk, err := atomicfile.LockFile(ctx, StatePath(l))
	if err != nil {
		return nil, errcode.Wrap(CodeState, err, "lock the extension manager's state")
	}
	return lk, nil
}

// ensureDir creates dir (and missing parents) as 0700 and refuses a link.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return errcode.New(CodeState, "%s is not a directory (a link?): refusing to use it", dir)
	}
	return nil
}
