package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/audit"
	"github.com/arcagent/arcagent/audit/releasefacts"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/buildinfo"
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
	fl.StringVar(&f.catalogName, "catalog-name", "releases", "name of the signed catalog (the name its keys are trusted for)")
	fl.IntVar(&f.threshold, "catalog-threshold", 1, "distinct trusted keys that must have signed the catalog")
	fl.StringVar(&f.trustDir, "trust-dir", "", "trust store for --catalog, which also records the last catalog version (default the agent's trust directory)")
	fl.StringArrayVar(&f.windows, "support-window", nil, "support window: releases published within it are supported, e.g. 12mo (default), 1y, 26w, 180d; PRODUCT=LENGTH for one product; repeatable")
	fl.StringArrayVar(&f.supported, "supported", nil, "PRODUCT=CONSTRAINT: a semver constraint instead of the window, e.g. arcagent='>=1.40.0'; repeatable")
	fl.BoolVar(&f.offline, "offline", false, "use only the GitHub responses cached by an earlier run; no network")
	fl.BoolVar(&f.prereleases, "include-prereleases", false, "count pre-releases as releases (latest and behind)")
	fl.StringVar(&f.cacheDir, "release-cache", "", "directory of cached GitHub responses with ETags (default $XDG_CACHE_HOME/arcagent/releases)")
	fl.DurationVar(&f.waitRateLimit, "wait-rate-limit", 0, "when GitHub rate-limits, wait once for the reset if it is at most this long (e.g. 15m); default fail at once")
}

// configured reports whether a release source is given.
func (f *releaseFlags) configured() bool {
	return len(f.githubRepos) > 0 || f.catalog != "" || f.config != ""
}

// merged applies the --release-config file under the flags: a source given
// by flags replaces the file's; policies from flags come after the file's,
// so they win for the same product.
func (f *releaseFlags) merged() (*releaseFlags, error) {
	if f.config == "" {
		return f, nil
	}
	c, err := releases.LoadConfig(f.config)
	if err != nil {
		return nil, err
	}
	m := *f
	repos, windows, supported := c.Flags()
	if len(f.githubRepos) == 0 && f.catalog == "" {
		m.githubRepos = repos
		if c.GitHub != nil && m.githubURL == "" {
			m.githubURL = c.GitHub.URL
		}
		if c.Catalog != nil {
			m.catalog = c.Catalog.Location
			if c.Catalog.Name != "" && f.catalogName == "releases" {
				m.catalogName = c.Catalog.Name
			}
			if c.Catalog.Threshold > 0 && f.threshold == 1 {
				m.threshold = c.Catalog.Threshold
			}
			if m.trustDir == "" {
				m.trustDir = c.Catalog.TrustDir
			}
		}
		if !m.configuredSource() {
			return nil, errcode.New(releases.CodeBadSource, "release configuration %s names no source: give releases.github.repos or releases.catalog.location", f.config)
		}
	}
	m.windows = append(windows, f.windows...)
	m.supported = append(supported, f.supported...)
	m.offline = f.offline || c.Offline
	m.prereleases = f.prereleases || c.IncludePrereleases
	if m.cacheDir == "" {
		m.cacheDir = c.Cache
	}
	if m.waitRateLimit == 0 {
		m.waitRateLimit = c.WaitRateLimit
	}
	return &m, nil
}

func (f *releaseFlags) configuredSource() bool { return len(f.githubRepos) > 0 || f.catalog != "" }

