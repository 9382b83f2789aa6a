package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/saferead"
	"github.com/arcagent/arcagent/signing"
)

func init() {
	fleetCommands = append(fleetCommands, newFleetPackagesCmd, newFleetExtensionsCmd)
}

// Client-side bounds, the server's limits: a package zip, its envelope,
// public settings and protected settings.
const (
	fleetMaxPackage   = 64 << 20
	fleetMaxEnvelope  = 1 << 20
	fleetMaxSettings  = 256 << 10
	fleetMaxProtected = 64 << 10
)

func newFleetPackagesCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "packages", Aliases: []string{"package"}, Short: "Publish and list signed extension packages in the control plane's repository"}
	var sigPath string
	publish := &cobra.Command{
		Use:   "publish PKG.zip [--signature PKG.zip.sig.json]",
		Short: "Upload a signed extension package so it can be assigned to machines",
		Long: `publish uploads a package and its DSSE signature to the control plane's
package repository. The server checks that the signature file is a
well-formed envelope whose statement names this file (publisher, type,
version, sha256 and size); whether the signing key is trusted is decided on
each machine by its own trust store. A published version is never replaced:
publishing the same bytes again is a no-op, other bytes under the same
version are refused. Needs Microsoft.HybridCompute/extensionPackages/write
at / (Owner, Connected Machine Resource Administrator).

  arcagent package build examples/extensions/status-reporter --publisher Contoso.Monitoring --type StatusReporter --version 1.0.0
  arcagent package sign Contoso.Monitoring.StatusReporter-1.0.0.zip --key signer.key
  arcagent fleet packages publish Contoso.Monitoring.StatusReporter-1.0.0.zip`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			zipPath := args[0]
			req, err := readPublication(zipPath, sigPath)
			if err != nil {
				return err
			}
			info, err := a.publishPackage(cmd, zipPath, req)
			if err != nil || a.json {
				return err
			}
			if info.Kind == apiv1.PackageKindGuestConfig {
				fmt.Fprintf(a.stdout, "Published guest configuration package %s (sha256 %s, %d bytes)\nAssign it with: arcagent fleet guestconfig assign --machine M --name N --package %s.%s --version %s --mode Audit\n",
					info.FileName, info.SHA256, info.Size, info.Publisher, info.Type, info.Version)
				return nil
			}
			fmt.Fprintf(a.stdout, "Published %s (sha256 %s, %d bytes)\nAssign it with: arcagent fleet extensions set --machine M --name N --publisher %s --type %s --version %s\n",
				info.FileName, info.SHA256, info.Size, info.Publisher, info.Type, info.Version)
			return nil
		},
	}
	publish.Flags().StringVar(&sigPath, "signature", "", "the package's DSSE signature file (default PKG.zip.sig.json)")
	var pub, typ, kind string
	list := &cobra.Command{
		Use:   "list [--publisher P] [--type T] [--kind extension|guestconfig]",
		Short: "List published packages",
		Long: `list shows the packages in the repository with their sha256, size and who
published them. Needs Microsoft.HybridCompute/extensionPackages/read at /
(Reader and above).

  arcagent fleet packages list
  arcagent fleet packages list --publisher Contoso.Monitoring -j`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			ps, err := op.ListPackages(cmd.Context(), pub, typ, kind)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(ps)
			}
			var rows [][]string
			for _, p := range ps {
				rows = append(rows, []string{p.Kind, p.Publisher, p.Type, p.Version, p.SHA256, fmt.Sprint(p.Size), fmtTime(p.PublishedAt), p.PublishedBy})
			}
			return a.printTable([]string{"KIND", "PUBLISHER", "TYPE", "VERSION", "SHA256", "SIZE", "PUBLISHED", "BY"}, rows, "SHA256")
		},
	}
	list.Flags().StringVar(&pub, "publisher", "", "only this publisher")
	list.Flags().StringVar(&typ, "type", "", "only this type")
	list.Flags().StringVar(&kind, "kind", "", "only packages of this kind: extension or guestconfig")
	cmd.AddCommand(publish, list)
	return cmd
}

// readPublication reads a package zip and its signature file (default
// PKG.zip.sig.json) within the server's limits.
func readPublication(zipPath, sigPath string) (apiv1.PublishPackageRequest, error) {
	if sigPath == "" {
		sigPath = zipPath + signing.SignatureSuffix
	}
	zb, err := saferead.File(zipPath, fleetMaxPackage)
	if err != nil {
		return apiv1.PublishPackageRequest{}, errcode.Wrap(errcode.Usage, err, "read the package %s (at most %d MiB)", zipPath, fleetMaxPackage>>20)
	}
	env, err := saferead.File(sigPath, fleetMaxEnvelope)
	if err != nil {
		return apiv1.PublishPackageRequest{}, errcode.Wrap(errcode.Usage, err, "read the signature %s: sign the package with `arcagent package sign %s --key KEY`, or name the file with --signature", sigPath, zipPath)
	}
	if !json.Valid(env) {
		return apiv1.PublishPackageRequest{}, errcode.New(errcode.Usage, "the signature %s is not JSON: give the .sig.json file `arcagent package sign` wrote", sigPath)
	}
	return apiv1.PublishPackageRequest{Package: zb, Envelope: env}, nil
}

