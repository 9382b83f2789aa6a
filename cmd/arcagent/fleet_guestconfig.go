package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/signing"
)

func init() {
	fleetCommands = append(fleetCommands, newFleetGuestConfigCmd)
}

func newFleetGuestConfigCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "guestconfig", Short: "Publish guest configuration packages, assign them to machines or resource groups, read compliance"}
	var sigPath string
	publish := &cobra.Command{
		Use:   "publish PKG.zip [--signature PKG.zip.sig.json]",
		Short: "Upload a signed guest configuration package so it can be assigned",
		Long: `publish uploads a guest configuration package (a zip with guestconfig.yaml
at its root, signed as a guest configuration package) and its DSSE
signature to the control plane's package repository, the same repository
and call as ` + "`arcagent fleet packages publish`" + `. An extension package is
refused: publish those with ` + "`fleet packages publish`" + `. Whether the signing key is
trusted is decided on each machine by its own trust store. A published
version is never replaced. Needs Microsoft.HybridCompute/extensionPackages/write
at / (Owner, Connected Machine Resource Administrator).

  arcagent fleet guestconfig publish Contoso.Baseline.SSH-1.0.zip`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			zipPath := args[0]
			req, err := readPublication(zipPath, sigPath)
			if err != nil {
				return err
			}
			if err := checkGuestConfigEnvelope(req.Envelope); err != nil {
				return err
			}
			info, err := a.publishPackage(cmd, zipPath, req)
			if err != nil || a.json {
				return err
			}
			fmt.Fprintf(a.stdout, "Published guest configuration package %s (sha256 %s, %d bytes)\nAssign it with: arcagent fleet guestconfig assign --machine M --name N --package %s.%s --version %s --mode Audit\n",
				info.FileName, info.SHA256, info.Size, info.Publisher, info.Type, info.Version)
			return nil
		},
	}
	publish.Flags().StringVar(&sigPath, "signature", "", "the package's DSSE signature file (default PKG.zip.sig.json)")
	cmd.AddCommand(publish)
	for _, f := range fleetGuestConfigVerbs {
		cmd.AddCommand(f(a))
	}
	return cmd
}

// fleetGuestConfigVerbs are the other `fleet guestconfig` verbs.
var fleetGuestConfigVerbs []func(*app) *cobra.Command

// checkGuestConfigEnvelope refuses, before any upload, a signature that
// is not a guest configuration package's (the server checks it again).
func checkGuestConfigEnvelope(env []byte) error {
	_, payload, err := signing.ParseEnvelope(env, signing.PayloadType)
	if err != nil {
		return errcode.Wrap(errcode.Usage, err, "the signature file is not a DSSE envelope")
	}
	st, err := signing.ParseStatement(payload)
	if err != nil {
		return errcode.Wrap(errcode.Usage, err, "the signature file holds no arcagent package statement")
	}
	if st.Kind() != signing.KindGuestConfig {
		p := st.Package()
		return errcode.New(errcode.Usage, "%s is signed as an extension package, not a guest configuration package: publish extensions with `arcagent fleet packages publish`, or sign the configuration package as kind guestconfig", p.FileName())
	}
	return nil
}

func init() {
	fleetGuestConfigVerbs = append(fleetGuestConfigVerbs, newFleetGCAssignCmd, newFleetGCStatusCmd, newFleetGCRemoveCmd, newFleetGCListCmd)
}

// Client-side bounds of --parameters (the server checks them again).
const (
	fleetMaxParameters     = 64
	fleetMaxParameterValue = 4096
)

// parseParameters reads --parameters values: each KEY=VALUE, several in
// one value separated by commas; a comma-separated piece without "=" is
// the continuation of the previous value (so "list=a,b" keeps "a,b").
// Names are [A-Za-z][A-Za-z0-9_]{0,63}; a name given twice is an error.
func parseParameters(items []string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	last := ""
	for _, item := range items {
		last = ""
		for piece := range strings.SplitSeq(item, ",") {
			k, v, ok := strings.Cut(piece, "=")
			if !ok {
				if last == "" {
					return nil, errcode.New(errcode.Usage, "--parameters %q: give KEY=VALUE (several separated by commas)", piece)
				}
				out[last] += "," + piece
				continue
			}
			if !validParamName(k) {
				return nil, errcode.New(errcode.Usage, "--parameters: name %q must be a letter followed by at most 63 letters, digits or _", k)
			}
			if _, dup := out[k]; dup {
				return nil, errcode.New(errcode.Usage, "--parameters: %s is given twice", k)
			}
			out[k], last = v, k
		}
	}
	if len(out) > fleetMaxParameters {
		return nil, errcode.New(errcode.Usage, "--parameters: %d given; at most %d are allowed", len(out), fleetMaxParameters)
	}
	for k, v := range out {
		if len(v) > fleetMaxParameterValue {
			return nil, errcode.New(errcode.Usage, "--parameters: %s is %d bytes long; at most %d are allowed", k, len(v), fleetMaxParameterValue)
		}
		if !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
			return nil, errcode.New(errcode.Usage, "--parameters: the value of %s holds control characters or is not UTF-8", k)
		}
	}
	return out, nil
}

