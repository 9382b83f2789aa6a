package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/cli"
	"github.com/arcagent/arcagent/signing"
)

func init() { extraCommands = append(extraCommands, newPackageCmd, newTrustCmd) }

// trustOptions returns how the trust store is checked: the owner check is
// skipped, with a warning, only under --root when not running as root.
func (a *app) trustOptions() []signing.TrustOption {
	if os.Geteuid() != 0 && !a.layout().IsSystemRoot() {
		warned := false
		return []signing.TrustOption{signing.AllowNonRootOwner(func(msg string) {
			if !warned {
				a.warnf("%s", msg)
				warned = true
			}
		})}
	}
	return nil
}

// loadTrust loads the trust store in dir (the layout's trust directory when empty).
func (a *app) loadTrust(dir string) (*signing.TrustStore, error) {
	if dir == "" {
		dir = a.layout().TrustDir()
	}
	return signing.LoadTrustStore(dir, a.trustOptions()...)
}

type trustAddOptions struct {
	name       string
	keyFile    string
	publishers []string
	catalogs   []string
}

func newTrustCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Manage the keys trusted to sign extension packages and catalogs",
		Long: `The trust store (/var/opt/azcmagent/trust) holds the public keys whose
signatures arcagent accepts. Each key may sign only for the publishers (and
catalogs) named for it. The store is refused when it, or a file in it, is
group- or world-writable or not owned by root.`,
	}
	cmd.AddCommand(newTrustAddCmd(a), newTrustListCmd(a), newTrustRemoveCmd(a))
	mapPermissionErrors(cmd)
	return cmd
}

func newTrustAddCmd(a *app) *cobra.Command {
	var o trustAddOptions
	cmd := &cobra.Command{
		Use:   "add NAME --key PUB.pem --publisher P [--publisher P2] [--catalog C]",
		Short: "Trust a public key for the named publishers and catalogs",
		Example: `  arcagent trust add contoso --key contoso.pub --publisher Contoso.Monitoring
  arcagent trust add release-1 --key rel1.pub --catalog extensions --catalog agent`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			if o.keyFile == "" {
				return errcode.New(errcode.Usage, "trust add needs --key PUB.pem")
			}
			pemBytes, err := os.ReadFile(o.keyFile)
			if err != nil {
				return errcode.Wrap(signing.CodeFileAccess, err, "read %s", o.keyFile)
			}
			k, err := signing.AddTrustedKey(cmd.Context(), a.layout().TrustDir(), signing.AddKeyOptions{
				Name: o.name, PublicKeyPEM: pemBytes, Publishers: splitList(o.publishers), Catalogs: splitList(o.catalogs),
			}, a.trustOptions()...)
			if err != nil {
				return err
			}
			a.log.Info("trust entry added", "name", k.Name, "keyId", k.KeyID)
			if a.json {
				return a.printJSON(k)
			}
			fmt.Fprintf(a.stdout, "trusted %s (%s %s)\n", k.Name, k.Algorithm, k.KeyID)
			if len(k.Publishers) > 0 {
				fmt.Fprintf(a.stdout, "  may sign for publishers: %s\n", strings.Join(k.Publishers, ", "))
			}
			if len(k.Catalogs) > 0 {
				fmt.Fprintf(a.stdout, "  may sign catalogs: %s\n", strings.Join(k.Catalogs, ", "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.keyFile, "key", "", "PEM public key file (ECDSA P-256 or Ed25519)")
	f.StringSliceVar(&o.publishers, "publisher", nil, "publisher this key may sign for (repeatable or comma-separated)")
	f.StringSliceVar(&o.catalogs, "catalog", nil, "catalog this key may sign (repeatable or comma-separated)")
	return cmd
}

func newTrustListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the trusted keys",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := a.loadTrust("")
			if err != nil {
				return err
			}
			if a.json {
				keys := store.Keys
				if keys == nil {
					keys = []*signing.TrustedKey{}
				}
				return a.printJSON(map[string]any{"dir": store.Dir, "keys": keys})
			}
			if len(store.Keys) == 0 {
				fmt.Fprintf(a.stdout, "no trusted keys in %s\n", store.Dir)
				return nil
			}
			rows := make([][]string, 0, len(store.Keys))
			for _, k := range store.Keys {
				rows = append(rows, []string{k.Name, string(k.Algorithm), k.KeyID, dash(strings.Join(k.Publishers, ",")), dash(strings.Join(k.Catalogs, ",")), cli.Time(k.Added)})
			}
			return a.printTable([]string{"NAME", "ALGORITHM", "KEY ID", "PUBLISHERS", "CATALOGS", "ADDED"}, rows, "")
		},
	}
}

func newTrustRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Stop trusting a key",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := signing.RemoveTrustedKey(cmd.Context(), a.layout().TrustDir(), args[0], a.trustOptions()...); err != nil {
				return err
			}
			a.log.Info("trust entry removed", "name", args[0])
			if a.json {
				return a.printJSON(map[string]string{"removed": args[0]})
			}
			fmt.Fprintf(a.stdout, "removed %s\n", args[0])
			return nil
		},
	}
}

// splitList flattens repeated and comma-separated flag values.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
