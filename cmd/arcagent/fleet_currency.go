package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/audit"
	"github.com/arcagent/arcagent/audit/releasefacts"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/buildinfo"
	"github.com/arcagent/arcagent/internal/cli"
	"github.com/arcagent/arcagent/internal/table"
	"github.com/arcagent/arcagent/releases"
	"github.com/arcagent/arcagent/reports"
)

func init() { fleetCommands = append(fleetCommands, newFleetCurrencyCmd) }

// releaseFlags are the release-source flags shared by `audit` and
// `fleet currency`.
type releaseFlags struct {
	config        string
	githubRepos   []string
	githubURL     string
	catalog       string
	catalogName   string
	threshold     int
	trustDir      string
	windows       []string
	supported     []string
	offline       bool
	prereleases   bool
	cacheDir      string
	waitRateLimit time.Duration
}

func (f *releaseFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.config, "release-config", "", "YAML `FILE` whose releases: section gives the release source and support policy (flags win); see docs/releases.md")
	fl.StringArrayVar(&f.githubRepos, "github-repo", nil, "release source: PRODUCT=OWNER/REPO on GitHub, repeatable (OWNER/REPO alone is the agent, product arcagent; extensions are PUBLISHER.TYPE)")
	fl.StringVar(&f.githubURL, "github-url", "", "GitHub Enterprise API URL, e.g. https://ghe.example.com/api/v3/ (default api.github.com); GITHUB_TOKEN is sent when set")
	fl.StringVar(&f.catalog, "catalog", "", "release source: a signed catalog, FILE or https://URL (verified against the trust store; rollback and expiry refused)")
	fl.StringVar(&f.catalogName, "catalog-name", "", "name of the signed catalog (the name its keys are trusted for; default releases)")
	fl.IntVar(&f.threshold, "catalog-threshold", 0, "distinct trusted keys that must have signed the catalog (default 1)")
	fl.StringVar(&f.trustDir, "trust-dir", "", "trust store for --catalog, which also records the last catalog version (default the agent's trust directory)")
	fl.StringArrayVar(&f.windows, "support-window", nil, "support window: releases published within it are supported, e.g. 12mo (default), 1y, 26w, 180d; PRODUCT=LENGTH for one product; repeatable")
	fl.StringArrayVar(&f.supported, "supported", nil, "PRODUCT=CONSTRAINT: a semver constraint instead of the window, e.g. arcagent='>=1.40.0'; repeatable")
	fl.BoolVar(&f.offline, "offline", false, "use only the GitHub responses cached by an earlier run; no network")
	fl.BoolVar(&f.prereleases, "include-prereleases", false, "count pre-releases as releases (latest and behind)")
	fl.StringVar(&f.cacheDir, "release-cache", "", "directory of cached GitHub responses with ETags (default $XDG_CACHE_HOME/arcagent/releases)")
	fl.DurationVar(&f.waitRateLimit, "wait-rate-limit", 0, "when GitHub rate-limits, wait once for the reset if it is at most this long (e.g. 15m); default fail at once")
}

// options turns the flags into the release setup options.
func (f *releaseFlags) options(a *app) releases.SetupOptions {
	return releases.SetupOptions{
		Config: f.config, GitHubRepos: f.githubRepos, GitHubURL: f.githubURL, GitHubToken: os.Getenv("GITHUB_TOKEN"),
		Catalog: f.catalog, CatalogName: f.catalogName, Threshold: f.threshold,
		TrustDir: f.trustDir, DefaultTrustDir: a.layout().TrustDir(), LoadTrust: a.loadTrust,
		Windows: f.windows, Supported: f.supported, Offline: f.offline, Prereleases: f.prereleases,
		CacheDir: f.cacheDir, WaitRateLimit: f.waitRateLimit, Log: a.log,
	}
}

// collector returns the audit releases collector, or nil when no source is
// configured (the currency rules then stay not applicable).
func (f *releaseFlags) collector(ctx context.Context, a *app) (audit.ReleasesCollector, error) {
	o := f.options(a)
	if !o.Configured() {
		return nil, nil
	}
	c, err := releases.NewChecker(ctx, o)
	if err != nil {
		return nil, err
	}
	return &releasefacts.Collector{Checker: c}, nil
}

