package releases

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/reports"
)

// Row is one verdict of a fleet check: one product on one machine, or a
// bad inventory row (Product "-").
// Its JSON is a result of the JSON report (schema version 1).
type Row struct {
	Machine       string `json:"machine"`
	Line          int    `json:"line"`
	Product       string `json:"product"`
	Installed     string `json:"installed"`
	Latest        string `json:"latest"`
	State         string `json:"state"`
	Behind        int    `json:"behind"`
	Supported     bool   `json:"supported"`
	Current       bool   `json:"current"`
	MinSupported  string `json:"minSupported"`
	ReleasedAt    string `json:"releasedAt"`
	SupportWindow string `json:"supportWindow"`
	Reason        string `json:"reason"`
}

// Finding reports whether the row is something to act on (not current).
func (r *Row) Finding() bool { return r.State != StateCurrent }

// Header describes a fleet check for the writers.
type Header struct {
	Tool        string    `json:"tool"`
	Version     string    `json:"version"`
	Inventory   string    `json:"inventory"`
	Source      string    `json:"source"`
	GeneratedAt time.Time `json:"generatedAt"`
	FailOn      string    `json:"failOn,omitempty"`
}

// ProductSummary counts the verdicts of one product.
type ProductSummary struct {
	Product     string `json:"product"`
	Latest      string `json:"latest"`
	Current     int    `json:"current"`
	Behind      int    `json:"behind"`
	Unsupported int    `json:"unsupported"`
	Unknown     int    `json:"unknown"`
}

// Summary counts a fleet check.
type Summary struct {
	Machines    int              `json:"machines"`
	BadRows     int              `json:"badRows"`
	Results     int              `json:"results"`
	Current     int              `json:"current"`
	Behind      int              `json:"behind"`
	Unsupported int              `json:"unsupported"`
	Unknown     int              `json:"unknown"`
	Products    []ProductSummary `json:"products"`
	// Untracked counts installed extensions of products the source does
	// not know (at most maxUntracked products are named).
	Untracked      map[string]int `json:"untracked"`
	UntrackedOther int            `json:"untrackedOther,omitempty"`
	DurationMs     int64          `json:"durationMs"`
	Gate           bool           `json:"gateFailed"`
}

// maxUntracked bounds the untracked products named in a summary.
const maxUntracked = 100

// gate reports whether failOn ("", "behind" or "unsupported") fails the
// run. Unknown versions and bad rows fail either level: a version that
// cannot be read is never taken as supported.
func (s *Summary) gate(failOn string) bool {
	switch failOn {
	case "behind":
		return s.Behind+s.Unsupported+s.Unknown > 0
	case "unsupported":
		return s.Unsupported+s.Unknown > 0
	}
	return false
}

// ParseFailOn checks a --fail-on value.
// "never" (as audit and report convert spell it) and "none" are the
// default: report without gating.
func ParseFailOn(s string) (string, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "", "none", "never":
		return "", nil
	case "behind", "unsupported":
		return v, nil
	}
	return "", newErr(CodeBadPolicy, "", nil, "--fail-on %q: use behind, unsupported or never", s)
}

// CheckOptions configure a fleet check.
type CheckOptions struct {
	Inventory io.Reader
	Format    string // FormatJSON, FormatCSV or "" (by content)
	// Machines, when set, yields the fleet instead of Inventory (a fleet
	// read from a control plane, see MachineFromInventory): it calls fn
	// for each machine, as ReadInventory does, and returns fn's errors.
	Machines func(fn func(*Machine) error) error
	Checker  *Checker
	Writers  []RowWriter
	Header   Header
	// Progress, when set, is called every ProgressEvery machines.
	Progress func(machines int)
}

// ProgressEvery is how often CheckOptions.Progress is called.
const ProgressEvery = 1000