func validParamName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i, r := range n {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '_'):
		default:
			return false
		}
	}
	return true
}

// gcTarget is --machine or --resource-group [--subscription], resolved.
type gcTarget struct {
	machine       apiv1.Machine
	sub, rg       string
	isGroup       bool
	machineRef    string
	subRef, rgRef string
}

func (t *gcTarget) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&t.machineRef, "machine", "", "machine name, id or resource id")
	f.StringVar(&t.rgRef, "resource-group", "", "resource group name or scope: every machine of the group, later ones too")
	f.StringVar(&t.subRef, "subscription", "", "subscription name or id (with --resource-group, when the name is not unique)")
}

func (t *gcTarget) resolve(cmd *cobra.Command, op *cloud.Operator) error {
	switch {
	case (t.machineRef == "") == (t.rgRef == ""):
		return errcode.New(errcode.Usage, "give one of --machine M and --resource-group RG")
	case t.machineRef != "" && t.subRef != "":
		return errcode.New(errcode.Usage, "--subscription goes with --resource-group only")
	case t.machineRef != "":
		m, err := op.ResolveMachine(cmd.Context(), t.machineRef)
		t.machine = m
		return err
	}
	sid, name, err := op.ResolveGroup(cmd.Context(), t.subRef, t.rgRef)
	t.sub, t.rg, t.isGroup = sid, name, true
	return err
}

func (t *gcTarget) String() string {
	if t.isGroup {
		return "resource group " + t.rg
	}
	return t.machine.Name
}

func newFleetGCAssignCmd(a *app) *cobra.Command {
	var target gcTarget
	var name, pkg, version, mode string
	var params []string
	cmd := &cobra.Command{
		Use:   "assign (--machine M | --resource-group RG [--subscription S]) --name N --package P --version V --mode MODE [--parameters k=v ...]",
		Short: "Assign a guest configuration package to a machine or to every machine of a resource group",
		Long: `assign writes a guest configuration assignment into the desired state of
the machine, or of every machine of the resource group (machines that
register later included). The package "<Publisher>.<Name>" at --version
must be published (` + "`arcagent fleet guestconfig publish`" + `); the assignment pins its
sha256. The machine's guest configuration service (gcad) evaluates it in
--mode:

  Audit                report compliance, change nothing
  ApplyAndMonitor      apply once, then report drift
  ApplyAndAutoCorrect  apply, and correct drift at every evaluation

--parameters sets the document's ${name} parameters: KEY=VALUE, repeated
or separated by commas. A name assigned on the machine and on its group is
refused. Assigning the same values again changes nothing. Needs
Microsoft.GuestConfiguration/guestConfigurationAssignments/write at the
machine or group (Owner, Connected Machine Resource Administrator).

  arcagent fleet guestconfig assign --machine web01 --name ssh \
      --package Contoso.Baseline.SSH --version 1.0 --mode Audit --parameters maxAuthTries=4
  arcagent fleet guestconfig assign --resource-group web --name ssh \
      --package Contoso.Baseline.SSH --version 1.0 --mode ApplyAndAutoCorrect`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			for flag, v := range map[string]string{"--name": name, "--package": pkg, "--version": version, "--mode": mode} {
				if v == "" {
					return errcode.New(errcode.Usage, "%s is required", flag)
				}
			}
			ps, err := parseParameters(params)
			if err != nil {
				return err
			}
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			if err := target.resolve(cmd, op); err != nil {
				return err
			}
			req := apiv1.GuestConfigurationAssignRequest{Policy: pkg, Version: version, Mode: mode, Parameters: ps}
			var out apiv1.GuestConfigurationAssignment
			if target.isGroup {
				out, err = op.AssignGroupGuestConfig(cmd.Context(), target.sub, target.rg, name, req)
			} else {
				out, err = op.AssignGuestConfig(cmd.Context(), target.machine.ID, name, req)
			}
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(out)
			}
			fmt.Fprintf(a.stdout, "Assigned %s to %s: %s %s in %s mode (sha256 %s)\nFollow its compliance with: arcagent fleet guestconfig status", out.Name, target.String(), out.Policy, out.Version, out.Mode, out.PackageSHA256)
			if !target.isGroup {
				fmt.Fprintf(a.stdout, " --machine %s", target.machine.Name)
			}
			fmt.Fprintln(a.stdout)
			return nil
		},
	}
	target.flags(cmd)
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "assignment name (required)")
	f.StringVar(&pkg, "package", "", "the package's <Publisher>.<Name>, e.g. Contoso.Baseline.SSH (required)")
	f.StringVar(&version, "version", "", "package version, e.g. 1.0 (required)")
	f.StringVar(&mode, "mode", "", "Audit, ApplyAndMonitor or ApplyAndAutoCorrect (required)")
	f.StringArrayVar(&params, "parameters", nil, "KEY=VALUE parameters, repeatable or comma-separated")
	return cmd
}

