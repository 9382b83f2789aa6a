package extd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

// Error codes of the audit upload (range ARC0610–ARC0629): `arcagent
// audit --upload` and the periodic audit of extd.
const (
	CodeUploadNotRoot      errcode.Code = "ARC0610" // the machine key is readable by root only
	CodeUploadNotConnected errcode.Code = "ARC0611" // no registration: nothing to upload to
	CodeUploadFailed       errcode.Code = "ARC0612" // the control plane refused the report or could not be reached
	CodeUploadPlanned      errcode.Code = "ARC0613" // --upload of a planned configuration's audit
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeUploadNotRoot, Exit: errcode.ExitUsage, Title: "uploading an audit needs root (the machine key signs it)",
			Remedy: "run it as root: sudo arcagent audit --upload"},
		{Code: CodeUploadNotConnected, Exit: errcode.ExitUsage, Title: "the machine is not connected: there is no control plane to upload the audit to",
			Remedy: "connect first (arcagent connect), or audit without --upload"},
		{Code: CodeUploadFailed, Exit: errcode.ExitFailed, Title: "the audit report could not be uploaded",
			Remedy: "the reports asked for with -o were written; check the connection (arcagent check, arcagent show) and the message, then run the audit with --upload again"},
		{Code: CodeUploadPlanned, Exit: errcode.ExitUsage, Title: "an audit of a planned configuration cannot be uploaded",
			Remedy: "upload audits of the machine itself: drop --config, or drop --upload"},
	} {
		errcode.Register(i)
	}
}

// Audit upload settings (localconfig.json).
const (
	// DefaultAuditInterval is audit.upload.interval's default (minutes).
	DefaultAuditInterval = 24 * time.Hour
	// MinAuditInterval is the shortest interval the setting allows.
	MinAuditInterval = 15 * time.Minute
)

// AuditOptions configure the periodic audit (RunAudits).
type AuditOptions struct {
	Layout layout.Layout
	Log    *slog.Logger
	// Run audits the machine and uploads the JSON report. The command
	// wires the audit engine in, so that the agent packages stay free of
	// it.
	Run func(ctx context.Context) error
	// Every overrides audit.upload.interval (tests); 0 reads the setting.
	Every time.Duration
	// Check is how often localconfig.json is read again (default one
	// minute): turning the upload on or changing its interval needs no
	// restart.
	Check time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Ran, when set, is told after every run (tests).
	Ran func(error)
}

// auditState is ext_mgr/audit_upload.json: when the last periodic audit
// ran, so that a restart does not audit again before the interval.
type auditState struct {
	LastRun time.Time `json:"lastRun"`
	LastErr string    `json:"lastError,omitempty"`
}

// AuditStatePath is the periodic audit's state file.
func AuditStatePath(l layout.Layout) string {
	return filepath.Join(filepath.Dir(StatePath(l)), "audit_upload.json")
}

func loadAuditState(l layout.Layout) auditState {
	var st auditState
	f, err := os.Open(AuditStatePath(l))
	if err != nil {
		return st
	}
	defer f.Close()
	_ = json.NewDecoder(io.LimitReader(f, 4<<10)).Decode(&st)
	return st
}

func saveAuditState(l layout.Layout, st auditState) error {
	p := AuditStatePath(l)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(p, atomicfile.WriteOptions{Mode: 0o600}, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(st)
	})
}

// auditSchedule reads audit.upload.enabled and audit.upload.interval.
func auditSchedule(l layout.Layout) (bool, time.Duration, error) {
	s, _, err := config.NewStore(l).Load()
	if err != nil {
		return false, 0, err
	}
	every := time.Duration(s.Int(config.AuditUploadInterval)) * time.Minute
	return s.Bool(config.AuditUploadEnabled), max(every, MinAuditInterval), nil
}

// RunAudits runs the audit and uploads it every audit.upload.interval
// while audit.upload.enabled is true (off by default), until ctx ends. A
// failed run is logged and tried again at the next interval; the time of
// the last run survives restarts.
func RunAudits(ctx context.Context, o AuditOptions) error {
	if o.Run == nil {
		return errors.New("extd: AuditOptions.Run is required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Check <= 0 {
		o.Check = time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st := loadAuditState(o.Layout)
	wasOn := false
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		on, every, err := auditSchedule(o.Layout)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			o.Log.Warn("periodic audit: read localconfig.json", "err", err)
		}
		if o.Every > 0 {
			every = o.Every
		}
		if on != wasOn {
			o.Log.Info("periodic audit upload", "enabled", on, "interval", every.String())
			wasOn = on
		}
		wait := o.Check
		if on {
			now := o.Now()
			if next := st.LastRun.Add(every); !now.Before(next) || st.LastRun.After(now) {
				err := o.Run(ctx)
				if ctx.Err() != nil {
					return nil
				}
				st = auditState{LastRun: o.Now().UTC()}
				if err != nil {
					st.LastErr = errcode.Format(err)
					o.Log.Error("periodic audit upload failed", "err", err, "next_in", every.String())
				} else {
					o.Log.Info("periodic audit uploaded", "next_in", every.String())
				}
				if err := saveAuditState(o.Layout, st); err != nil {
					o.Log.Warn("periodic audit: save its state", "path", AuditStatePath(o.Layout), "err", fmt.Sprint(err))
				}
				if o.Ran != nil {
					o.Ran(err)
				}
			}
			if u := st.LastRun.Add(every).Sub(o.Now()); u < wait {
				wait = u
			}
		}
		timer.Reset(max(wait, 10*time.Millisecond))
	}
}