// Check streams an inventory through the checker to the writers, one
// machine at a time, so memory does not grow with the fleet. The agent
// product must be known to the source; extensions of products it does not
// know are counted as untracked.
func Check(ctx context.Context, o CheckOptions) (*Summary, error) {
	start := time.Now()
	agent, err := o.Checker.Require(ctx, AgentProduct)
	if err != nil {
		return nil, err
	}
	for _, w := range o.Writers {
		if err := w.Begin(&o.Header); err != nil {
			return nil, err
		}
	}
	s := &Summary{Untracked: map[string]int{}}
	perProduct := map[string]*ProductSummary{}
	var row Row
	emit := func(m *Machine, product string, ix *Index, version string) error {
		c := ix.Evaluate(version)
		row = Row{Machine: m.Name, Line: m.Line, Product: product, Installed: c.Installed, Latest: c.Latest, State: c.State,
			Behind: c.Behind, Supported: c.Supported, Current: c.Current, MinSupported: c.MinSupported, ReleasedAt: c.ReleasedAt,
			SupportWindow: c.SupportWindow, Reason: c.Reason}
		if version == "" && product == AgentProduct {
			row.Reason = "no agent version is given for this machine"
		}
		ps := perProduct[product]
		if ps == nil {
			ps = &ProductSummary{Product: product, Latest: ix.Latest()}
			perProduct[product] = ps
		}
		count(s, ps, row.State)
		return write(o.Writers, &row)
	}
	machines := o.Machines
	if machines == nil {
		machines = func(fn func(*Machine) error) error { return ReadInventory(o.Inventory, o.Format, fn) }
	}
	err = machines(func(m *Machine) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.Machines++
		if o.Progress != nil && s.Machines%ProgressEvery == 0 {
			o.Progress(s.Machines)
		}
		if m.Problem != "" {
			s.BadRows++
			row = Row{Machine: m.Name, Line: m.Line, Product: "-", State: StateUnknown, Reason: "bad inventory row: " + m.Problem}
			count(s, nil, StateUnknown)
			return write(o.Writers, &row)
		}
		if err := emit(m, AgentProduct, agent, m.Agent); err != nil {
			return err
		}
		for _, x := range m.Extensions {
			ix, err := o.Checker.Index(ctx, x.Product)
			if err != nil {
				return err
			}
			if ix == nil {
				if _, ok := s.Untracked[x.Product]; ok || len(s.Untracked) < maxUntracked {
					s.Untracked[x.Product]++
				} else {
					s.UntrackedOther++
				}
				continue
			}
			if err := emit(m, x.Product, ix, x.Version); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if e, ok := err.(*Error); ok && e.Code == CodeBadInventory && e.Source == "" {
			e.Source = "inventory " + o.Header.Inventory
		}
		return nil, err
	}
	for _, ps := range perProduct {
		s.Products = append(s.Products, *ps)
	}
	slices.SortFunc(s.Products, func(a, b ProductSummary) int { return cmp.Compare(a.Product, b.Product) })
	if s.Products == nil {
		s.Products = []ProductSummary{}
	}
	s.Gate = s.gate(o.Header.FailOn)
	s.DurationMs = time.Since(start).Milliseconds()
	for _, w := range o.Writers {
		if err := w.End(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func count(s *Summary, ps *ProductSummary, state string) {
	s.Results++
	var n *int
	switch state {
	case StateCurrent:
		s.Current++
		if ps != nil {
			n = &ps.Current
		}
	case StateBehind:
		s.Behind++
		if ps != nil {
			n = &ps.Behind
		}
	case StateUnsupported:
		s.Unsupported++
		if ps != nil {
			n = &ps.Unsupported
		}
	default:
		s.Unknown++
		if ps != nil {
			n = &ps.Unknown
		}
	}
	if n != nil {
		*n++
	}
}

func write(ws []RowWriter, r *Row) error {
	for _, w := range ws {
		if err := w.Row(r); err != nil {
			return fmt.Errorf("write the report: %w", err)
		}
	}
	return nil
}

// ReportOptions configure WriteReports: one fleet check written to several
// outputs.
type ReportOptions struct {
	CheckOptions
	// Outputs are the formats and files ("" or "-" is Stdout).
	Outputs []reports.Output
	Stdout  io.Writer
	// All lists current results too in table and Markdown.
	All bool
	// Width is the width of the terminal Stdout is (0: unlimited); files
	// are always written unlimited.
	Width int
}

// WriteReports runs the check once, writing every output as rows come.
// Files are written atomically (0644): a failed run leaves none.
func WriteReports(ctx context.Context, o ReportOptions) (*Summary, error) {
	var sum *Summary
	writers := make([]RowWriter, len(o.Outputs))
	var open func(i int) error
	open = func(i int) (err error) {
		if i == len(o.Outputs) {
			co := o.CheckOptions
			co.Writers = writers
			sum, err = Check(ctx, co)
			return err
		}
		out := o.Outputs[i]
		if out.ToStdout() {
			if writers[i], err = NewWriter(out.Format, o.Stdout, WriterOptions{All: o.All, Width: o.Width}); err != nil {
				return err
			}
			return open(i + 1)
		}
		return atomicfile.Write(out.File, atomicfile.WriteOptions{Mode: 0o644, Output: true}, func(w io.Writer) (err error) {
			if writers[i], err = NewWriter(out.Format, w, WriterOptions{All: o.All}); err != nil {
				return err
			}
			return open(i + 1)
		})
	}
	return sum, open(0)
}
