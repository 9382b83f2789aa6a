package releases

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/arcagent/arcagent/signing"
)

// SetupOptions name a release source and support policy the way the
// command line and a --release-config file do. Empty fields are unset.
type SetupOptions struct {
	// Config is a YAML file whose releases: section gives the source and
	// policy; the fields below win over it (a source given here replaces
	// the file's, policies given here come after the file's).
	Config string
	// GitHubRepos are PRODUCT=OWNER/REPO (OWNER/REPO alone is the agent).
	GitHubRepos []string
	GitHubURL   string
	GitHubToken string
	// Catalog is a signed catalog, FILE or https://URL.
	Catalog     string
	CatalogName string // "" is "releases"
	Threshold   int    // 0 is 1
	// TrustDir is the trust store of the catalog, which also keeps its last
	// version ("" is DefaultTrustDir).
	TrustDir        string
	DefaultTrustDir string
	// LoadTrust opens the trust store in a directory.
	LoadTrust func(dir string) (*signing.TrustStore, error)
	// Windows are support windows: LENGTH, or PRODUCT=LENGTH.
	Windows []string
	// Supported are PRODUCT=CONSTRAINT.
	Supported     []string
	Offline       bool
	Prereleases   bool
	CacheDir      string // "" is $XDG_CACHE_HOME/arcagent/releases
	WaitRateLimit time.Duration
	Log           *slog.Logger
}

// Configured reports whether a release source is given.
func (o SetupOptions) Configured() bool {
	return len(o.GitHubRepos) > 0 || o.Catalog != "" || o.Config != ""
}

func (o SetupOptions) configuredSource() bool { return len(o.GitHubRepos) > 0 || o.Catalog != "" }

// merged applies the Config file under the options.
func (o SetupOptions) merged() (SetupOptions, error) {
	if o.Config == "" {
		return o, nil
	}
	c, err := LoadConfig(o.Config)
	if err != nil {
		return o, err
	}
	m := o
	repos, windows, supported := c.Flags()
	if !o.configuredSource() {
		m.GitHubRepos = repos
		if c.GitHub != nil && m.GitHubURL == "" {
			m.GitHubURL = c.GitHub.URL
		}
		if c.Catalog != nil {
			m.Catalog = c.Catalog.Location
			if m.CatalogName == "" {
				m.CatalogName = c.Catalog.Name
			}
			if m.Threshold == 0 {
				m.Threshold = c.Catalog.Threshold
			}
			if m.TrustDir == "" {
				m.TrustDir = c.Catalog.TrustDir
			}
		}
		if !m.configuredSource() {
			return o, newErr(CodeBadSource, "", nil, "release configuration %s names no source: give releases.github.repos or releases.catalog.location", o.Config)
		}
	}
	m.Windows = append(windows, o.Windows...)
	m.Supported = append(supported, o.Supported...)
	m.Offline = o.Offline || c.Offline
	m.Prereleases = o.Prereleases || c.IncludePrereleases
	if m.CacheDir == "" {
		m.CacheDir = c.Cache
	}
	if m.WaitRateLimit == 0 {
		m.WaitRateLimit = c.WaitRateLimit
	}
	return m, nil
}

