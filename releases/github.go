package releases

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"
)

// GitHubOptions configure a GitHubSource.
type GitHubOptions struct {
	// BaseURL is the REST API root: "" for github.com, or a GitHub
	// Enterprise Server ("https://ghe.example" gets "/api/v3/" appended).
	BaseURL string
	// Token is sent as a bearer token (GITHUB_TOKEN). It is never logged.
	Token string
	// Repos maps each product to OWNER/REPO.
	Repos map[string]string
	// CacheDir keeps responses with their ETags so that a repeated run
	// makes conditional requests (304 Not Modified costs no rate limit).
	// "" disables the cache.
	CacheDir string
	// Offline answers from the cache only, never the network.
	Offline bool
	// MaxWait is the longest one wait for a rate limit to reset before
	// giving up; 0 never waits.
	MaxWait time.Duration
	// HTTPClient overrides the HTTP client (tests, proxies).
	HTTPClient *http.Client
	// Log receives debug logs (nil: none).
	Log *slog.Logger
}

// maxPages bounds the pages followed for one repository (100 releases a
// page: 20,000 releases).
const maxPages = 200

// GitHubSource lists GitHub releases through go-github: every page is
// followed, drafts are skipped, pre-releases are marked.
type GitHubSource struct {
	o      GitHubOptions
	client *github.Client
	name   string
	sleep  func(ctx context.Context, d time.Duration) error

	mu   sync.Mutex
	memo map[string][]Release
}

