package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/agent/proxy"
	"github.com/arcagent/arcagent/agent/upgrade"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/releases"
)

func init() { extraCommands = append(extraCommands, newUpgradeCmd) }

type upgradeFlags struct {
	version, catalog, catalogName, releaseConfig string
	threshold                                    int
	dryRun, noRollback, auto                     bool
}

func newUpgradeCmd(a *app) *cobra.Command {
	var f upgradeFlags
	cmd := &cobra.Command{
		Use:   "upgrade [--version V] [--catalog URL|FILE] [--dry-run]",
		Short: "Upgrade the agent from the signed release catalog (root only)",
		Long: `Upgrades the agent package to the newest version of the signed release
catalog (or --version V). The catalog is verified (trusted keys, threshold,
expiry, rollback); the package of this machine's architecture is
downloaded into /var/opt/azcmagent/upgrade and its size and SHA-256
checked against the signed entry before dpkg sees it. A downgrade or the
installed version is refused. The installed version's package is kept to
roll back to; the services that were running are restarted in order
(arcproxyd, himdsd, extd, gcad) and, when one does not start, the previous
package is reinstalled.

Without --catalog the catalog section of /var/opt/azcmagent/releases.yaml
is used. --auto is what the daily arcagent-upgrade.timer runs: it does
nothing unless automaticupgrade.enabled is true, and an up-to-date agent is
not an error.`,
		Example: `  sudo arcagent upgrade --catalog https://releases.example.com/releases.sig.json --dry-run
  sudo arcagent upgrade --catalog releases.sig.json --version 1.2.0`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return errcode.New(upgrade.CodeNotRoot, "arcagent upgrade installs packages and restarts services")
			}
			l := a.layout()
			settings, _, err := config.NewStore(l).Load()
			if err != nil {
				return err
			}
			if f.auto && !settings.EffectiveBool(config.AutoUpgradeEnable) {
				fmt.Fprintln(a.stdout, "automatic upgrade is off (automaticupgrade.enabled is false): nothing to do")
				return nil
			}
			hc, err := upgradeClient(l, settings)
			if err != nil {
				return err
			}
			o := upgrade.Options{Layout: l, Catalog: f.catalog, CatalogName: f.catalogName, Threshold: f.threshold,
				Version: f.version, DryRun: f.dryRun, NoRollback: f.noRollback, Log: a.log, HTTPClient: hc}
			if o.Catalog == "" {
				if err := fromReleaseConfig(&o, f.releaseConfig, l.Path(upgrade.DefaultConfig)); err != nil {
					return err
				}
			}
			store, err := a.loadTrust(o.TrustDir)
			if err != nil {
				return err
			}
			o.Trust = store
			res, err := upgrade.Run(cmd.Context(), o)
			if f.auto && errcode.Is(err, upgrade.CodeUpToDate) {
				fmt.Fprintf(a.stdout, "arcagent %s is the newest version of the catalog: nothing to do\n", res.From)
				return nil
			}
			if a.json && res != nil {
				if perr := a.printJSON(res); perr != nil {
					return perr
				}
			} else if res != nil {
				printUpgrade(a, res)
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.version, "version", "", "version to install (default: the newest in the catalog)")
	fl.StringVar(&f.catalog, "catalog", "", "signed release catalog, FILE or https://URL (default: the catalog of --release-config)")
	fl.StringVar(&f.catalogName, "catalog-name", "", `catalog name its keys are trusted for (default "releases")`)
	fl.IntVar(&f.threshold, "catalog-threshold", 0, "distinct trusted keys that must have signed (default 1)")
	fl.StringVar(&f.releaseConfig, "release-config", "", "YAML file whose releases.catalog section names the catalog (default /var/opt/azcmagent/releases.yaml)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "verify the catalog and say what would be installed; change nothing")
	fl.BoolVar(&f.noRollback, "no-rollback", false, "upgrade even without a package of the installed version to roll back to")
	fl.BoolVar(&f.auto, "auto", false, "the automatic upgrade: only when automaticupgrade.enabled is true; up to date is not an error")
	return cmd
}

// upgradeClient is the HTTP client of the catalog and package downloads:
// the agent's own route (the arc proxy, proxy.url or direct, as
// agent/proxy decides), trusting the system roots, since release hosts are
// not the control plane.
func upgradeClient(l layout.Layout, settings *config.Settings) (*http.Client, error) {
	server := ""
	if ac, err := himds.LoadAgentConfig(l); err == nil && ac != nil {
		server = ac.Server
	}
	tr, err := proxy.Transport(l, settings, server)
	if err != nil {
		return nil, err
	}
	tr.TLSClientConfig.RootCAs = nil
	return &http.Client{Transport: tr, Timeout: 10 * time.Minute}, nil
}

// fromReleaseConfig fills the catalog from the release configuration file.
func fromReleaseConfig(o *upgrade.Options, path, def string) error {
	if path == "" {
		path = def
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return errcode.New(errcode.Usage, "no release catalog: give --catalog FILE|https://URL, or write its catalog section in %s", path)
		}
	}
	c, err := releases.LoadConfig(path)
	if err != nil {
		return err
	}
	if c.Catalog == nil || c.Catalog.Location == "" {
		return errcode.New(errcode.Usage, "%s has no releases.catalog.location: upgrade needs a signed catalog", path)
	}
	o.Catalog = c.Catalog.Location
	if o.CatalogName == "" {
		o.CatalogName = c.Catalog.Name
	}
	if o.Threshold == 0 {
		o.Threshold = c.Catalog.Threshold
	}
	o.TrustDir = c.Catalog.TrustDir
	return nil
}

func printUpgrade(a *app, r *upgrade.Result) {
	for _, s := range r.Steps {
		fmt.Fprintf(a.stdout, "%-16s %-7s %s\n", s.Name, s.Status, s.Detail)
	}
	switch {
	case r.DryRun && r.To != "":
		fmt.Fprintf(a.stdout, "dry run: arcagent %s would be upgraded to %s\n", r.From, r.To)
	case r.Upgraded:
		fmt.Fprintf(a.stdout, "upgraded arcagent %s -> %s\n", r.From, r.To)
	case r.RolledBack:
		fmt.Fprintf(a.stdout, "rolled back: arcagent %s is installed again\n", r.From)
	}
}