// policies builds the support policies; named are the products given a
// policy of their own (the source must know them).
func (o SetupOptions) policies() (pol Policies, named []string, err error) {
	pol = Policies{Default: Policy{IncludePrereleases: o.Prereleases}, ByProduct: map[string]Policy{}}
	set := func(prod string, change func(*Policy)) {
		q := pol.For(prod)
		change(&q)
		pol.ByProduct[prod] = q
		named = append(named, prod)
	}
	for _, w := range o.Windows {
		prod, length, ok := strings.Cut(w, "=")
		if !ok {
			length, prod = prod, ""
		}
		win, err := ParseWindow(length)
		if err != nil {
			return pol, nil, newErr(CodeBadPolicy, "", err, "--support-window")
		}
		if prod == "" {
			pol.Default.Window = win
			continue
		}
		set(ProductName(prod), func(q *Policy) { q.Window = win })
	}
	for _, s := range o.Supported {
		prod, c, ok := strings.Cut(s, "=")
		prod = ProductName(prod)
		if !ok || prod == "" || strings.TrimSpace(c) == "" {
			return pol, nil, newErr(CodeBadPolicy, "", nil, "--supported %q: use PRODUCT=CONSTRAINT, e.g. arcagent='>=1.40.0'", s)
		}
		if _, err := ParseConstraint(c); err != nil {
			return pol, nil, newErr(CodeBadPolicy, "", err, "--supported %s: %q is not a semver constraint", prod, c)
		}
		set(prod, func(q *Policy) { q.Constraint = strings.TrimSpace(c) })
	}
	// Products without their own window follow the default (window and
	// pre-releases) set by later options too.
	for p, q := range pol.ByProduct {
		if q.Window == (Window{}) {
			q.Window = pol.Default.Window
		}
		q.IncludePrereleases = o.Prereleases
		pol.ByProduct[p] = q
	}
	return pol, named, nil
}

// source opens the catalog or the GitHub source.
func (o SetupOptions) source(ctx context.Context) (Source, error) {
	if o.Catalog != "" {
		if o.Offline {
			return nil, newErr(CodeBadSource, "", nil, "--offline applies to GitHub; a --catalog FILE is read locally already")
		}
		if o.LoadTrust == nil {
			return nil, newErr(CodeBadSource, "", nil, "a catalog needs a trust store, and none can be opened here")
		}
		store, err := o.LoadTrust(o.TrustDir)
		if err != nil {
			return nil, err
		}
		stateDir := o.TrustDir
		if stateDir == "" {
			stateDir = o.DefaultTrustDir
		}
		name, threshold := o.CatalogName, o.Threshold
		if name == "" {
			name = "releases"
		}
		return OpenCatalog(ctx, CatalogOptions{Location: o.Catalog, Name: name, Threshold: max(threshold, 1), Trust: store, StateDir: stateDir})
	}
	repos := map[string]string{}
	for _, r := range o.GitHubRepos {
		prod, repo, ok := strings.Cut(r, "=")
		if !ok {
			prod, repo = AgentProduct, r
		}
		prod = ProductName(prod)
		if prev, dup := repos[prod]; dup && prev != repo {
			return nil, newErr(CodeBadSource, "", nil, "--github-repo names two repositories for %s: %s and %s", prod, prev, repo)
		}
		repos[prod] = strings.TrimSpace(repo)
	}
	cache := o.CacheDir
	if cache == "" {
		if d, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(d, "arcagent", "releases")
		}
	}
	return NewGitHubSource(GitHubOptions{
		BaseURL: o.GitHubURL, Token: o.GitHubToken, Repos: repos, CacheDir: cache,
		Offline: o.Offline, MaxWait: o.WaitRateLimit, Log: o.Log,
	})
}

// NewChecker builds the release checker that o describes: it merges the
// configuration file under the options, builds the support policies, opens
// the source, and makes sure the source knows every product given a policy
// of its own (a typo there would otherwise go unnoticed).
func NewChecker(ctx context.Context, o SetupOptions) (*Checker, error) {
	if !o.Configured() {
		return nil, newErr(CodeBadSource, "", nil, "no release source: give --github-repo PRODUCT=OWNER/REPO, --catalog FILE|URL or --release-config FILE")
	}
	o, err := o.merged()
	if err != nil {
		return nil, err
	}
	if len(o.GitHubRepos) > 0 && o.Catalog != "" {
		return nil, newErr(CodeBadSource, "", nil, "give either --github-repo or --catalog, not both")
	}
	pol, named, err := o.policies()
	if err != nil {
		return nil, err
	}
	src, err := o.source(ctx)
	if err != nil {
		return nil, err
	}
	c := &Checker{Source: src, Policies: pol, Log: o.Log}
	for _, p := range named {
		if _, err := c.Require(ctx, p); err != nil {
			return nil, err
		}
	}
	return c, nil
}