type fleetCurrencyFlags struct {
	releases  releaseFlags
	inventory string
	sub, rg   string
	format    string
	outputs   []string
	failOn    string
	all       bool
}

func newFleetCurrencyCmd(a *app) *cobra.Command {
	f := &fleetCurrencyFlags{}
	cmd := &cobra.Command{
		Use:   "currency [--inventory FILE] (--github-repo PRODUCT=OWNER/REPO… | --catalog FILE|URL)",
		Short: "Report which agents and extensions of a fleet are behind or out of support",
		Long: `currency reads a fleet inventory (machine name, agent version, installed
extensions with versions) and checks every version against a release source:
GitHub releases (or GitHub Enterprise with --github-url) or a signed catalog.

Without --inventory the fleet is read from the control plane you are logged in
to (` + "`arcagent fleet login`" + `): the machines you may read (machines/read), optionally
of one --subscription or --resource-group, each with the agent version and OS
its heartbeats report and the extensions of its last status report. With
--inventory FILE (JSON or CSV; - for standard input) it is read offline from
the file. Each agent and extension is current (the latest release), behind
(supported, N releases behind) or unsupported (older than the support window,
default the releases of the last 12 months, or outside --supported). A version
that cannot be parsed, and a bad inventory row, is reported as unknown.

The inventory is streamed: memory stays flat however many machines it holds.
JSON, CSV, JUnit and HTML reports hold every result; table and Markdown list
the findings (--all lists current ones too); SARIF holds findings (ARC-CUR-001
behind, ARC-CUR-002 unsupported, ARC-CUR-003 unknown). The inventory may be
the JSON of "arcagent fleet machines list -j" on standard input (--inventory -).

Exit codes: 0 done (and nothing at or above --fail-on); 1 findings at or
above --fail-on (unknown versions count at either level); 2 bad usage or
input; 3 the source could not be read.`,
		Example: `  arcagent fleet currency --github-repo arcagent/arcagent --resource-group web
  arcagent fleet machines list -j | arcagent fleet currency --inventory - --github-repo arcagent/arcagent
  arcagent fleet currency --inventory fleet.json --github-repo arcagent/arcagent \
      --github-repo Contoso.Monitoring.StatusReporter=contoso/status-reporter
  arcagent fleet currency --inventory fleet.csv --catalog https://releases.example.com/releases.sig.json \
      --fail-on unsupported -o table -o sarif=currency.sarif
  arcagent fleet currency --inventory fleet.json --github-url https://ghe.example.com/api/v3/ \
      --github-repo arcagent=platform/arcagent --supported arcagent='>=1.40.0' --offline`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runFleetCurrency(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.inventory, "inventory", "", "inventory file, JSON or CSV (- for standard input); default: the fleet of the logged-in control plane")
	fl.StringVar(&f.sub, "subscription", "", "with the control plane: only this subscription (name or id)")
	fl.StringVar(&f.rg, "resource-group", "", "with the control plane: only this resource group (name, with --subscription when not unique, or scope)")
	fl.StringVar(&f.format, "inventory-format", "", "json or csv (default: by the file's content)")
	fl.StringArrayVarP(&f.outputs, "format", "o", nil, "output FORMAT[=FILE], repeatable: "+strings.Join(currencyFormats(), ", ")+" (default table, or json with -j)")
	fl.StringVar(&f.failOn, "fail-on", "", "exit 1 when a version is behind or unsupported: behind, unsupported, or never (the default: report only)")
	fl.BoolVar(&f.all, "all", false, "list current versions too in table and Markdown")
	f.releases.register(fl)
	_ = cmd.RegisterFlagCompletionFunc("format", completeFormats(currencyFormats))
	_ = cmd.RegisterFlagCompletionFunc("fail-on", completeFixed("behind", "unsupported", "never"))
	_ = cmd.RegisterFlagCompletionFunc("inventory-format", completeFixed(releases.FormatJSON, releases.FormatCSV))
	return cmd
}

// currencyFormats are the -o formats of fleet currency, sorted as every
// command lists its formats.
func currencyFormats() []string { return slices.Sorted(slices.Values(releases.Formats())) }

func (a *app) runFleetCurrency(ctx context.Context, f *fleetCurrencyFlags) error {
	if f.inventory != "" && (f.sub != "" || f.rg != "") {
		return errcode.New(errcode.Usage, "--subscription and --resource-group select machines of the control plane; they do not apply to --inventory FILE")
	}
	failOn, err := releases.ParseFailOn(f.failOn)
	if err != nil {
		return err
	}
	format := strings.ToLower(f.format)
	if format != "" && format != releases.FormatJSON && format != releases.FormatCSV {
		return errcode.New(releases.CodeBadInventory, "--inventory-format %q: use json or csv", f.format)
	}
	outs, err := reports.ParseOutputsFor(a.defaultOutputs(f.outputs), releases.CheckFormat)
	if err != nil {
		return errcode.Wrap(releases.CodeBadOutput, err, "-o")
	}
	var in io.Reader = a.stdin
	var machines func(func(*releases.Machine) error) error
	name := f.inventory
	switch f.inventory {
	case "":
		op, l, err := a.fleetOperator()
		if err != nil {
			return err
		}
		sid, rg, err := op.ResolveListScope(ctx, f.sub, f.rg)
		if err != nil {
			return err
		}
		name = l.Server + "/v1/inventory"
		machines = fleetMachines(ctx, op, sid, rg)
	case "-":
	default:
		fh, err := os.Open(f.inventory)
		if err != nil {
			return errcode.Wrap(releases.CodeBadInventory, err, "inventory %s", f.inventory)
		}
		defer fh.Close()
		in = fh
	}
	checker, err := releases.NewChecker(ctx, f.releases.options(a))
	if err != nil {
		return err
	}
	bi := buildinfo.Get()
	head := releases.Header{Tool: "arcagent", Version: bi.Version, Inventory: name, Source: checker.Source.String(), GeneratedAt: time.Now().UTC(), FailOn: failOn}
	progress := a.progress("checked %d machines")
	sum, err := releases.WriteReports(ctx, releases.ReportOptions{
		CheckOptions: releases.CheckOptions{Inventory: in, Format: format, Machines: machines, Checker: checker, Header: head, Progress: progress.update},
		Outputs:      outs, Stdout: a.stdout, All: f.all, Width: table.Width(a.stdout),
	})
	progress.done()
	if err != nil {
		return err
	}
	a.log.Debug("fleet currency finished", "machines", sum.Machines, "results", sum.Results, "ms", sum.DurationMs)
	if sum.Gate {
		return silentError{errcode.ExitFindings}
	}
	return nil
}

// fleetMachines yields the control plane's fleet inventory as the
// machines of an inventory file.
func fleetMachines(ctx context.Context, op *cloud.Operator, sub, rg string) func(func(*releases.Machine) error) error {
	return func(fn func(*releases.Machine) error) error {
		var m releases.Machine
		i := 0
		return op.EachInventory(ctx, sub, rg, func(v *apiv1.MachineInventory) error {
			i++
			releases.MachineFromInventory(&m, v, i)
			return fn(&m)
		})
	}
}

// progressLine shows a progress count on a terminal's stderr; it does
// nothing when stderr is not a terminal.
type progressLine struct {
	a      *app
	format string
	last   time.Time
	shown  bool
}

func (a *app) progress(format string) *progressLine {
	p := &progressLine{format: format}
	if cli.IsTerminal(a.stderr) {
		p.a = a
	}
	return p
}

func (p *progressLine) update(n int) {
	if p.a == nil || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last, p.shown = time.Now(), true
	fmt.Fprintf(p.a.stderr, "\r"+p.format, n)
}

func (p *progressLine) done() {
	if p.shown {
		fmt.Fprint(p.a.stderr, "\r\033[K")
	}
}
