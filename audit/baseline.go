package audit

import (
	"fmt"
	"os"

	"github.com/arcagent/arcagent/reports"
)

// BaselineError says a baseline report cannot be used.
type BaselineError struct {
	File string
	Err  error
}

func (e *BaselineError) Error() string { return fmt.Sprintf("baseline %s: %v", e.File, e.Err) }
func (e *BaselineError) Unwrap() error { return e.Err }

// LoadBaseline reads a previous JSON report to compare against.
func LoadBaseline(file string) (*reports.Report, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, &BaselineError{File: file, Err: fmt.Errorf("cannot read: %w", err)}
	}
	defer f.Close()
	r, err := reports.ReadJSON(f)
	if err != nil {
		return nil, &BaselineError{File: file, Err: err}
	}
	return r, nil
}

// isFinding reports whether a result counts as a finding for baselines.
func isFinding(s reports.Status) bool { return s == reports.StatusFail || s == reports.StatusWaived }

// applyBaseline marks each finding new or unchanged and lists the
// baseline's findings that no longer appear as fixed.
func applyBaseline(r *reports.Report, base *reports.Report, source string) {
	prev := map[string]reports.Result{}
	for _, res := range base.Results {
		if isFinding(res.Status) {
			prev[res.Fingerprint] = res
		}
	}
	info := &reports.BaselineInfo{Source: source, Fixed: []reports.FixedFinding{}}
	now := map[string]bool{}
	for i := range r.Results {
		res := &r.Results[i]
		if !isFinding(res.Status) {
			continue
		}
		now[res.Fingerprint] = true
		if _, ok := prev[res.Fingerprint]; ok {
			res.Baseline = reports.BaselineUnchanged
			info.Unchanged++
		} else {
			res.Baseline = reports.BaselineNew
			info.New++
		}
	}
	for _, res := range base.Results {
		if isFinding(res.Status) && !now[res.Fingerprint] {
			info.Fixed = append(info.Fixed, reports.FixedFinding{RuleID: res.RuleID, Resource: res.Resource, Fingerprint: res.Fingerprint, Message: res.Message})
			now[res.Fingerprint] = true // once each
		}
	}
	r.Baseline = info
}
