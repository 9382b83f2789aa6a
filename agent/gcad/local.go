package gcad

import (
	"errors"
	"io/fs"
	"time"

	"github.com/arcagent/arcagent/agent/guestconfig"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
)

// Row is one assignment as `arcagent guestconfig list` shows it.
type Row struct {
	Name         string    `json:"name"`
	Policy       string    `json:"policy"`
	Version      string    `json:"version"`
	Mode         string    `json:"mode"`
	Compliance   string    `json:"complianceStatus"`
	NonCompliant int       `json:"nonCompliant"`
	Applied      bool      `json:"applied"`
	Message      string    `json:"message,omitempty"`
	Evaluated    time.Time `json:"lastEvaluation,omitzero"`
}

// List reads gcad's state: every assignment it knows, with the compliance
// of its last evaluation.
func List(l layout.Layout) ([]Row, error) {
	st, err := LoadState(l)
	if err != nil {
		return nil, err
	}
	out := []Row{}
	for i := range st.Assignments {
		e := &st.Assignments[i]
		c := e.Status.Compliance
		if c == "" {
			c = guestconfig.Pending
		}
		out = append(out, Row{Name: e.Name, Policy: e.Policy, Version: e.Version, Mode: e.Mode, Compliance: c,
			NonCompliant: e.NonCompliant(), Applied: e.Applied != "", Message: e.Status.Message, Evaluated: e.LastEvaluation})
	}
	return out, nil
}

// Detail is one assignment as `arcagent guestconfig show` shows it: the
// list row and the last report (nil when it was never evaluated, or not
// applied: disabled, refused before evaluation).
type Detail struct {
	Row
	Report *guestconfig.Report `json:"report,omitempty"`
}

// Show reads one assignment's state and last report.
func Show(l layout.Layout, name string) (*Detail, error) {
	rows, err := List(l)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if r.Name != name {
			continue
		}
		d := &Detail{Row: r}
		if r.Compliance != guestconfig.NotApplied {
			rep, err := ReadReport(l, name)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			d.Report = rep
		}
		return d, nil
	}
	return nil, errcode.New(CodeNotFound, "no guest configuration assignment %q on this machine (arcagent guestconfig list shows them)", name)
}
