package reports

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/arcagent/arcagent/internal/atomicfile"
)

// FleetFinding is one failing rule on one machine, from the machine's
// latest audit report uploaded to the control plane.
type FleetFinding struct {
	Machine        string    `json:"machine"`
	MachineID      string    `json:"machineId"`
	ResourceID     string    `json:"resourceId"`
	SubscriptionID string    `json:"subscriptionId"`
	ResourceGroup  string    `json:"resourceGroup"`
	Profile        string    `json:"profile"`
	RuleID         string    `json:"ruleId"`
	Severity       Severity  `json:"severity"`
	Title          string    `json:"title,omitempty"`
	Message        string    `json:"message,omitempty"`
	Remediation    string    `json:"remediation,omitempty"`
	ReportedAt     time.Time `json:"reportedAt"`
}

// FleetReport is the failing rules of many machines (`arcagent fleet
// audits`). Every audit format renders it: SARIF as one run per machine
// (each run's properties name the machine), JSON as the list of findings,
// the other formats as one report whose results are the (rule, machine)
// pairs, the machine as the resource.
type FleetReport struct {
	Tool        Tool
	GeneratedAt time.Time
	// Scope says what was asked for (filters), shown as the report's note.
	Scope    string
	Findings []FleetFinding
}

// FleetJSONVersion is the version of the fleet JSON document.
const FleetJSONVersion = 1

type fleetJSON struct {
	Kind        string         `json:"kind"`
	Version     int            `json:"version"`
	Tool        Tool           `json:"tool"`
	GeneratedAt time.Time      `json:"generatedAt"`
	Scope       string         `json:"scope,omitempty"`
	Machines    int            `json:"machines"`
	Findings    []FleetFinding `json:"findings"`
}

// machineKey is a finding's machine: its id, else its resource id.
func (f *FleetFinding) machineKey() string { return cmp.Or(f.MachineID, f.ResourceID, f.Machine) }

// Machines counts the machines with findings.
func (fr *FleetReport) Machines() int {
	seen := map[string]bool{}
	for i := range fr.Findings {
		seen[fr.Findings[i].machineKey()] = true
	}
	return len(seen)
}

func fleetRules(fs []FleetFinding) []Rule {
	var rules []Rule
	seen := map[string]bool{}
	for _, f := range fs {
		if !seen[f.RuleID] {
			seen[f.RuleID] = true
			rules = append(rules, Rule{ID: f.RuleID, Title: f.Title, Severity: f.Severity, Profiles: []string{}, Remediation: f.Remediation})
		}
	}
	slices.SortFunc(rules, func(a, b Rule) int { return cmp.Compare(a.ID, b.ID) })
	return rules
}

func fleetResult(f *FleetFinding, resource string) Result {
	return Result{RuleID: f.RuleID, Severity: f.Severity, Status: StatusFail, Message: f.Message, Resource: resource,
		Location: Location{Line: 1}, Fingerprint: Fingerprint(f.RuleID, f.machineKey(), f.Profile)}
}

func (fr *FleetReport) base(host string, fs []FleetFinding) *Report {
	profiles := []string{}
	for _, f := range fs {
		if !slices.Contains(profiles, f.Profile) {
			profiles = append(profiles, f.Profile)
		}
	}
	slices.Sort(profiles)
	return &Report{
		SchemaVersion: SchemaVersion, Tool: fr.Tool, RunID: "fleet-" + fr.GeneratedAt.UTC().Format("20060102T150405Z"), StartedAt: fr.GeneratedAt.UTC(),
		Target: Target{Kind: TargetHost, Host: host}, Profiles: profiles, FailOn: FailOnNever,
		Waivers: []AppliedWaiver{}, CollectorErrors: []CollectorError{},
	}
}

// Merged is the fleet as one report: one failing result per rule and
// machine, the machine's name as the resource, for the formats that show
// one report (table, markdown, csv, html, junit).
func (fr *FleetReport) Merged() *Report {
	r := fr.base("fleet", fr.Findings)
	r.Target.Note = fmt.Sprintf("failing rules of the latest uploaded audits: %d findings on %d machines", len(fr.Findings), fr.Machines())
	if fr.Scope != "" {
		r.Target.Note += " (" + fr.Scope + ")"
	}
	r.Rules = fleetRules(fr.Findings)
	for i := range fr.Findings {
		f := &fr.Findings[i]
		r.Results = append(r.Results, fleetResult(f, f.Machine))
	}
	r.Summarize()
	r.SortResults()
	return r
}

// FleetMachine names the machine of one per-machine report.
type FleetMachine struct {
	Name           string `json:"name"`
	ID             string `json:"id"`
	ResourceID     string `json:"resourceId"`
	SubscriptionID string `json:"subscriptionId"`
	ResourceGroup  string `json:"resourceGroup"`
}

