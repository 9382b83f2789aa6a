package releases

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arcagent/arcagent/errcode"
)

// fakeGitHub speaks the GitHub REST releases API as go-github expects it
// under a GitHub Enterprise base URL (/api/v3/): pages with Link headers,
// ETags and 304s, drafts and pre-releases, and rate-limit answers.
type fakeGitHub struct {
	t        testing.TB
	mu       sync.Mutex
	releases map[string][]map[string]any // "owner/repo" → releases, newest first
	requests int
	notMod   int
	auth     []string
	// fail, when set, answers the next requests instead of the API.
	fail []func(w http.ResponseWriter)
}

func newFakeGitHub(t testing.TB) (*fakeGitHub, *httptest.Server) {
	f := &fakeGitHub{t: t, releases: map[string][]map[string]any{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// addReleases adds n releases v1.0.0 … to repo, newest first; every
// draftEvery-th is a draft and every preEvery-th a pre-release.
func (f *fakeGitHub) addReleases(repo string, n, draftEvery, preEvery int, newest time.Time) {
	var list []map[string]any
	for i := n - 1; i >= 0; i-- {
		tag := fmt.Sprintf("v1.%d.0", i)
		r := map[string]any{"id": i + 1, "tag_name": tag, "name": "Release " + tag, "draft": false, "prerelease": false,
			"html_url":     "https://github.example/" + repo + "/releases/tag/" + tag,
			"published_at": newest.Add(-time.Duration(n-1-i) * 24 * time.Hour).UTC().Format(time.RFC3339)}
		if draftEvery > 0 && i%draftEvery == draftEvery-1 {
			r["draft"], r["published_at"] = true, nil
		}
		if preEvery > 0 && i%preEvery == preEvery-1 {
			r["prerelease"], r["tag_name"] = true, tag+"-rc.1"
		}
		list = append(list, r)
	}
	f.releases[repo] = list
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	if len(f.fail) > 0 {
		h := f.fail[0]
		f.fail = f.fail[1:]
		h(w)
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, "/api/v3/repos/")
	repo, ok2 := strings.CutSuffix(path, "/releases")
	list, ok3 := f.releases[repo]
	if !ok || !ok2 || !ok3 || r.Method != http.MethodGet {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/releases/releases#list-releases"}`)
		return
	}
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 {
		per = 30
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page <= 0 {
		page = 1
	}
	last := (len(list) + per - 1) / per
	lo, hi := (page-1)*per, page*per
	lo, hi = min(lo, len(list)), min(hi, len(list))
	etag := fmt.Sprintf(`W/"%s-%d-%d-%d"`, repo, page, per, len(list))
	w.Header().Set("X-RateLimit-Limit", "5000")
	w.Header().Set("X-RateLimit-Remaining", "4999")
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	if r.Header.Get("If-None-Match") == etag {
		f.notMod++
		w.Header().Set("ETag", etag)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	var links []string
	u := func(p int) string {
		return fmt.Sprintf("<http://%s/api/v3/repos/%s/releases?page=%d&per_page=%d>", r.Host, repo, p, per)
	}
	if page < last {
		links = append(links, u(page+1)+`; rel="next"`, u(last)+`; rel="last"`)
	}
	if page > 1 {
		links = append(links, u(page-1)+`; rel="prev"`, u(1)+`; rel="first"`)
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	body := "["
	for i, rel := range list[lo:hi] {
		if i > 0 {
			body += ","
		}
		body += jsonOf(f.t, rel)
	}
	fmt.Fprint(w, body+"]")
}

func newTestGitHub(t *testing.T, srv *httptest.Server, o GitHubOptions) *GitHubSource {
	t.Helper()
	o.BaseURL = srv.URL
	if o.Repos == nil {
		o.Repos = map[string]string{AgentProduct: "arc/agent"}
	}
	s, err := NewGitHubSource(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGitHubPagesDraftsPrereleases(t *testing.T) {
	f, srv := newFakeGitHub(t)
	f.addReleases("arc/agent", 250, 10, 7, time.Now())
	s := newTestGitHub(t, srv, GitHubOptions{Token: "secret-token", CacheDir: t.TempDir()})
	rels, err := s.Releases(context.Background(), AgentProduct)
	if err != nil {
		t.Fatal(err)
	}
	if f.requests != 3 {
		t.Errorf("requests = %d, want 3 pages", f.requests)
	}
	drafts, pres := 25, 0
	for _, r := range rels {
		if r.Prerelease {
			pres++
			if !strings.HasSuffix(r.Version, "-rc.1") {
				t.Errorf("pre-release %s lost its suffix", r.Version)
			}
		}
		if r.Published.IsZero() || r.URL == "" {
			t.Errorf("release %+v has no date or URL", r)
		}
	}
	if len(rels) != 250-drafts {
		t.Errorf("releases = %d, want %d (drafts skipped)", len(rels), 250-drafts)
	}
	if pres == 0 {
		t.Error("no pre-release kept (marked)")
	}
	for _, a := range f.auth {
		if a != "Bearer secret-token" {
			t.Errorf("Authorization = %q", a)
		}
	}
	// The token is in no cache file name or content.
	files, _ := filepath.Glob(filepath.Join(s.o.CacheDir, "*"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		if strings.Contains(p+string(b), "secret-token") {
			t.Errorf("token written to %s", p)
		}
	}
	// Under the policy, pre-releases count only when asked.
	now := time.Now()
	ix, _, _ := NewIndex(AgentProduct, rels, Policy{}, now)
	ixPre, _, _ := NewIndex(AgentProduct, rels, Policy{IncludePrereleases: true}, now)
	if ix.Releases() != 250-drafts-pres || ixPre.Releases() != 250-drafts {
		t.Errorf("index releases = %d / %d with pre-releases", ix.Releases(), ixPre.Releases())
	}
}

func TestGitHubETagCacheAndOffline(t *testing.T) {
	f, srv := newFakeGitHub(t)
	f.addReleases("arc/agent", 150, 0, 0, time.Now())
	cache := t.TempDir()
	first, err := newTestGitHub(t, srv, GitHubOptions{CacheDir: cache}).Releases(context.Background(), AgentProduct)
	if err != nil {
		t.Fatal(err)
	}
	if f.requests != 2 || f.notMod != 0 {
		t.Fatalf("first run: %d requests, %d not modified", f.requests, f.notMod)
	}
	// A repeated run makes conditional requests and gets 304s.
	second, err := newTestGitHub(t, srv, GitHubOptions{CacheDir: cache}).Releases(context.Background(), AgentProduct)
	if err != nil {
		t.Fatal(err)
	}
	if f.requests != 4 || f.notMod != 2 {
		t.Errorf("second run: %d requests, %d not modified; want 4 and 2", f.requests, f.notMod)
	}
	if len(second) != len(first) || second[0] != first[0] {
		t.Errorf("cached answer differs: %d vs %d releases", len(second), len(first))
	}
	// Offline: the cache only, no request.
	before := f.requests
	off, err := newTestGitHub(t, srv, GitHubOptions{CacheDir: cache, Offline: true}).Releases(context.Background(), AgentProduct)
	if err != nil || len(off) != len(first) || f.requests != before {
		t.Errorf("offline: %d releases, err %v, %d requests made", len(off), err, f.requests-before)
	}
	// Offline with an empty cache: a clear error.
	_, err = newTestGitHub(t, srv, GitHubOptions{CacheDir: t.TempDir(), Offline: true}).Releases(context.Background(), AgentProduct)
	wantCode(t, err, CodeNotCached, "not in the release cache")
	// Offline without a cache directory is bad usage.
	if _, err := NewGitHubSource(GitHubOptions{Repos: map[string]string{"a": "o/r"}, Offline: true}); !isCode(err, CodeBadSource) {
		t.Errorf("offline without cache: %v", err)
	}
	// A corrupt cache file is named, with what to do.
	files, _ := filepath.Glob(filepath.Join(cache, "*.json"))
	if len(files) != 2 {
		t.Fatalf("cache files = %v", files)
	}
	if err := os.WriteFile(files[0], []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, offline := range []bool{false, true} {
		_, err = newTestGitHub(t, srv, GitHubOptions{CacheDir: cache, Offline: offline}).Releases(context.Background(), AgentProduct)
		wantCode(t, err, CodeCacheCorrupt, filepath.Base(files[0]))
		if err != nil && !strings.Contains(err.Error(), "delete it") {
			t.Errorf("no remedy in %v", err)
		}
	}
}

func TestGitHubErrors(t *testing.T) {
	reset := time.Now().Add(42 * time.Minute).Truncate(time.Second)
	primary := func(w http.ResponseWriter) {
		w.Header().Set("X-RateLimit-Limit", "60")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"API rate limit exceeded for 127.0.0.1.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}`)
	}
	secondary := func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"You have exceeded a secondary rate limit.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`)
	}
	status := func(code int) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"message":"%s"}`, http.StatusText(code))
		}
	}
	tests := []struct {
		name    string
		repo    string
		fail    func(http.ResponseWriter)
		product string
		code    errcode.Code
		want    string
	}{
		{"404", "arc/missing", nil, AgentProduct, CodeNotFound, "repository arc/missing: not found (404)"},
		{"primary rate limit", "arc/agent", primary, AgentProduct, CodeRateLimited, reset.UTC().Format(time.RFC3339)},
		{"secondary rate limit", "arc/agent", secondary, AgentProduct, CodeSecondaryLimit, "retry after 2m0s"},
		{"429 with a reset", "arc/agent", func(w http.ResponseWriter) {
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
			w.WriteHeader(http.StatusTooManyRequests)
		}, AgentProduct, CodeRateLimited, "retry at " + reset.UTC().Format(time.RFC3339)},
		{"429 with Retry-After", "arc/agent", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		}, AgentProduct, CodeSecondaryLimit, "retry after 30s"},
		{"bad token", "arc/agent", status(http.StatusUnauthorized), AgentProduct, CodeRefused, "GITHUB_TOKEN is wrong or expired"},
		{"server error", "arc/agent", status(http.StatusBadGateway), AgentProduct, CodeRefused, "answered 502"},
		{"unknown product", "arc/agent", nil, "Contoso.X", CodeUnknownProduct, `no repository is configured for product "Contoso.X"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, srv := newFakeGitHub(t)
			f.addReleases("arc/agent", 3, 0, 0, time.Now())
			if tt.fail != nil {
				f.fail = append(f.fail, tt.fail)
			}
			s := newTestGitHub(t, srv, GitHubOptions{Repos: map[string]string{AgentProduct: tt.repo}})
			_, err := s.Releases(context.Background(), tt.product)
			wantCode(t, err, tt.code, tt.want)
			// Callers match by code: errors.Is with the Code, and errcode.Is.
			if !errors.Is(err, tt.code) || !errcode.Is(err, tt.code) {
				t.Errorf("errors.Is(%v, %s) = false", err, tt.code)
			}
			if err != nil && tt.product == AgentProduct && !strings.Contains(err.Error(), "GitHub 127.0.0.1") {
				t.Errorf("the error does not name the source: %v", err)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		_, srv := newFakeGitHub(t)
		s := newTestGitHub(t, srv, GitHubOptions{})
		srv.Close()
		_, err := s.Releases(context.Background(), AgentProduct)
		wantCode(t, err, CodeUnreachable, "cannot reach the GitHub API")
	})
}

func TestGitHubRateLimitWaitsOnce(t *testing.T) {
	secondary := func(after string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", after)
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"message":"secondary rate limit","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`)
		}
	}
	f, srv := newFakeGitHub(t)
	f.addReleases("arc/agent", 3, 0, 0, time.Now())
	f.fail = append(f.fail, secondary("1"))
	start := time.Now()
	rels, err := newTestGitHub(t, srv, GitHubOptions{MaxWait: 5 * time.Second}).Releases(context.Background(), AgentProduct)
	if err != nil || len(rels) != 3 {
		t.Fatalf("after one wait: %d releases, %v", len(rels), err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("did not wait: %v", d)
	}
	// Only once: a second limit is an error, and a reset beyond MaxWait is
	// an error at once.
	f.fail = append(f.fail, secondary("1"), secondary("1"))
	_, err = newTestGitHub(t, srv, GitHubOptions{MaxWait: 5 * time.Second}).Releases(context.Background(), AgentProduct)
	wantCode(t, err, CodeSecondaryLimit, "secondary rate limit")
	f.fail = append(f.fail, secondary("3600"))
	start = time.Now()
	_, err = newTestGitHub(t, srv, GitHubOptions{MaxWait: 5 * time.Second}).Releases(context.Background(), AgentProduct)
	wantCode(t, err, CodeSecondaryLimit, "retry after 1h0m0s")
	if time.Since(start) > 2*time.Second {
		t.Error("waited for a reset beyond --wait-rate-limit")
	}
}

func TestGitHubSourceOptions(t *testing.T) {
	for _, o := range []GitHubOptions{
		{},
		{Repos: map[string]string{"a": "no-slash"}},
		{Repos: map[string]string{"a": "o/r/extra"}},
		{Repos: map[string]string{"a": "o/r"}, BaseURL: "ftp://x"},
	} {
		if _, err := NewGitHubSource(o); !isCode(err, CodeBadSource) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	s, err := NewGitHubSource(GitHubOptions{Repos: map[string]string{"a": "o/r"}, BaseURL: "https://ghe.example.com"})
	if err != nil || s.String() != "GitHub ghe.example.com" || s.client.BaseURL.String() != "https://ghe.example.com/api/v3/" {
		t.Errorf("GHE: %v %v %v", s, err, s.client.BaseURL)
	}
}

func TestGitHubPrimaryRateLimitWaitsOnce(t *testing.T) {
	f, srv := newFakeGitHub(t)
	f.addReleases("arc/agent", 2, 0, 0, time.Now())
	f.fail = append(f.fail, func(w http.ResponseWriter) {
		w.Header().Set("X-RateLimit-Limit", "60")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10))
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"API rate limit exceeded"}`)
	})
	rels, err := newTestGitHub(t, srv, GitHubOptions{MaxWait: 10 * time.Second}).Releases(context.Background(), AgentProduct)
	if err != nil || len(rels) != 2 || f.requests != 2 {
		t.Fatalf("after waiting for the reset: %d releases, %d requests, %v", len(rels), f.requests, err)
	}
}
