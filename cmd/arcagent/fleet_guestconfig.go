package main

import (
	"fmt"

	"github.com/spf13/cobra"

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