func newFleetGCRemoveCmd(a *app) *cobra.Command {
	var target gcTarget
	var name string
	cmd := &cobra.Command{
		Use:   "remove (--machine M | --resource-group RG [--subscription S]) --name N",
		Short: "Remove a guest configuration assignment from a machine or a resource group",
		Long: `remove takes the assignment out of the desired state of the machine, or of
every machine of the resource group. An assignment a machine gets from its
group is removed at the group. Settings already applied stay as they are.

  arcagent fleet guestconfig remove --machine web01 --name ssh
  arcagent fleet guestconfig remove --resource-group web --name ssh`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return errcode.New(errcode.Usage, "--name is required")
			}
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			if err := target.resolve(cmd, op); err != nil {
				return err
			}
			if target.isGroup {
				err = op.RemoveGroupGuestConfig(cmd.Context(), target.sub, target.rg, name)
			} else {
				err = op.RemoveGuestConfig(cmd.Context(), target.machine.ID, name)
			}
			if err == nil && !a.json {
				fmt.Fprintf(a.stdout, "Removed %s from %s\n", name, target.String())
			}
			return err
		},
	}
	target.flags(cmd)
	cmd.Flags().StringVar(&name, "name", "", "assignment name (required)")
	return cmd
}

func newFleetGCListCmd(a *app) *cobra.Command {
	var target gcTarget
	cmd := &cobra.Command{
		Use:   "list (--machine M | --resource-group RG [--subscription S])",
		Short: "List the guest configuration assignments of a machine (its own and its group's) or of a resource group",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			if err := target.resolve(cmd, op); err != nil {
				return err
			}
			var as []apiv1.GuestConfigurationAssignment
			if target.isGroup {
				if as, err = op.ListGroupGuestConfig(cmd.Context(), target.sub, target.rg); err != nil {
					return err
				}
			} else {
				vs, err := op.GuestConfig(cmd.Context(), target.machine.ID)
				if err != nil {
					return err
				}
				for _, v := range vs {
					if v.Desired != nil {
						as = append(as, *v.Desired)
					}
				}
			}
			if a.json {
				if as == nil {
					as = []apiv1.GuestConfigurationAssignment{}
				}
				return a.printJSON(as)
			}
			var rows [][]string
			for _, x := range as {
				rows = append(rows, []string{x.Name, x.Policy, x.Version, x.Mode, fmtParams(x.Parameters), x.Scope})
			}
			return a.printTable([]string{"NAME", "PACKAGE", "VERSION", "MODE", "PARAMETERS", "SCOPE"}, rows, "SCOPE")
		},
	}
	target.flags(cmd)
	return cmd
}

func fmtParams(p map[string]string) string {
	if len(p) == 0 {
		return "-"
	}
	keys := slices.Sorted(maps.Keys(p))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + p[k]
	}
	return strings.Join(parts, ",")
}