// PerMachine splits the fleet into one report per machine (ordered by
// name), the machine's name as the target host.
func (fr *FleetReport) PerMachine() ([]FleetMachine, []*Report) {
	idx := map[string]int{}
	var ms []FleetMachine
	var groups [][]FleetFinding
	for _, f := range fr.Findings {
		k := f.machineKey()
		i, ok := idx[k]
		if !ok {
			i = len(ms)
			idx[k] = i
			ms = append(ms, FleetMachine{Name: f.Machine, ID: f.MachineID, ResourceID: f.ResourceID, SubscriptionID: f.SubscriptionID, ResourceGroup: f.ResourceGroup})
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], f)
	}
	order := make([]int, len(ms))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(ms[a].Name, ms[b].Name), cmp.Compare(ms[a].ResourceID, ms[b].ResourceID))
	})
	outM := make([]FleetMachine, 0, len(ms))
	outR := make([]*Report, 0, len(ms))
	for _, i := range order {
		r := fr.base(ms[i].Name, groups[i])
		r.Target.Note = "resource " + ms[i].ResourceID
		r.Rules = fleetRules(groups[i])
		for j := range groups[i] {
			r.Results = append(r.Results, fleetResult(&groups[i][j], groups[i][j].Profile))
		}
		r.Summarize()
		r.SortResults()
		outM = append(outM, ms[i])
		outR = append(outR, r)
	}
	return outM, outR
}

// WriteFleet renders fr in format (one of Formats()).
func WriteFleet(w io.Writer, format string, fr *FleetReport, opts Options) error {
	switch format {
	case "json":
		doc := fleetJSON{Kind: "arcagent-fleet-audits", Version: FleetJSONVersion, Tool: fr.Tool, GeneratedAt: fr.GeneratedAt.UTC(), Scope: fr.Scope, Machines: fr.Machines(), Findings: fr.Findings}
		if doc.Findings == nil {
			doc.Findings = []FleetFinding{}
		}
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	case "sarif":
		return writeFleetSARIF(w, fr)
	}
	wr, err := New(format, opts)
	if err != nil {
		return err
	}
	return wr.Write(w, fr.Merged())
}

// writeFleetSARIF writes one SARIF log with one run per machine, each the
// audit's SARIF run of that machine's findings, with properties.machine
// naming it.
func writeFleetSARIF(w io.Writer, fr *FleetReport) error {
	ms, rs := fr.PerMachine()
	runs := make([]json.RawMessage, 0, len(rs))
	for i, r := range rs {
		var buf bytes.Buffer
		if err := (SARIFWriter{}).Write(&buf, r); err != nil {
			return err
		}
		var log struct {
			Runs []map[string]json.RawMessage `json:"runs"`
		}
		if err := json.Unmarshal(buf.Bytes(), &log); err != nil || len(log.Runs) != 1 {
			return fmt.Errorf("build the SARIF run of %s: %v", ms[i].Name, err)
		}
		run := log.Runs[0]
		props := map[string]json.RawMessage{}
		if p, ok := run["properties"]; ok {
			if err := json.Unmarshal(p, &props); err != nil {
				return fmt.Errorf("build the SARIF run of %s: %w", ms[i].Name, err)
			}
		}
		mb, _ := json.Marshal(ms[i])
		props["machine"] = mb
		pb, _ := json.Marshal(props)
		run["properties"] = pb
		rb, err := json.Marshal(run)
		if err != nil {
			return fmt.Errorf("build the SARIF run of %s: %w", ms[i].Name, err)
		}
		runs = append(runs, rb)
	}
	doc := struct {
		Schema  string            `json:"$schema"`
		Version string            `json:"version"`
		Runs    []json.RawMessage `json:"runs"`
	}{sarifSchema, sarifVersion, runs}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// WriteFleetAll writes fr to every output as WriteAll writes a report:
// files atomically (0644), standard output with opts.
func WriteFleetAll(fr *FleetReport, outs []Output, stdout io.Writer, opts Options) error {
	for _, o := range outs {
		if o.ToStdout() {
			if err := WriteFleet(stdout, o.Format, fr, opts); err != nil {
				return fmt.Errorf("write %s report: %w", o.Format, err)
			}
			continue
		}
		err := atomicfile.Write(o.File, atomicfile.WriteOptions{Mode: 0o644, Output: true}, func(w io.Writer) error {
			return WriteFleet(w, o.Format, fr, Options{})
		})
		if err != nil {
			return fmt.Errorf("write %s report to %s: %w", o.Format, o.File, err)
		}
	}
	return nil
}