// publishPackage uploads a read publication; with -o json it prints the
// result, else it notes a file published under another (its signed) name.
func (a *app) publishPackage(cmd *cobra.Command, zipPath string, req apiv1.PublishPackageRequest) (apiv1.PackageInfo, error) {
	op, _, err := a.fleetOperator()
	if err != nil {
		return apiv1.PackageInfo{}, err
	}
	info, err := op.PublishPackage(cmd.Context(), req)
	if err != nil {
		return info, err
	}
	if a.json {
		return info, a.printJSON(info)
	}
	if base := filepath.Base(zipPath); base != info.FileName {
		fmt.Fprintf(a.stderr, "note: %s is published under its signed name %s\n", base, info.FileName)
	}
	return info, nil
}

// readJSONObject reads a JSON object given as @FILE or @- (stdin); what
// names the flag in errors. The content is never quoted in an error.
func (a *app) readJSONObject(what, ref string, limit int64, stdinUsed *bool) ([]byte, error) {
	var b []byte
	var err error
	switch {
	case ref == "@-":
		if *stdinUsed {
			return nil, errcode.New(errcode.Usage, "%s: standard input is already used by another flag; give one of them as @FILE", what)
		}
		*stdinUsed = true
		b, err = io.ReadAll(io.LimitReader(a.stdin, limit+1))
		if err != nil {
			return nil, errcode.Wrap(errcode.Usage, err, "%s: read standard input", what)
		}
		if int64(len(b)) > limit {
			return nil, errcode.New(errcode.Usage, "%s: more than %d bytes on standard input", what, limit)
		}
	case strings.HasPrefix(ref, "@"):
		b, err = saferead.File(ref[1:], limit)
		if err != nil {
			return nil, errcode.Wrap(errcode.Usage, err, "%s: read %s (at most %d bytes)", what, ref[1:], limit)
		}
	default:
		b = []byte(ref)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return nil, errcode.New(errcode.Usage, "%s must be a JSON object, e.g. {\"key\": \"value\"}", what)
	}
	return b, nil
}

func newFleetExtensionsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "extensions", Aliases: []string{"extension"}, Short: "Assign extensions to machines, list their state, remove them"}
	var machine, name, pub, typ, version, settings, protected string
	set := &cobra.Command{
		Use:   "set --machine M --name N --publisher P --type T --version V [--settings JSON|@FILE] [--protected-settings @FILE|@-]",
		Short: "Assign an extension to a machine, or change its version or settings",
		Long: `set writes the extension into the machine's desired state; the machine's
extension manager (extd) picks it up at its next poll, checks its local
policy and the package signature, and installs or updates it. The package
Publisher.Type-Version must be published (` + "`arcagent fleet packages publish`" + `); the
assignment pins its sha256. Setting the same values again changes nothing.

--settings is a JSON object, given inline, as @FILE or as @- (stdin).
--protected-settings is a JSON object for secrets, given ONLY as @FILE or
@- (stdin), never on the command line, so it stays out of shell history and
the process list. The server seals it to the machine's key (HPKE) before it
stores anything: only that machine can read it.

  arcagent fleet extensions set --machine web01 --name monitor \
      --publisher Contoso.Monitoring --type StatusReporter --version 1.0.0 \
      --settings '{"interval": 30}' --protected-settings @secrets.json
  vault read -field=json secret/monitor | arcagent fleet extensions set --machine web01 \
      --name monitor --publisher Contoso.Monitoring --type StatusReporter --version 1.0.0 --protected-settings @-`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			for flag, v := range map[string]string{"--machine": machine, "--name": name, "--publisher": pub, "--type": typ, "--version": version} {
				if v == "" {
					return errcode.New(errcode.Usage, "%s is required", flag)
				}
			}
			req := apiv1.SetExtensionRequest{Publisher: pub, Type: typ, Version: version}
			stdinUsed := false
			if settings != "" {
				b, err := a.readJSONObject("--settings", settings, fleetMaxSettings, &stdinUsed)
				if err != nil {
					return err
				}
				dec := json.NewDecoder(bytes.NewReader(b))
				dec.UseNumber() // keep numbers exactly as written
				if err := dec.Decode(&req.Settings); err != nil {
					return errcode.Wrap(errcode.Usage, err, "--settings must be a JSON object")
				}
			}
			if protected != "" {
				if !strings.HasPrefix(protected, "@") {
					return errcode.New(errcode.Usage, "--protected-settings takes @FILE or @- (standard input) only: a value on the command line would stay in shell history and be visible to every user in the process list")
				}
				b, err := a.readJSONObject("--protected-settings", protected, fleetMaxProtected, &stdinUsed)
				if err != nil {
					return err
				}
				if fi, err := os.Stat(protected[1:]); protected != "@-" && err == nil && fi.Mode().Perm()&0o077 != 0 {
					fmt.Fprintf(a.stderr, "warning: %s holds secrets but is readable by other users (mode %04o): chmod 600 it, or pipe it with @-\n", protected[1:], fi.Mode().Perm())
				}
				req.ProtectedSettings = b
			}
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			m, err := op.ResolveMachine(cmd.Context(), machine)
			if err != nil {
				return err
			}
			spec, err := op.SetExtension(cmd.Context(), m.ID, name, req)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(spec)
			}
			extra := ""
			if req.ProtectedSettings != nil {
				extra = ", protected settings sealed to the machine key"
			}
			fmt.Fprintf(a.stdout, "Assigned %s to %s: %s.%s %s (sha256 %s%s)\nThe machine applies it at its next poll; follow it with: arcagent fleet extensions list --machine %s\n",
				spec.Name, m.Name, spec.Publisher, spec.Type, spec.Version, spec.PackageSHA256, extra, m.Name)
			return nil
		},
	}
	f := set.Flags()
	f.StringVar(&machine, "machine", "", "machine name, id or resource id (required)")
	f.StringVar(&name, "name", "", "extension name on that machine (required)")
	f.StringVar(&pub, "publisher", "", "package publisher, e.g. Contoso.Monitoring (required)")
	f.StringVar(&typ, "type", "", "package type, e.g. StatusReporter (required)")
	f.StringVar(&version, "version", "", "package version, e.g. 1.0.0 (required)")
	f.StringVar(&settings, "settings", "", "public settings: a JSON object, @FILE or @-")
	f.StringVar(&protected, "protected-settings", "", "secret settings: @FILE or @- only (a JSON object)")

	var lmachine string
	list := &cobra.Command{
		Use:   "list --machine M",
		Short: "List a machine's extensions: desired version next to the reported one, state and reason",
		Long: `list puts each assigned extension next to what the machine last reported.
STATE is the reported state (Succeeded, Failed, Transitioning) once the
machine reports the desired version, Pending before that, and Removing for
an extension the machine still reports but that is no longer assigned.
REASON says why (the handler's or the local policy's message).

  arcagent fleet extensions list --machine web01
  arcagent fleet extensions list --machine web01 -j`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lmachine == "" {
				return errcode.New(errcode.Usage, "--machine is required")
			}
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			m, err := op.ResolveMachine(cmd.Context(), lmachine)
			if err != nil {
				return err
			}
			vs, err := op.ListExtensions(cmd.Context(), m.ID)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(vs)
			}
			var rows [][]string
			for _, v := range vs {
				desired, reported := "-", "-"
				if v.Desired != nil {
					desired = v.Desired.Publisher + "." + v.Desired.Type + " " + v.Desired.Version
				}
				if v.Reported != nil && v.Reported.Version != "" {
					reported = v.Reported.Version
				}
				rows = append(rows, []string{v.Name, desired, reported, v.State, strings.Join(strings.Fields(v.Reason), " ")})
			}
			return a.printTable([]string{"NAME", "DESIRED", "REPORTED", "STATE", "REASON"}, rows, "REASON")
		},
	}
	list.Flags().StringVar(&lmachine, "machine", "", "machine name, id or resource id (required)")

	var rmachine, rname string
	remove := &cobra.Command{
		Use:   "remove --machine M --name N",
		Short: "Remove an extension from a machine's desired state; the machine disables and uninstalls it",
		Long: `remove takes the extension out of the machine's desired state. At its next
poll the machine's extension manager disables and uninstalls it; until it
reports so, ` + "`fleet extensions list`" + ` shows it as Removing.

  arcagent fleet extensions remove --machine web01 --name monitor`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rmachine == "" || rname == "" {
				return errcode.New(errcode.Usage, "--machine and --name are required")
			}
			op, _, err := a.fleetOperator()
			if err != nil {
				return err
			}
			m, err := op.ResolveMachine(cmd.Context(), rmachine)
			if err != nil {
				return err
			}
			if err := op.RemoveExtension(cmd.Context(), m.ID, rname); err != nil {
				return err
			}
			if !a.json {
				fmt.Fprintf(a.stdout, "Removed %s from %s; the machine uninstalls it at its next poll\n", rname, m.Name)
			}
			return nil
		},
	}
	remove.Flags().StringVar(&rmachine, "machine", "", "machine name, id or resource id (required)")
	remove.Flags().StringVar(&rname, "name", "", "extension name (required)")
	cmd.AddCommand(set, list, remove)
	return cmd
}