func newFleetGCStatusCmd(a *app) *cobra.Command {
	var machine, sub, rg string
	cmd := &cobra.Command{
		Use:   "status [--machine M | --resource-group RG [--subscription S]] [-o json]",
		Short: "Show guest configuration compliance: per machine and assignment, or per resource of one machine",
		Long: `status shows compliance as the machines reported it. STATE is the reported
compliance (Compliant, NonCompliant, Error, NotApplied) once the machine
reports the assigned version and mode, Pending before that, and Removing
for an assignment the machine still reports but that is no longer assigned.

With --machine: one block per assignment, with a row per resource (id,
compliance, reason). Without: one row per machine and assignment over every
machine you may read, with the count of resources not compliant.

  arcagent fleet guestconfig status
  arcagent fleet guestconfig status --machine web01
  arcagent fleet guestconfig status --resource-group web -o json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if machine != "" && (sub != "" || rg != "") {
				return errcode.New(errcode.Usage, "give --machine, or --subscription/--resource-group, not both")
			}
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			if machine != "" {
				m, err := op.ResolveMachine(cmd.Context(), machine)
				if err != nil {
					return err
				}
				vs, err := op.GuestConfig(cmd.Context(), m.ID)
				if err != nil {
					return err
				}
				if a.json {
					return a.printJSON(vs)
				}
				return a.printMachineGC(m, vs)
			}
			sid, name, err := op.ResolveListScope(cmd.Context(), sub, rg)
			if err != nil {
				return err
			}
			ms, err := op.FleetGuestConfig(cmd.Context(), sid, name)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(ms)
			}
			var rows [][]string
			for _, m := range ms {
				for _, v := range m.Assignments {
					pkg, evaluated := "-", "-"
					if v.Desired != nil {
						pkg = v.Desired.Policy + " " + v.Desired.Version
					}
					if v.Reported != nil && !v.Reported.EvaluatedAt.IsZero() {
						evaluated = fmtTime(v.Reported.EvaluatedAt)
					}
					rows = append(rows, []string{m.Name, v.Name, pkg, v.State, fmt.Sprintf("%d/%d", v.NonCompliantResources, v.Resources), evaluated, oneLine(v.Reason)})
				}
			}
			return a.printTable([]string{"MACHINE", "ASSIGNMENT", "PACKAGE", "STATE", "NON-COMPLIANT", "EVALUATED", "REASON"}, rows, "REASON")
		},
	}
	f := cmd.Flags()
	f.StringVar(&machine, "machine", "", "one machine: its resources")
	f.StringVar(&rg, "resource-group", "", "only machines of this resource group (name or scope)")
	f.StringVar(&sub, "subscription", "", "only machines of this subscription")
	return cmd
}

// printMachineGC prints one block per assignment of a machine.
func (a *app) printMachineGC(m apiv1.Machine, vs []apiv1.GuestConfigurationView) error {
	if len(vs) == 0 {
		fmt.Fprintf(a.stdout, "%s has no guest configuration assignments\n", m.Name)
		return nil
	}
	for i, v := range vs {
		if i > 0 {
			fmt.Fprintln(a.stdout)
		}
		pairs := [][]string{{"ASSIGNMENT", v.Name}, {"STATE", v.State}}
		if v.Desired != nil {
			pairs = append(pairs, []string{"PACKAGE", v.Desired.Policy + " " + v.Desired.Version}, []string{"MODE", v.Desired.Mode}, []string{"SCOPE", v.Desired.Scope})
		}
		if v.Reported != nil && !v.Reported.EvaluatedAt.IsZero() {
			pairs = append(pairs, []string{"EVALUATED", fmtTime(v.Reported.EvaluatedAt)})
		}
		if v.Reason != "" {
			pairs = append(pairs, []string{"REASON", oneLine(v.Reason)})
		}
		pairs = append(pairs, []string{"NON-COMPLIANT", fmt.Sprintf("%d of %d resources", v.NonCompliantResources, v.Resources)})
		if err := a.printPairs(pairs); err != nil {
			return err
		}
		if v.Reported == nil || len(v.Reported.Resources) == 0 {
			continue
		}
		fmt.Fprintln(a.stdout)
		var rows [][]string
		for _, r := range v.Reported.Resources {
			rows = append(rows, []string{r.ID, r.Type, r.Compliance, oneLine(r.Reason)})
		}
		if err := a.printTable([]string{"RESOURCE", "TYPE", "COMPLIANCE", "REASON"}, rows, "REASON"); err != nil {
			return err
		}
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