// NewGitHubSource checks the options and returns the source.
func NewGitHubSource(o GitHubOptions) (*GitHubSource, error) {
	if len(o.Repos) == 0 {
		return nil, newErr(CodeBadSource, "GitHub", nil, "no repository given: use --github-repo PRODUCT=OWNER/REPO")
	}
	for p, r := range o.Repos {
		if _, _, err := splitRepo(r); err != nil {
			return nil, newErr(CodeBadSource, "GitHub", nil, "product %s: %v", p, err)
		}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	hcCopy := *hc
	next := hcCopy.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	s := &GitHubSource{o: o, name: "GitHub api.github.com", memo: map[string][]Release{}, sleep: sleepCtx}
	if o.Offline && o.CacheDir == "" {
		return nil, newErr(CodeBadSource, "GitHub", nil, "--offline needs the response cache (--release-cache DIR) of an earlier run")
	}
	hcCopy.Transport = &cacheTransport{dir: o.CacheDir, offline: o.Offline, next: next, source: func() string { return s.name }}
	c := github.NewClient(&hcCopy)
	if o.BaseURL != "" {
		u, err := url.Parse(o.BaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, newErr(CodeBadSource, "GitHub", err, "--github-url %q is not an http(s) URL", o.BaseURL)
		}
		if c, err = c.WithEnterpriseURLs(o.BaseURL, o.BaseURL); err != nil {
			return nil, newErr(CodeBadSource, "GitHub", err, "--github-url %q", o.BaseURL)
		}
		s.name = "GitHub " + u.Host
	}
	if o.Token != "" {
		c = c.WithAuthToken(o.Token)
	}
	c.UserAgent = "arcagent-releases"
	s.client = c
	return s, nil
}

// String names the source: "GitHub HOST".
func (s *GitHubSource) String() string { return s.name }

func splitRepo(r string) (string, string, error) {
	owner, repo, ok := strings.Cut(strings.TrimSpace(r), "/")
	if !ok || owner == "" || repo == "" || strings.ContainsAny(repo, "/ ?#") || strings.ContainsAny(owner, " ?#") {
		return "", "", fmt.Errorf("repository %q is not OWNER/REPO", r)
	}
	return owner, repo, nil
}

// Releases lists every non-draft release of product's repository.
func (s *GitHubSource) Releases(ctx context.Context, product string) ([]Release, error) {
	repoName, ok := s.o.Repos[product]
	if !ok {
		known := make([]string, 0, len(s.o.Repos))
		for p := range s.o.Repos {
			known = append(known, p)
		}
		return nil, newErr(CodeUnknownProduct, s.name, nil, "no repository is configured for product %q (configured: %s)", product, strings.Join(known, ", "))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.memo[product]; ok {
		return r, nil
	}
	owner, repo, _ := splitRepo(repoName)
	where := s.name + " repository " + owner + "/" + repo
	var out []Release
	opts := &github.ListOptions{PerPage: 100}
	waited := false
	for pages := 0; ; pages++ {
		if pages == maxPages {
			return nil, newErr(CodeRefused, where, nil, "more than %d pages of releases", maxPages)
		}
		rels, resp, err := s.client.Repositories.ListReleases(ctx, owner, repo, opts)
		if err != nil {
			d, retry := s.retryAfter(err)
			if retry && !waited {
				waited = true
				s.o.Log.Info("GitHub rate limit: waiting once", "source", where, "wait", d.Round(time.Second))
				if err := s.sleep(ctx, d); err != nil {
					return nil, err
				}
				pages--
				continue
			}
			return nil, s.classify(ctx, where, err)
		}
		for _, r := range rels {
			if r.GetDraft() {
				continue
			}
			tag := r.GetTagName()
			if tag == "" {
				tag = r.GetName()
			}
			rel := Release{Version: tag, Prerelease: r.GetPrerelease(), URL: r.GetHTMLURL()}
			if t := r.GetPublishedAt(); !t.IsZero() {
				rel.Published = t.Time
			} else if t := r.GetCreatedAt(); !t.IsZero() {
				rel.Published = t.Time
			}
			out = append(out, rel)
		}
		s.o.Log.Debug("GitHub releases page", "source", where, "page", opts.Page, "releases", len(rels), "next", resp.NextPage)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	s.memo[product] = out
	return out, nil
}

// retryAfter says whether err is a rate limit worth one wait, and how long.
func (s *GitHubSource) retryAfter(err error) (time.Duration, bool) {
	if s.o.MaxWait <= 0 {
		return 0, false
	}
	var rl *github.RateLimitError
	if errors.As(err, &rl) {
		d := time.Until(rl.Rate.Reset.Time) + time.Second
		return d, !rl.Rate.Reset.IsZero() && d <= s.o.MaxWait
	}
	var ab *github.AbuseRateLimitError
	if errors.As(err, &ab) && ab.RetryAfter != nil {
		d := *ab.RetryAfter
		return d, d <= s.o.MaxWait
	}
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusTooManyRequests {
		if ra, err := strconv.Atoi(er.Response.Header.Get("Retry-After")); err == nil {
			d := time.Duration(ra) * time.Second
			return d, d <= s.o.MaxWait
		}
		if r, err := strconv.ParseInt(er.Response.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			d := time.Until(time.Unix(r, 0)) + time.Second
			return d, d <= s.o.MaxWait
		}
	}
	return 0, false
}

// classify turns a go-github error into one that names the source and says
// what to do.
func (s *GitHubSource) classify(ctx context.Context, where string, err error) error {
	var own *Error
	if errors.As(err, &own) {
		if own.Source == "" || own.Source == s.name {
			own.Source = where
		}
		return own
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", where, ctx.Err())
	}
	var rl *github.RateLimitError
	if errors.As(err, &rl) {
		reset := rl.Rate.Reset.Time
		return newErr(CodeRateLimited, where, nil, "API rate limit of %d requests exhausted until %s (in %s)%s",
			rl.Rate.Limit, reset.UTC().Format(time.RFC3339), time.Until(reset).Round(time.Second), s.tokenHint())
	}
	var ab *github.AbuseRateLimitError
	if errors.As(err, &ab) {
		when := "later"
		if ab.RetryAfter != nil {
			when = fmt.Sprintf("after %s (at %s)", ab.RetryAfter.Round(time.Second), time.Now().Add(*ab.RetryAfter).UTC().Format(time.RFC3339))
		}
		return newErr(CodeSecondaryLimit, where, nil, "GitHub's secondary rate limit was hit: retry %s", when)
	}
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		switch code := er.Response.StatusCode; code {
		case http.StatusTooManyRequests:
			h := er.Response.Header
			if ra, err := strconv.Atoi(h.Get("Retry-After")); err == nil {
				d := time.Duration(ra) * time.Second
				return newErr(CodeSecondaryLimit, where, nil, "GitHub's secondary rate limit was hit (429): retry after %s (at %s)", d, time.Now().Add(d).UTC().Format(time.RFC3339))
			}
			when := "later"
			if r, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
				when = "at " + time.Unix(r, 0).UTC().Format(time.RFC3339)
			}
			return newErr(CodeRateLimited, where, nil, "API rate limit exhausted (429): retry %s%s", when, s.tokenHint())
		case http.StatusNotFound:
			return newErr(CodeNotFound, where, nil, "not found (404): no such repository, or it is private and GITHUB_TOKEN is %s", map[bool]string{true: "set but cannot read it", false: "not set"}[s.o.Token != ""])
		case http.StatusUnauthorized:
			return newErr(CodeRefused, where, nil, "GitHub refused the token (401): GITHUB_TOKEN is wrong or expired")
		default:
			return newErr(CodeRefused, where, nil, "GitHub answered %d: %s", code, er.Message)
		}
	}
	return newErr(CodeUnreachable, where, err, "cannot reach the GitHub API")
}

func (s *GitHubSource) tokenHint() string {
	if s.o.Token == "" {
		return "; GITHUB_TOKEN is not set, so the low anonymous limit applies"
	}
	return ""
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