// checker builds the release checker from the flags and --release-config.
func (f *releaseFlags) checker(ctx context.Context, a *app) (*releases.Checker, error) {
	f, err := f.merged()
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return errcode.New(releases.CodeBadSource, format, args...)
	}
	if len(f.githubRepos) > 0 && f.catalog != "" {
		return nil, bad("give either --github-repo or --catalog, not both")
	}
	pol := releases.Policies{Default: releases.Policy{IncludePrereleases: f.prereleases}, ByProduct: map[string]releases.Policy{}}
	named := []string{}
	policyFor := func(p string) releases.Policy {
		if q, ok := pol.ByProduct[p]; ok {
			return q
		}
		return pol.Default
	}
	for _, w := range f.windows {
		prod, length, ok := strings.Cut(w, "=")
		if !ok {
			length, prod = prod, ""
		}
		win, err := releases.ParseWindow(length)
		if err != nil {
			return nil, errcode.Wrap(releases.CodeBadPolicy, err, "--support-window")
		}
		if prod == "" {
			pol.Default.Window = win
			continue
		}
		prod = releases.ProductName(prod)
		q := policyFor(prod)
		q.Window = win
		pol.ByProduct[prod] = q
		named = append(named, prod)
	}
	for _, s := range f.supported {
		prod, c, ok := strings.Cut(s, "=")
		prod = releases.ProductName(prod)
		if !ok || prod == "" || strings.TrimSpace(c) == "" {
			return nil, errcode.New(releases.CodeBadPolicy, "--supported %q: use PRODUCT=CONSTRAINT, e.g. arcagent='>=1.40.0'", s)
		}
		if _, err := releases.ParseConstraint(c); err != nil {
			return nil, errcode.Wrap(releases.CodeBadPolicy, err, "--supported %s: %q is not a semver constraint", prod, c)
		}
		q := policyFor(prod)
		q.Constraint = strings.TrimSpace(c)
		pol.ByProduct[prod] = q
		named = append(named, prod)
	}
	// Products without their own entry follow the default (window and
	// pre-releases) set by later flags too.
	for p, q := range pol.ByProduct {
		if q.Window == (releases.Window{}) {
			q.Window = pol.Default.Window
		}
		q.IncludePrereleases = f.prereleases
		pol.ByProduct[p] = q
	}
	var src releases.Source
	switch {
	case f.catalog != "":
		if f.offline {
			return nil, bad("--offline applies to GitHub; a --catalog FILE is read locally already")
		}
		store, err := a.loadTrust(f.trustDir)
		if err != nil {
			return nil, err
		}
		stateDir := f.trustDir
		if stateDir == "" {
			stateDir = a.layout().TrustDir()
		}
		cs, err := releases.OpenCatalog(ctx, releases.CatalogOptions{Location: f.catalog, Name: f.catalogName, Threshold: f.threshold, Trust: store, StateDir: stateDir})
		if err != nil {
			return nil, err
		}
		src = cs
	default:
		repos := map[string]string{}
		for _, r := range f.githubRepos {
			prod, repo, ok := strings.Cut(r, "=")
			if !ok {
				prod, repo = releases.AgentProduct, r
			}
			prod = releases.ProductName(prod)
			if prev, dup := repos[prod]; dup && prev != repo {
				return nil, bad("--github-repo names two repositories for %s: %s and %s", prod, prev, repo)
			}
			repos[prod] = strings.TrimSpace(repo)
		}
		cache := f.cacheDir
		if cache == "" {
			if d, err := os.UserCacheDir(); err == nil {
				cache = filepath.Join(d, "arcagent", "releases")
			}
		}
		gs, err := releases.NewGitHubSource(releases.GitHubOptions{
			BaseURL: f.githubURL, Token: os.Getenv("GITHUB_TOKEN"), Repos: repos, CacheDir: cache,
			Offline: f.offline, MaxWait: f.waitRateLimit, Log: a.log,
		})
		if err != nil {
			return nil, err
		}
		src = gs
	}
	c := &releases.Checker{Source: src, Policies: pol, Log: a.log}
	for _, p := range named {
		if _, err := c.Require(ctx, p); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// collector returns the audit releases collector, or nil when no source is
// configured (the currency rules then stay not applicable).
func (f *releaseFlags) collector(ctx context.Context, a *app) (audit.ReleasesCollector, error) {
	if !f.configured() {
		return nil, nil
	}
	c, err := f.checker(ctx, a)
	if err != nil {
		return nil, err
	}
	return &releasefacts.Collector{Checker: c}, nil
}

type fleetCurrencyFlags struct {
	releases  releaseFlags
	inventory string
	format    string
	outputs   []string
	failOn    string
	all       bool
}

func newFleetCurrencyCmd(a *app) *cobra.Command {
	f := &fleetCurrencyFlags{}
	cmd := &cobra.Command{
		Use:   "currency --inventory FILE (--github-repo PRODUCT=OWNER/REPO… | --catalog FILE|URL)",
		Short: "Report which agents and extensions of a fleet are behind or out of support",
		Long: `currency reads a fleet inventory (JSON or CSV: machine name, agent version,
installed extensions with versions) and checks every version against a release
source: GitHub releases (or GitHub Enterprise with --github-url) or a signed
catalog. Each agent and extension is current (the latest release), behind
(supported, N releases behind) or unsupported (older than the support window,
default the releases of the last 12 months, or outside --supported). A version
that cannot be parsed, and a bad inventory row, is reported as unknown.

The inventory is streamed: memory stays flat however many machines it holds.
JSON and CSV reports hold every result; table and Markdown list the findings
(--all lists current ones too); SARIF holds findings (ARC-CUR-001 behind,
ARC-CUR-002 unsupported, ARC-CUR-003 unknown).

Exit codes: 0 done (and nothing at or above --fail-on); 1 findings at or
above --fail-on (unknown versions count at either level); 2 bad usage or
input; 3 the source could not be read.`,
		Example: `  arcagent fleet currency --inventory fleet.json --github-repo arcagent/arcagent \
      --github-repo Contoso.Monitoring.StatusReporter=contoso/status-reporter
  arcagent fleet currency --inventory fleet.csv --catalog https://releases.example.com/releases.sig.json \
      --fail-on unsupported -o table -o sarif=currency.sarif
  arcagent fleet currency --inventory fleet.json --github-url https://ghe.example.com/api/v3/ \
      --github-repo arcagent=platform/arcagent --supported arcagent='>=1.40.0' --offline`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runFleetCurrency(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.inventory, "inventory", "", "inventory file, JSON or CSV (- for standard input)")
	fl.StringVar(&f.format, "inventory-format", "", "json or csv (default: by the file's content)")
	fl.StringArrayVarP(&f.outputs, "format", "o", nil, "output FORMAT[=FILE], repeatable: "+strings.Join(releases.Formats(), ", ")+" (default table, or json with -j)")
	fl.StringVar(&f.failOn, "fail-on", "", "exit 1 when a version is behind or unsupported: behind, unsupported (default never)")
	fl.BoolVar(&f.all, "all", false, "list current versions too in table and Markdown")
	f.releases.register(fl)
	return cmd
}

func (a *app) runFleetCurrency(ctx context.Context, f *fleetCurrencyFlags) error {
	if f.inventory == "" {
		return errcode.New(errcode.Usage, "fleet currency needs --inventory FILE")
	}
	if !f.releases.configured() {
		return errcode.New(releases.CodeBadSource, "no release source: give --github-repo PRODUCT=OWNER/REPO, --catalog FILE|URL or --release-config FILE")
	}
	failOn, err := releases.ParseFailOn(strings.ToLower(strings.TrimSpace(f.failOn)))
	if err != nil {
		return err
	}
	format := strings.ToLower(f.format)
	if format != "" && format != releases.FormatJSON && format != releases.FormatCSV {
		return errcode.New(releases.CodeBadInventory, "--inventory-format %q: use json or csv", f.format)
	}
	outs, err := reports.ParseOutputsFor(a.defaultOutputs(f.outputs), func(format string) error {
		_, err := releases.NewWriter(format, io.Discard, releases.WriterOptions{})
		return err
	})
	if err != nil {
		return errcode.Wrap(releases.CodeBadOutput, err, "-o")
	}
	var in io.Reader = a.stdin
	if f.inventory != "-" {
		fh, err := os.Open(f.inventory)
		if err != nil {
			return errcode.Wrap(releases.CodeBadInventory, err, "inventory %s", f.inventory)
		}
		defer fh.Close()
		in = fh
	}
	checker, err := f.releases.checker(ctx, a)
	if err != nil {
		return err
	}
	bi := buildinfo.Get()
	head := releases.Header{Tool: "arcagent", Version: bi.Version, Inventory: f.inventory, Source: checker.Source.String(), GeneratedAt: time.Now().UTC(), FailOn: failOn}
	progress := a.progress("checked %d machines")
	var sum *releases.Summary
	writers := make([]releases.RowWriter, len(outs))
	// Open every file output (atomically: a failed run leaves none), then
	// run the check once, writing all formats as rows come.
	var open func(i int) error
	open = func(i int) error {
		if i == len(outs) {
			var err error
			sum, err = releases.Check(ctx, releases.CheckOptions{Inventory: in, Format: format, Checker: checker, Writers: writers, Header: head, Progress: progress.update})
			return err
		}
		o := outs[i]
		if o.ToStdout() {
			writers[i], _ = releases.NewWriter(o.Format, a.stdout, releases.WriterOptions{All: f.all})
			return open(i + 1)
		}
		return layout.WriteAtomic(o.File, layout.WriteOptions{Mode: 0o644}, func(w io.Writer) error {
			writers[i], _ = releases.NewWriter(o.Format, w, releases.WriterOptions{All: f.all})
			return open(i + 1)
		})
	}
	err = open(0)
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
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
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
