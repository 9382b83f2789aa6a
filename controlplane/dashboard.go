package controlplane

// The web dashboard under /ui/: read-only, server-rendered pages
// (html/template, assets embedded) behind a login with an operator API
// token. The cookie carries the token itself, re-validated on every
// request through the API's own token check (authenticateToken), so
// revoking a token logs its dashboard sessions out at once. Every page is
// scoped like the API: a machine the viewer may not read is a 404 that
// does not name it.

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/releases"
)

// Error codes of the dashboard (ARC0640–ARC0649).
const (
	CodeUILoginRefused errcode.Code = "ARC0640"
	CodeUICrossOrigin  errcode.Code = "ARC0641"
	CodeReleaseCatalog errcode.Code = "ARC0642"
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeUILoginRefused, Exit: errcode.ExitFailed, Title: "the dashboard refused the API token", Remedy: "paste a valid operator API token (`arcagent fleet tokens create`, or `arcserver tokens create --data DIR --principal P`) into the login form"},
		{Code: CodeUICrossOrigin, Exit: errcode.ExitFailed, Title: "a dashboard form was posted from another origin", Remedy: "open the dashboard at the server's own URL (https://HOST:PORT/ui/) and log in from its login page"},
		{Code: CodeReleaseCatalog, Exit: errcode.ExitUsage, Title: "the release catalog for the dashboard cannot be used", Remedy: "give a signed catalog that `arcagent fleet currency --catalog FILE` accepts, with --release-catalog-name and a trust directory holding its keys (--release-trust-dir)"},
	} {
		errcode.Register(i)
	}
}

const (
	uiCookie     = "arcagent_ui"
	uiPageSize   = 100
	uiTopRules   = 10
	uiAllRules   = 100_000 // "every rule" when counts of several scopes are summed
	uiMaxForm    = 4 << 10
	uiSessionAge = 12 * time.Hour
	uiCSP        = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

//go:embed ui
var uiFiles embed.FS

var uiTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"pathesc": url.PathEscape,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"lower": strings.ToLower,
}).ParseFS(uiFiles, "ui/*.html"))

func (s *Server) uiRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) {
		uiHeaders(w)
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	})
	m.HandleFunc("GET /ui/static/style.css", s.uiStatic)
	m.HandleFunc("GET /ui/login", s.uiLoginForm)
	m.HandleFunc("POST /ui/login", s.uiLogin)
	m.HandleFunc("POST /ui/logout", s.uiLogout)
	m.HandleFunc("GET /ui/{$}", s.uiPage(s.uiOverview))
	m.HandleFunc("GET /ui/machines/{id}", s.uiPage(s.uiMachine))
	m.HandleFunc("GET /ui/rules/{rule}", s.uiPage(s.uiRule))
	m.HandleFunc("GET /ui/", s.uiPage(func(w http.ResponseWriter, r *http.Request, p *principal) error {
		return s.uiNotFound(w, p, "there is no dashboard page at this address")
	}))
}

// isUIPath reports whether a request path is (or cleans to) a dashboard one.
func isUIPath(p string) bool {
	p = path.Clean("/" + p)
	return p == "/ui" || strings.HasPrefix(p, "/ui/")
}

// uiHeaders are the headers of every dashboard response.
func uiHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
}

func (s *Server) uiStatic(w http.ResponseWriter, r *http.Request) {
	uiHeaders(w)
	b, err := fs.ReadFile(uiFiles, "ui/style.css")
	if err != nil {
		http.Error(w, "missing stylesheet", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	_, _ = w.Write(b)
}

// uiRender writes a page; a template failure is logged and answered 500.
func (s *Server) uiRender(w http.ResponseWriter, status int, name string, data any) {
	var b strings.Builder
	if err := uiTemplates.ExecuteTemplate(&b, name, data); err != nil {
		s.log.Error("render dashboard page", "page", name, "err", err)
		http.Error(w, "the dashboard failed to render this page; see the server log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

type uiLoginData struct {
	Error string
	Code  errcode.Code
}

func (s *Server) uiLoginForm(w http.ResponseWriter, r *http.Request) {
	uiHeaders(w)
	s.uiRender(w, http.StatusOK, "login.html", uiLoginData{})
}

// sameOrigin reports whether a state-changing form post comes from this
// server's own pages. A browser's Sec-Fetch-Site must be same-origin;
// without it, Origin, or failing that Referer, must name the host the
// request was sent to over https. Pages send no referrer
// (Referrer-Policy: no-referrer), so browsers post Origin "null", which
// alone is refused: everything unproven fails closed.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	want := "https://" + r.Host
	if o := r.Header.Get("Origin"); o != "" {
		return strings.EqualFold(o, want)
	}
	ref, err := url.Parse(r.Header.Get("Referer"))
	if err != nil || ref.Host == "" {
		return false
	}
	return strings.EqualFold(ref.Scheme+"://"+ref.Host, want)
}

// uiForm reads a bounded urlencoded form.
func uiForm(w http.ResponseWriter, r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		return errors.New("the form must be sent as application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, uiMaxForm)
	return r.ParseForm()
}

func (s *Server) uiLogin(w http.ResponseWriter, r *http.Request) {
	uiHeaders(w)
	if !sameOrigin(r) {
		s.uiRender(w, http.StatusForbidden, "login.html", uiLoginData{Code: CodeUICrossOrigin, Error: "this login form was not sent from this server's own login page; open the dashboard at its address and log in there"})
		return
	}
	if err := uiForm(w, r); err != nil {
		s.uiRender(w, http.StatusBadRequest, "login.html", uiLoginData{Code: CodeUILoginRefused, Error: "the login form could not be read: " + err.Error()})
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	p, err := s.authenticateToken(r, tok)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			s.log.Error("dashboard login", "err", err)
			s.uiRender(w, http.StatusInternalServerError, "login.html", uiLoginData{Code: apiv1.CodeServerError, Error: "the server failed to check the token; try again"})
			return
		}
		s.uiRender(w, http.StatusUnauthorized, "login.html", uiLoginData{Code: CodeUILoginRefused, Error: "the token was refused: " + ae.msg})
		return
	}
	s.log.Info("dashboard login", "principal", p.name)
	http.SetCookie(w, &http.Cookie{Name: uiCookie, Value: tok, Path: "/ui/", MaxAge: int(uiSessionAge / time.Second), HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func clearUICookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: uiCookie, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

func (s *Server) uiLogout(w http.ResponseWriter, r *http.Request) {
	uiHeaders(w)
	if !sameOrigin(r) {
		s.uiRender(w, http.StatusForbidden, "login.html", uiLoginData{Code: CodeUICrossOrigin, Error: "this logout was not sent from this server's own pages"})
		return
	}
	clearUICookie(w)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

type uiHandler func(w http.ResponseWriter, r *http.Request, p *principal) error

// uiPage authenticates the cookie (a missing, unknown or expired token
// redirects to the login page) and renders h; errors become an error page.
func (s *Server) uiPage(h uiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		uiHeaders(w)
		c, err := r.Cookie(uiCookie)
		if err != nil || c.Value == "" {
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		p, err := s.authenticateToken(r, c.Value)
		var ae *apiError
		if errors.As(err, &ae) {
			clearUICookie(w)
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		if err == nil {
			err = h(w, r, p)
		}
		if err != nil {
			s.log.Error("dashboard page", "path", r.URL.Path, "err", err)
			s.uiRender(w, http.StatusInternalServerError, "error.html", uiErrorData{Principal: p.nameOrEmpty(), Title: "Server error", Message: "the server failed to build this page; see the server log"})
		}
	}
}

// canner is p.can(perm, scope) for the many rows of one page, decided
// once per scope (a viewer of the whole tenant decides nothing per row).
func (p *principal) canner(perm string) func(scope string) bool {
	if p.can(perm, rbac.TenantScope) {
		return func(string) bool { return true }
	}
	memo := map[string]bool{}
	return func(scope string) bool {
		v, ok := memo[scope]
		if !ok {
			v = p.can(perm, scope)
			memo[scope] = v
		}
		return v
	}
}

func (p *principal) nameOrEmpty() string {
	if p == nil {
		return ""
	}
	return p.name
}

type uiErrorData struct {
	Principal, Title, Message string
}

func (s *Server) uiNotFound(w http.ResponseWriter, p *principal, msg string) error {
	s.uiRender(w, http.StatusNotFound, "error.html", uiErrorData{Principal: p.name, Title: "Not found", Message: msg})
	return nil
}

// uiMachineRow is one machine in a list.
type uiMachineRow struct {
	ID, Name, ResourceGroup, SubscriptionID, Status, AgentVersion string
	LastHeartbeat                                                 time.Time
}

// uiBar is one bar of the agent version chart (geometry precomputed).
type uiBar struct {
	Label, Class  string
	Count         int
	Y, Width, TxX int
}

type uiChart struct {
	Classified bool
	Note       string
	Bars       []uiBar
	Height     int
}

type uiOverviewData struct {
	Principal        string
	Total            int
	Connected        int
	Disconnected     int
	Expired          int
	Chart            uiChart
	TopRules         []store.RuleCount
	Machines         []uiMachineRow
	Filter           string
	Page, Pages      int
	PrevURL, NextURL string
}

// uiStatuses are the status filter's values.
var uiStatuses = []string{apiv1.StatusConnected, apiv1.StatusDisconnected, apiv1.StatusExpired}

func uiPageNumber(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// uiPaging clamps page to [1, pages] and returns the slice bounds.
func uiPaging(n, page int) (lo, hi, pg, pages int) {
	pages = max(1, (n+uiPageSize-1)/uiPageSize)
	pg = min(max(page, 1), pages)
	lo = (pg - 1) * uiPageSize
	hi = min(lo+uiPageSize, n)
	return lo, hi, pg, pages
}

func uiPageURL(base string, q url.Values, page int) string {
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	q2.Set("page", strconv.Itoa(page))
	return base + "?" + q2.Encode()
}

func (s *Server) uiOverview(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	if !p.canAnywhere(rbac.MachinesRead) {
		s.uiRender(w, http.StatusForbidden, "error.html", uiErrorData{Principal: p.name, Title: "No access",
			Message: "your roles grant " + rbac.MachinesRead + " nowhere: ask an Owner for a role (e.g. Reader) at a subscription or resource group"})
		return nil
	}
	d := uiOverviewData{Principal: p.name}
	filter := r.URL.Query().Get("status")
	if filter != "" && !slices.Contains(uiStatuses, filter) {
		filter = ""
	}
	d.Filter = filter
	var versions map[string]int
	var err error
	if scopes, exact := p.machineScopes(); exact {
		versions, err = s.uiFleetFromCounts(ctx, scopes, r, &d)
	}
	if err != nil {
		return err
	}
	if versions == nil {
		if versions, err = s.uiFleetFromRows(ctx, p, r, &d); err != nil {
			return err
		}
	}
	d.Chart, err = s.versionChart(ctx, versions)
	if err != nil {
		return err
	}
	if d.TopRules, err = s.topRules(ctx, p); err != nil {
		return err
	}
	s.uiRender(w, http.StatusOK, "overview.html", d)
	return nil
}

// machineScopes are the subscriptions and resource groups where p may
// read machines, as store filters (none: the whole tenant). exact is
// false when p reads single machines: only a check of each row is exact.
func (p *principal) machineScopes() (scopes []store.MachineFilter, exact bool) {
	if p.can(rbac.MachinesRead, rbac.TenantScope) {
		return nil, true
	}
	fs, ok := p.scopeFilters(rbac.MachinesRead)
	if !ok || len(fs) == 0 {
		return nil, false
	}
	for _, f := range fs {
		scopes = append(scopes, store.MachineFilter{SubscriptionID: f.SubscriptionID, ResourceGroup: f.ResourceGroup})
	}
	return scopes, true
}

// uiFleetFromCounts fills the overview's counts and machine page from the
// store's grouped counts and one page of rows; it returns the machines
// of each agent version.
func (s *Server) uiFleetFromCounts(ctx context.Context, scopes []store.MachineFilter, r *http.Request, d *uiOverviewData) (map[string]int, error) {
	now := s.now()
	b := store.HeartbeatBounds{DisconnectedAt: now.Add(-apiv1.DisconnectedAfter), ExpiredAt: now.Add(-apiv1.ExpiredAfter)}
	counts, err := s.st.FleetCounts(ctx, scopes, b)
	if err != nil {
		return nil, err
	}
	versions := map[string]int{}
	for _, c := range counts {
		d.Total += c.Machines
		switch c.Status {
		case apiv1.StatusConnected:
			d.Connected += c.Machines
		case apiv1.StatusDisconnected:
			d.Disconnected += c.Machines
		case apiv1.StatusExpired:
			d.Expired += c.Machines
		}
		versions[c.AgentVersion] += c.Machines
	}
	n := d.Total
	switch d.Filter {
	case apiv1.StatusConnected:
		n = d.Connected
	case apiv1.StatusDisconnected:
		n = d.Disconnected
	case apiv1.StatusExpired:
		n = d.Expired
	}
	lo, _, pg, pages := uiPaging(n, uiPageNumber(r))
	ms, err := s.st.FleetPage(ctx, scopes, d.Filter, b, lo, uiPageSize)
	if err != nil {
		return nil, err
	}
	d.Machines = make([]uiMachineRow, 0, len(ms))
	for _, m := range ms {
		d.Machines = append(d.Machines, uiMachineRow{ID: m.ID, Name: m.Name, ResourceGroup: m.ResourceGroup, SubscriptionID: m.SubscriptionID, Status: apiv1.StatusAt(m.LastHeartbeat, now), AgentVersion: m.AgentVersion, LastHeartbeat: m.LastHeartbeat})
	}
	d.setPager(pg, pages)
	return versions, nil
}

func (d *uiOverviewData) setPager(pg, pages int) {
	d.Page, d.Pages = pg, pages
	q := url.Values{}
	if d.Filter != "" {
		q.Set("status", d.Filter)
	}
	if pg > 1 {
		d.PrevURL = uiPageURL("/ui/", q, pg-1)
	}
	if pg < pages {
		d.NextURL = uiPageURL("/ui/", q, pg+1)
	}
}

// uiFleetFromRows fills the overview from every machine p may read,
// checked one by one (for a viewer of single machines, or a store without
// fleet counts); it returns the machines of each agent version.
func (s *Server) uiFleetFromRows(ctx context.Context, p *principal, r *http.Request, d *uiOverviewData) (map[string]int, error) {
	filter := d.Filter
	ms, err := s.visibleMachines(ctx, p)
	if err != nil {
		return nil, err
	}
	now := s.now()
	versions := map[string]int{}
	rows := make([]uiMachineRow, 0, len(ms))
	canRead := p.canner(rbac.MachinesRead)
	for i := range ms {
		m := &ms[i]
		if !canRead(m.ResourceID) {
			continue
		}
		st := apiv1.StatusAt(m.LastHeartbeat, now)
		d.Total++
		switch st {
		case apiv1.StatusConnected:
			d.Connected++
		case apiv1.StatusDisconnected:
			d.Disconnected++
		case apiv1.StatusExpired:
			d.Expired++
		}
		versions[m.AgentVersion]++
		if filter == "" || st == filter {
			rows = append(rows, uiMachineRow{ID: m.ID, Name: m.Name, ResourceGroup: m.ResourceGroup, SubscriptionID: m.SubscriptionID, Status: st, AgentVersion: m.AgentVersion, LastHeartbeat: m.LastHeartbeat})
		}
	}
	slices.SortFunc(rows, func(a, b uiMachineRow) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), strings.Compare(a.ID, b.ID))
	})
	lo, hi, pg, pages := uiPaging(len(rows), uiPageNumber(r))
	d.Machines = rows[lo:hi]
	d.setPager(pg, pages)
	return versions, nil
}

// visibleMachines lists the machines of the scopes where p may read
// machines (every machine for a viewer of the tenant or of single
// machines; the caller still checks each row).
func (s *Server) visibleMachines(ctx context.Context, p *principal) ([]store.MachineSummary, error) {
	filters, ok := p.scopeFilters(rbac.MachinesRead)
	if p.can(rbac.MachinesRead, rbac.TenantScope) || !ok {
		return s.st.MachineSummaries(ctx, store.MachineFilter{})
	}
	var out []store.MachineSummary
	for _, f := range filters {
		ms, err := s.st.MachineSummaries(ctx, store.MachineFilter{SubscriptionID: f.SubscriptionID, ResourceGroup: f.ResourceGroup})
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// topRules counts the machines failing each rule among those p may read:
// the store's count for a viewer of the whole tenant, else a count over
// the findings p may read (fail closed: never a count over hidden machines).
func (s *Server) topRules(ctx context.Context, p *principal) ([]store.RuleCount, error) {
	if p.can(rbac.MachinesRead, rbac.TenantScope) {
		return s.uiRules.count(ctx, s.st, store.AuditFindingFilter{}, uiTopRules)
	}
	if filters, ok := p.scopeFilters(rbac.MachinesRead); ok {
		// Disjoint scopes hold disjoint machines: their counts add up.
		sum := map[string]*store.RuleCount{}
		for _, f := range filters {
			rcs, err := s.uiRules.count(ctx, s.st, f, uiAllRules)
			if err != nil {
				return nil, err
			}
			for _, rc := range rcs {
				k := strings.ToLower(rc.RuleID)
				if c := sum[k]; c != nil {
					c.Machines += rc.Machines
				} else {
					sum[k] = &rc
				}
			}
		}
		return sortRuleCounts(sum), nil
	}
	fs, err := s.st.LatestAuditFindings(ctx, store.AuditFindingFilter{})
	if err != nil {
		return nil, err
	}
	counts := map[string]*store.RuleCount{}
	seen := map[[2]string]bool{}
	canRead := p.canner(rbac.MachinesRead)
	for _, f := range fs {
		if !canRead(f.ResourceID) {
			continue
		}
		k := strings.ToLower(f.RuleID)
		if seen[[2]string{k, f.MachineID}] {
			continue
		}
		seen[[2]string{k, f.MachineID}] = true
		c := counts[k]
		if c == nil {
			c = &store.RuleCount{RuleID: f.RuleID, Title: f.Title, Severity: f.Severity}
			counts[k] = c
		}
		c.Machines++
	}
	return sortRuleCounts(counts), nil
}

// uiRuleCache keeps the top failing rules of each scope for uiRuleTTL:
// counting them reads every stored finding of the scope (100,000 rows
// take 40–150 ms), which an overview reloaded every few seconds by many
// viewers would otherwise repeat. A scope's counts are the same for every
// viewer allowed to read it; each process (replica) keeps its own.
type uiRuleCache struct {
	mu sync.Mutex
	m  map[uiRuleKey]uiRuleEntry
}

type uiRuleKey struct {
	f     store.AuditFindingFilter
	limit int
}

type uiRuleEntry struct {
	at  time.Time
	rcs []store.RuleCount
}

const (
	uiRuleTTL     = 10 * time.Second
	uiRuleEntries = 1024
)

// count is st.TopFailingRules(f, limit), from the cache when counted less
// than uiRuleTTL ago (by the wall clock's monotonic reading).
func (c *uiRuleCache) count(ctx context.Context, st store.Store, f store.AuditFindingFilter, limit int) ([]store.RuleCount, error) {
	f.SubscriptionID, f.ResourceGroup = strings.ToLower(f.SubscriptionID), strings.ToLower(f.ResourceGroup)
	k := uiRuleKey{f, limit}
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < uiRuleTTL {
		return slices.Clone(e.rcs), nil
	}
	rcs, err := st.TopFailingRules(ctx, f, limit)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= uiRuleEntries {
		c.m = map[uiRuleKey]uiRuleEntry{}
	}
	c.m[k] = uiRuleEntry{at: now, rcs: rcs}
	c.mu.Unlock()
	return slices.Clone(rcs), nil
}

// sortRuleCounts orders counts most machines first and keeps the top ones.
func sortRuleCounts(counts map[string]*store.RuleCount) []store.RuleCount {
	out := make([]store.RuleCount, 0, len(counts))
	for _, c := range counts {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b store.RuleCount) int {
		return cmp.Or(b.Machines-a.Machines, strings.Compare(a.RuleID, b.RuleID))
	})
	if len(out) > uiTopRules {
		out = out[:uiTopRules]
	}
	return out
}

// scopeFilters turns the scopes where p holds perm into disjoint
// subscription and resource group filters (a scope inside another is
// dropped). ok is false when a scope is a machine's: then only a count
// over the findings p may read is exact.
func (p *principal) scopeFilters(perm string) (filters []store.AuditFindingFilter, ok bool) {
	var scopes []string
	for _, a := range p.rbac {
		if r, found := rbac.LookupRole(a.Role); found && r.Allows(perm) {
			scopes = append(scopes, a.Scope)
		}
	}
	for i, sc := range scopes {
		covered := false
		for j, o := range scopes {
			// An equal scope is dropped once (the later copy).
			if i != j && rbac.Within(o, sc) && (!rbac.Within(sc, o) || j < i) {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		ps, err := rbac.ParseScope(sc)
		if err != nil {
			return nil, false
		}
		switch ps.Level() {
		case "subscription":
			filters = append(filters, store.AuditFindingFilter{SubscriptionID: ps.Subscription})
		case "resourceGroup":
			filters = append(filters, store.AuditFindingFilter{SubscriptionID: ps.Subscription, ResourceGroup: ps.ResourceGroup})
		default:
			return nil, false
		}
	}
	return filters, true
}

// versionChart classifies the agent versions (current, behind,
// unsupported, unknown) with the release source, or, without one, shows
// the count of each version. Work is per distinct version, not machine.
func (s *Server) versionChart(ctx context.Context, versions map[string]int) (uiChart, error) {
	type bar struct {
		label, class string
		n            int
	}
	var bars []bar
	var ch uiChart
	if s.releases != nil {
		c := &releases.Checker{Source: s.releases, Policies: s.relPolicy, Now: s.now()}
		ix, err := c.Index(ctx, releases.AgentProduct)
		if err != nil {
			return ch, err
		}
		if ix != nil {
			ch.Classified = true
			counts := map[string]int{}
			for v, n := range versions {
				state := releases.StateUnknown
				if v != "" {
					state = ix.Evaluate(v).State
				}
				counts[state] += n
			}
			for _, st := range []string{releases.StateCurrent, releases.StateBehind, releases.StateUnsupported, releases.StateUnknown} {
				if st == releases.StateUnknown && counts[st] == 0 {
					continue
				}
				bars = append(bars, bar{st, st, counts[st]})
			}
			ch.Note = fmt.Sprintf("against %s (latest %s)", s.releases.String(), ix.Latest())
		} else {
			ch.Note = fmt.Sprintf("%s lists no %s releases: versions cannot be classified", s.releases.String(), releases.AgentProduct)
		}
	} else {
		ch.Note = "no release catalog is configured (arcserver serve --release-catalog FILE): versions cannot be classified as current, behind or unsupported"
	}
	if !ch.Classified {
		for v, n := range versions {
			label := v
			if label == "" {
				label = "not reported"
			}
			bars = append(bars, bar{label, "version", n})
		}
		slices.SortFunc(bars, func(a, b bar) int { return cmp.Or(b.n-a.n, strings.Compare(a.label, b.label)) })
		if len(bars) > 12 {
			rest := 0
			for _, b := range bars[11:] {
				rest += b.n
			}
			bars = append(bars[:11], bar{fmt.Sprintf("%d other versions", len(bars)-11), "version", rest})
		}
	}
	most := 1
	for _, b := range bars {
		most = max(most, b.n)
	}
	const barWidth, rowHeight = 400, 28
	for i, b := range bars {
		wd := b.n * barWidth / most
		if b.n > 0 {
			wd = max(wd, 2)
		}
		ch.Bars = append(ch.Bars, uiBar{Label: b.label, Class: b.class, Count: b.n, Y: i * rowHeight, Width: wd, TxX: 160 + wd + 6})
	}
	ch.Height = max(len(bars)*rowHeight, rowHeight)
	return ch, nil
}

type uiMachineData struct {
	Principal          string
	M                  uiMachineRow
	ResourceID         string
	Location           string
	Live               apiv1.MachineInventory // as GET /v1/inventory shows it
	Tags               []string
	CanExtensions      bool
	Extensions         []apiv1.ExtensionView
	CanGuestConfig     bool
	GuestConfig        []apiv1.GuestConfigurationView
	Findings           []store.AuditFinding
	Reports            []store.AuditReport
	StatusReportedAt   time.Time
	StatusNotReported  bool
	DamagedStatusError string
}

func (s *Server) uiMachine(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	id := strings.ToLower(r.PathValue("id"))
	const hidden = "no machine you can read has this id"
	if !isUUID(id) {
		return s.uiNotFound(w, p, hidden)
	}
	m, err := s.st.Machine(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return s.uiNotFound(w, p, hidden)
	}
	if err != nil {
		return err
	}
	if !p.can(rbac.MachinesRead, m.ResourceID) {
		return s.uiNotFound(w, p, hidden)
	}
	v := s.toMachine(m, false)
	// The live inventory: what the heartbeats last carried (agent version,
	// OS, kernel) and the extensions of the last status report, read as
	// GET /v1/inventory reads them.
	live := toInventory(&store.InventoryRow{ID: m.ID, Name: m.Name, SubscriptionID: m.SubscriptionID, ResourceGroup: m.ResourceGroup, ResourceID: m.ResourceID,
		AgentVersion: m.AgentVersion, LastHeartbeat: m.LastHeartbeat, CreatedAt: m.CreatedAt, Inventory: m.Inventory, Status: m.Status})
	live.Status = v.Status
	d := uiMachineData{
		Principal: p.name, ResourceID: m.ResourceID, Location: s.locationOf(r, m), Live: live,
		M: uiMachineRow{ID: m.ID, Name: m.Name, ResourceGroup: m.ResourceGroup, SubscriptionID: m.SubscriptionID, Status: v.Status, AgentVersion: live.AgentVersion, LastHeartbeat: m.LastHeartbeat},
	}
	for k, val := range m.Tags {
		d.Tags = append(d.Tags, k+"="+val)
	}
	slices.Sort(d.Tags)
	ds, _, err := decodeDesired(store.DesiredState{Doc: m.DesiredState})
	if err != nil {
		return err
	}
	st, err := storedStatus(m)
	if len(m.Status) > 0 {
		if err != nil {
			d.DamagedStatusError = "the machine's stored status report cannot be read"
		}
		d.StatusReportedAt = m.StatusAt
	} else {
		d.StatusNotReported = true
	}
	if d.CanExtensions = p.can(rbac.ExtensionsRead, m.ResourceID); d.CanExtensions {
		d.Extensions = extensionViews(ds.Extensions, st.Extensions)
	}
	if d.CanGuestConfig = p.can(rbac.GuestConfigRead, m.ResourceID); d.CanGuestConfig {
		d.GuestConfig = guestConfigViews(ds.GuestConfigurationAssignments, st.GuestConfiguration, false)
	}
	if d.Findings, err = s.st.LatestAuditFindings(ctx, store.AuditFindingFilter{MachineID: m.ID}); err != nil {
		return err
	}
	if d.Reports, err = s.st.AuditReports(ctx, m.ID, "", 10); err != nil {
		return err
	}
	s.uiRender(w, http.StatusOK, "machine.html", d)
	return nil
}

type uiRuleData struct {
	Principal        string
	RuleID           string
	Title, Severity  string
	Remediation      string
	Total            int
	Findings         []store.AuditFinding
	Page, Pages      int
	PrevURL, NextURL string
}

func (s *Server) uiRule(w http.ResponseWriter, r *http.Request, p *principal) error {
	rule := r.PathValue("rule")
	if rule == "" || len(rule) > 128 {
		return s.uiNotFound(w, p, "no rule has this id")
	}
	d := uiRuleData{Principal: p.name, RuleID: rule}
	fs, err := s.st.LatestAuditFindings(r.Context(), store.AuditFindingFilter{RuleID: rule})
	if err != nil {
		return err
	}
	visible := fs[:0]
	canRead := p.canner(rbac.MachinesRead)
	for _, f := range fs {
		if canRead(f.ResourceID) {
			visible = append(visible, f)
		}
	}
	slices.SortStableFunc(visible, func(a, b store.AuditFinding) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.MachineName), strings.ToLower(b.MachineName)), strings.Compare(a.MachineID, b.MachineID), strings.Compare(a.Profile, b.Profile))
	})
	if len(visible) > 0 {
		d.Title, d.Severity, d.Remediation = visible[0].Title, visible[0].Severity, visible[0].Remediation
	}
	d.Total = len(visible)
	lo, hi, pg, pages := uiPaging(len(visible), uiPageNumber(r))
	d.Findings, d.Page, d.Pages = visible[lo:hi], pg, pages
	base := "/ui/rules/" + url.PathEscape(rule)
	if pg > 1 {
		d.PrevURL = uiPageURL(base, url.Values{}, pg-1)
	}
	if pg < pages {
		d.NextURL = uiPageURL(base, url.Values{}, pg+1)
	}
	s.uiRender(w, http.StatusOK, "rule.html", d)
	return nil
}
