package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DB is the database/sql Store, on SQLite (embedded, the default) or on
// PostgreSQL; the SQL is shared, written with ? placeholders (rewritten to
// $n for PostgreSQL by the connection). It keeps two pools: on SQLite a
// single writer connection (SQLite allows one writer at a time, so
// queueing in Go is cheaper than retrying on SQLITE_BUSY) and a pool of
// readers, which WAL mode lets run beside the writer; on PostgreSQL two
// ordinary pools, where read-modify-write transactions lock what they
// read (forUpdate, lock) because they run at READ COMMITTED.
type DB struct {
	w       *sql.DB
	r       *sql.DB
	path    string // file, or the redacted URL
	dialect dialect

	hbOnce sync.Once
	hbStmt *sql.Stmt // prepared once on the writer, reused by every batch
	hbErr  error
}

// SQLite is the name the store had when it was SQLite only (OpenSQLite
// still returns it); it is DB, for both engines.
type SQLite = DB

var _ Store = (*DB)(nil)

// OpenSQLite opens (creating if needed) the database at path, applies the
// pending migrations and returns the store. The file is created 0600.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	return openSQLite(ctx, path, true)
}

// OpenSQLiteNoMigrate opens an existing database without touching its
// schema, for maintenance beside a running server (backups) that must not
// migrate the database under it.
func OpenSQLiteNoMigrate(ctx context.Context, path string) (*SQLite, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return openSQLite(ctx, path, false)
}

func openSQLite(ctx context.Context, path string, migrate bool) (*SQLite, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create database %s: %w", path, err)
		}
		f.Close()
	}
	dsn := func(txlock string) string {
		q := url.Values{}
		for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(10000)", "foreign_keys(1)"} {
			q.Add("_pragma", p)
		}
		if txlock != "" {
			q.Set("_txlock", txlock)
		}
		return "file:" + filepath.ToSlash(path) + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn("immediate"))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", dsn(""))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	s := &SQLite{w: w, r: r, path: path}
	if !migrate {
		return s, nil
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes both pools.
func (s *DB) Close() error {
	if s.hbStmt != nil {
		s.hbStmt.Close()
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

// SchemaVersion is the number of migrations the code knows.
func SchemaVersion() int { return len(migrations) }

func (s *DB) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("prepare schema migrations in %s: %w", s.path, err)
	}
	var cur int
	if err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("read schema version of %s: %w", s.path, err)
	}
	if cur > len(migrations) {
		return fmt.Errorf("database %s has schema version %d but this arcserver knows only %d: run a newer arcserver", s.path, cur, len(migrations))
	}
	for v := cur + 1; v <= len(migrations); v++ {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s to version %d: %w", s.path, v, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s to version %d: %w", s.path, v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, ms(time.Now())); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s to version %d: %w", s.path, v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s to version %d: %w", s.path, v, err)
		}
	}
	return nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func tagsJSON(t map[string]string) string {
	if t == nil {
		return "{}"
	}
	b, _ := json.Marshal(t)
	return string(b)
}

func parseTags(s string) map[string]string {
	m := map[string]string{}
	_ = json.Unmarshal([]byte(s), &m)
	return m
}

// isUnique reports whether err is a unique or primary-key violation.
func isUnique(err error) bool {
	if err == nil {
		return false
	}
	if pgCode(err) == "23505" { // unique_violation
		return true
	}
	var c interface{ Code() int }
	if errors.As(err, &c) {
		switch c.Code() {
		case 2067, 1555: // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
			return true
		}
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

func mustAffect(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("update %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// Tenant returns the tenant, ErrNotFound before init.
func (s *DB) Tenant(ctx context.Context) (Tenant, error) {
	var t Tenant
	var c int64
	err := s.r.QueryRowContext(ctx, `SELECT id, created_at FROM tenant`).Scan(&t.ID, &c)
	if err != nil {
		return t, notFound(err, "tenant")
	}
	t.CreatedAt = fromMS(c)
	return t, nil
}

// CreateTenant stores the tenant; a second tenant is a conflict.
func (s *DB) CreateTenant(ctx context.Context, t Tenant) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	defer tx.Rollback()
	if err := s.lock(ctx, tx, "tenant"); err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tenant`).Scan(&n); err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("tenant: %w", ErrConflict)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tenant (id, created_at) VALUES (?, ?)`, t.ID, ms(t.CreatedAt)); err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	return tx.Commit()
}

// CreateAPIToken stores an operator token's hash.
func (s *DB) CreateAPIToken(ctx context.Context, t APIToken) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO api_tokens (id, principal, hash, description, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, t.Principal, t.Hash, t.Description, ms(t.CreatedAt), ms(t.ExpiresAt))
	if isUnique(err) {
		return fmt.Errorf("api token %s: %w", t.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create api token: %w", err)
	}
	return nil
}

// APITokenByHash finds a token by the hash of its secret.
func (s *DB) APITokenByHash(ctx context.Context, hash string) (APIToken, error) {
	var t APIToken
	var c, e int64
	err := s.r.QueryRowContext(ctx, `SELECT id, principal, hash, description, created_at, expires_at FROM api_tokens WHERE hash = ?`, hash).
		Scan(&t.ID, &t.Principal, &t.Hash, &t.Description, &c, &e)
	if err != nil {
		return t, notFound(err, "api token")
	}
	t.CreatedAt, t.ExpiresAt = fromMS(c), fromMS(e)
	return t, nil
}

// ListAPITokens returns every token (hashes included), oldest first.
func (s *DB) ListAPITokens(ctx context.Context) ([]APIToken, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, principal, hash, description, created_at, expires_at FROM api_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		var t APIToken
		var c, e int64
		if err := rows.Scan(&t.ID, &t.Principal, &t.Hash, &t.Description, &c, &e); err != nil {
			return nil, fmt.Errorf("list api tokens: %w", err)
		}
		t.CreatedAt, t.ExpiresAt = fromMS(c), fromMS(e)
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteAPIToken revokes a token.
func (s *DB) DeleteAPIToken(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM api_tokens WHERE id = ?`, id)
	return mustAffect(res, err, "api token "+id)
}

// CreateSubscription stores a subscription.
func (s *DB) CreateSubscription(ctx context.Context, sub Subscription) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO subscriptions (id, display_name, tags, created_at) VALUES (?, ?, ?, ?)`,
		sub.ID, sub.DisplayName, tagsJSON(sub.Tags), ms(sub.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("subscription %s: %w", sub.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create subscription: %w", err)
	}
	return nil
}

const subCols = `id, display_name, tags, created_at`

func scanSub(sc interface{ Scan(...any) error }) (Subscription, error) {
	var sub Subscription
	var tags string
	var c int64
	err := sc.Scan(&sub.ID, &sub.DisplayName, &tags, &c)
	sub.Tags, sub.CreatedAt = parseTags(tags), fromMS(c)
	return sub, err
}

// Subscription returns one subscription by id (case-insensitive).
func (s *DB) Subscription(ctx context.Context, id string) (Subscription, error) {
	sub, err := scanSub(s.r.QueryRowContext(ctx, `SELECT `+subCols+` FROM subscriptions WHERE id = ?`, strings.ToLower(id)))
	if err != nil {
		return sub, notFound(err, "subscription "+id)
	}
	return sub, nil
}

// ListSubscriptions returns every subscription, oldest first.
func (s *DB) ListSubscriptions(ctx context.Context) ([]Subscription, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+subCols+` FROM subscriptions ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	defer rows.Close()
	var out []Subscription
	for rows.Next() {
		sub, err := scanSub(rows)
		if err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", err)
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// CreateResourceGroup stores a resource group; names are unique per
// subscription regardless of case.
func (s *DB) CreateResourceGroup(ctx context.Context, g ResourceGroup) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO resource_groups (subscription_id, name, name_key, location, tags, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		strings.ToLower(g.SubscriptionID), g.Name, strings.ToLower(g.Name), g.Location, tagsJSON(g.Tags), ms(g.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("resource group %s: %w", g.Name, ErrConflict)
	}
	if err != nil {
		if isForeignKey(err) {
			return fmt.Errorf("subscription %s: %w", g.SubscriptionID, ErrNotFound)
		}
		return fmt.Errorf("create resource group: %w", err)
	}
	return nil
}

const rgCols = `subscription_id, name, location, tags, created_at`

func scanRG(sc interface{ Scan(...any) error }) (ResourceGroup, error) {
	var g ResourceGroup
	var tags string
	var c int64
	err := sc.Scan(&g.SubscriptionID, &g.Name, &g.Location, &tags, &c)
	g.Tags, g.CreatedAt = parseTags(tags), fromMS(c)
	return g, err
}

// ResourceGroup returns one resource group (name case-insensitive).
func (s *DB) ResourceGroup(ctx context.Context, subscriptionID, name string) (ResourceGroup, error) {
	g, err := scanRG(s.r.QueryRowContext(ctx, `SELECT `+rgCols+` FROM resource_groups WHERE subscription_id = ? AND name_key = ?`,
		strings.ToLower(subscriptionID), strings.ToLower(name)))
	if err != nil {
		return g, notFound(err, "resource group "+name)
	}
	return g, nil
}

// ListResourceGroups returns the groups of one subscription, or of all
// subscriptions when subscriptionID is empty.
func (s *DB) ListResourceGroups(ctx context.Context, subscriptionID string) ([]ResourceGroup, error) {
	q := `SELECT ` + rgCols + ` FROM resource_groups`
	var args []any
	if subscriptionID != "" {
		q += ` WHERE subscription_id = ?`
		args = append(args, strings.ToLower(subscriptionID))
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY subscription_id, name_key`, args...)
	if err != nil {
		return nil, fmt.Errorf("list resource groups: %w", err)
	}
	defer rows.Close()
	var out []ResourceGroup
	for rows.Next() {
		g, err := scanRG(rows)
		if err != nil {
			return nil, fmt.Errorf("list resource groups: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// CreateRoleAssignment stores an assignment; the same principal, role and
// scope twice is a conflict.
func (s *DB) CreateRoleAssignment(ctx context.Context, a RoleAssignment) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO role_assignments (id, principal, role, scope, scope_key, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		a.ID, a.Principal, a.Role, a.Scope, strings.ToLower(a.Scope), ms(a.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("role assignment of %s to %s at %s: %w", a.Role, a.Principal, a.Scope, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create role assignment: %w", err)
	}
	return nil
}

const raCols = `id, principal, role, scope, created_at`

func scanRA(sc interface{ Scan(...any) error }) (RoleAssignment, error) {
	var a RoleAssignment
	var c int64
	err := sc.Scan(&a.ID, &a.Principal, &a.Role, &a.Scope, &c)
	a.CreatedAt = fromMS(c)
	return a, err
}

func (s *DB) queryRA(ctx context.Context, q string, args ...any) ([]RoleAssignment, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list role assignments: %w", err)
	}
	defer rows.Close()
	var out []RoleAssignment
	for rows.Next() {
		a, err := scanRA(rows)
		if err != nil {
			return nil, fmt.Errorf("list role assignments: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// RoleAssignment returns one assignment.
func (s *DB) RoleAssignment(ctx context.Context, id string) (RoleAssignment, error) {
	a, err := scanRA(s.r.QueryRowContext(ctx, `SELECT `+raCols+` FROM role_assignments WHERE id = ?`, id))
	if err != nil {
		return a, notFound(err, "role assignment "+id)
	}
	return a, nil
}

// ListRoleAssignments returns every assignment.
func (s *DB) ListRoleAssignments(ctx context.Context) ([]RoleAssignment, error) {
	return s.queryRA(ctx, `SELECT `+raCols+` FROM role_assignments ORDER BY scope_key, principal, role`)
}

// RoleAssignmentsFor returns the assignments of one principal.
func (s *DB) RoleAssignmentsFor(ctx context.Context, principal string) ([]RoleAssignment, error) {
	return s.queryRA(ctx, `SELECT `+raCols+` FROM role_assignments WHERE principal = ? ORDER BY scope_key, role`, principal)
}

// DeleteRoleAssignment removes one assignment.
func (s *DB) DeleteRoleAssignment(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM role_assignments WHERE id = ?`, id)
	return mustAffect(res, err, "role assignment "+id)
}

// CreateOnboarding stores an onboarding credential's hash and limits.
func (s *DB) CreateOnboarding(ctx context.Context, c OnboardingCredential) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO onboarding_credentials (id, hash, subscription_id, resource_group, description, created_by, created_at, expires_at, uses_total, uses_left, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Hash, strings.ToLower(c.SubscriptionID), c.ResourceGroup, c.Description, c.CreatedBy, ms(c.CreatedAt), ms(c.ExpiresAt), c.UsesTotal, c.UsesLeft, ms(c.RevokedAt))
	if isUnique(err) {
		return fmt.Errorf("onboarding credential %s: %w", c.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create onboarding credential: %w", err)
	}
	return nil
}

const obCols = `id, hash, subscription_id, resource_group, description, created_by, created_at, expires_at, uses_total, uses_left, revoked_at`

func scanOB(sc interface{ Scan(...any) error }) (OnboardingCredential, error) {
	var c OnboardingCredential
	var cr, ex, rv int64
	err := sc.Scan(&c.ID, &c.Hash, &c.SubscriptionID, &c.ResourceGroup, &c.Description, &c.CreatedBy, &cr, &ex, &c.UsesTotal, &c.UsesLeft, &rv)
	c.CreatedAt, c.ExpiresAt, c.RevokedAt = fromMS(cr), fromMS(ex), fromMS(rv)
	return c, err
}

// Onboarding returns one credential by id.
func (s *DB) Onboarding(ctx context.Context, id string) (OnboardingCredential, error) {
	c, err := scanOB(s.r.QueryRowContext(ctx, `SELECT `+obCols+` FROM onboarding_credentials WHERE id = ?`, id))
	if err != nil {
		return c, notFound(err, "onboarding credential "+id)
	}
	return c, nil
}

// ListOnboarding returns every credential, newest first.
func (s *DB) ListOnboarding(ctx context.Context) ([]OnboardingCredential, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+obCols+` FROM onboarding_credentials ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list onboarding credentials: %w", err)
	}
	defer rows.Close()
	var out []OnboardingCredential
	for rows.Next() {
		c, err := scanOB(rows)
		if err != nil {
			return nil, fmt.Errorf("list onboarding credentials: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RevokeOnboarding marks a credential revoked (idempotent).
func (s *DB) RevokeOnboarding(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE onboarding_credentials SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE id = ?`, ms(at), id)
	return mustAffect(res, err, "onboarding credential "+id)
}

// RegisterMachine consumes one credential use and inserts the machine.
func (s *DB) RegisterMachine(ctx context.Context, credentialHash string, now time.Time, m *Machine) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("register machine: %w", err)
	}
	defer tx.Rollback()
	c, err := scanOB(tx.QueryRowContext(ctx, `SELECT `+obCols+` FROM onboarding_credentials WHERE hash = ?`+s.forUpdate(), credentialHash))
	if err != nil {
		return notFound(err, "onboarding credential")
	}
	switch {
	case !c.RevokedAt.IsZero():
		return fmt.Errorf("onboarding credential %s: %w", c.ID, ErrOnboardingRevoked)
	case !now.Before(c.ExpiresAt):
		return fmt.Errorf("onboarding credential %s (expired %s): %w", c.ID, c.ExpiresAt.Format(time.RFC3339), ErrOnboardingExpired)
	case c.UsesLeft <= 0:
		return fmt.Errorf("onboarding credential %s: %w", c.ID, ErrOnboardingUsedUp)
	}
	g, err := scanRG(tx.QueryRowContext(ctx, `SELECT `+rgCols+` FROM resource_groups WHERE subscription_id = ? AND name_key = ?`, c.SubscriptionID, strings.ToLower(c.ResourceGroup)))
	if err != nil {
		return notFound(err, "resource group "+c.ResourceGroup)
	}
	// The decrement itself decides (the read above may be stale on an
	// engine at READ COMMITTED with several replicas): no row affected
	// means another registration took the last use.
	res, err := tx.ExecContext(ctx, `UPDATE onboarding_credentials SET uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0 AND revoked_at = 0`, c.ID)
	if err != nil {
		return fmt.Errorf("register machine: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("onboarding credential %s: %w", c.ID, errors.Join(ErrOnboardingUsedUp, err))
	}
	m.SubscriptionID, m.ResourceGroup, m.OnboardingID = g.SubscriptionID, g.Name, c.ID
	if m.ResourceID == "" {
		m.ResourceID = MachineResourceID(g.SubscriptionID, g.Name, m.Name)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO machines (id, name, name_key, subscription_id, resource_group, rg_key, resource_id, public_key, key_thumbprint, inventory, tags, agent_version, created_at, last_heartbeat, onboarding_id, desired_state, desired_etag, status, status_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0)`,
		m.ID, m.Name, strings.ToLower(m.Name), m.SubscriptionID, m.ResourceGroup, strings.ToLower(m.ResourceGroup), m.ResourceID, m.PublicKeyPEM, m.KeyThumbprint,
		string(m.Inventory), tagsJSON(m.Tags), m.AgentVersion, ms(m.CreatedAt), ms(m.LastHeartbeat), m.OnboardingID, string(m.DesiredState), m.DesiredETag)
	if isUnique(err) {
		return fmt.Errorf("machine %s in resource group %s: %w", m.Name, g.Name, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("register machine: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO machine_heartbeats (machine_id, last_heartbeat, agent_version) VALUES (?, ?, ?)`, m.ID, ms(m.LastHeartbeat), m.AgentVersion); err != nil {
		return fmt.Errorf("register machine: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("register machine: %w", err)
	}
	return nil
}

// MachineResourceID is the ARM-style resource id of a machine.
func MachineResourceID(subscriptionID, resourceGroup, name string) string {
	return "/subscriptions/" + subscriptionID + "/resourceGroups/" + resourceGroup + "/providers/Microsoft.HybridCompute/machines/" + name
}

// mSelect reads machines with their latest heartbeat.
const mSelect = `SELECT m.id, m.name, m.subscription_id, m.resource_group, m.resource_id, m.public_key, m.key_thumbprint, m.inventory, m.tags,
	COALESCE(h.agent_version, m.agent_version), m.created_at, COALESCE(h.last_heartbeat, m.last_heartbeat), m.onboarding_id,
	m.desired_state, m.desired_etag, m.status, m.status_at
	FROM machines m LEFT JOIN machine_heartbeats h ON h.machine_id = m.id`

func scanMachine(sc interface{ Scan(...any) error }) (Machine, error) {
	var m Machine
	var inv, tags, ds string
	var st sql.NullString
	var c, hb, sa int64
	err := sc.Scan(&m.ID, &m.Name, &m.SubscriptionID, &m.ResourceGroup, &m.ResourceID, &m.PublicKeyPEM, &m.KeyThumbprint, &inv, &tags, &m.AgentVersion, &c, &hb, &m.OnboardingID, &ds, &m.DesiredETag, &st, &sa)
	m.Inventory, m.Tags, m.DesiredState = []byte(inv), parseTags(tags), []byte(ds)
	if st.Valid {
		m.Status = []byte(st.String)
	}
	m.CreatedAt, m.LastHeartbeat, m.StatusAt = fromMS(c), fromMS(hb), fromMS(sa)
	return m, err
}

// Machine returns one machine by id.
func (s *DB) Machine(ctx context.Context, id string) (Machine, error) {
	m, err := scanMachine(s.r.QueryRowContext(ctx, mSelect+` WHERE m.id = ?`, id))
	if err != nil {
		return m, notFound(err, "machine "+id)
	}
	return m, nil
}

// scopeWhere is the " AND …" condition on the machines table (alias m)
// that keeps the machines of a subscription and resource group (either
// empty: any), with its arguments.
func scopeWhere(subscriptionID, resourceGroup string) (string, []any) {
	var q string
	var args []any
	if subscriptionID != "" {
		q += ` AND m.subscription_id = ?`
		args = append(args, strings.ToLower(subscriptionID))
	}
	if resourceGroup != "" {
		q += ` AND m.rg_key = ?`
		args = append(args, strings.ToLower(resourceGroup))
	}
	return q, args
}

// ListMachines returns machines matching f, ordered by scope and name.
func (s *DB) ListMachines(ctx context.Context, f MachineFilter) ([]Machine, error) {
	q := mSelect + ` WHERE 1 = 1`
	scope, args := scopeWhere(f.SubscriptionID, f.ResourceGroup)
	q += scope
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY m.subscription_id, m.rg_key, m.name_key`, args...)
	if err != nil {
		return nil, fmt.Errorf("list machines: %w", err)
	}
	defer rows.Close()
	var out []Machine
	for rows.Next() {
		m, err := scanMachine(rows)
		if err != nil {
			return nil, fmt.Errorf("list machines: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// UpdateMachineTags replaces a machine's tags.
func (s *DB) UpdateMachineTags(ctx context.Context, id string, tags map[string]string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE machines SET tags = ? WHERE id = ?`, tagsJSON(tags), id)
	return mustAffect(res, err, "machine "+id)
}

// DeleteMachine removes a machine.
func (s *DB) DeleteMachine(ctx context.Context, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete machine %s: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM machines WHERE id = ?`, id)
	if err := mustAffect(res, err, "machine "+id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM machine_heartbeats WHERE machine_id = ?`, id); err != nil {
		return fmt.Errorf("delete machine %s: %w", id, err)
	}
	if err := deleteMachineAudits(ctx, tx, id); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete machine %s: %w", id, err)
	}
	return nil
}

// RecordHeartbeats records a batch of heartbeats in one transaction. A
// heartbeat never moves last_heartbeat backwards, and an older one (from
// another replica's later batch) does not overwrite the agent version of
// a newer one; unknown machines (deleted meanwhile) are skipped.
func (s *DB) RecordHeartbeats(ctx context.Context, hbs []Heartbeat) error {
	if len(hbs) == 0 {
		return nil
	}
	if s.dialect == dialectPostgres {
		return s.recordHeartbeatsPG(ctx, hbs)
	}
	// Prepare outside the transaction: the writer pool has one connection.
	s.hbOnce.Do(func() {
		s.hbStmt, s.hbErr = s.w.PrepareContext(context.Background(), `UPDATE machine_heartbeats SET
		last_heartbeat = CASE WHEN last_heartbeat < ? THEN ? ELSE last_heartbeat END,
		agent_version = CASE WHEN ? <> '' AND last_heartbeat <= ? THEN ? ELSE agent_version END
		WHERE machine_id = ?`)
	})
	if s.hbErr != nil {
		return fmt.Errorf("record heartbeats: %w", s.hbErr)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record heartbeats: %w", err)
	}
	defer tx.Rollback()
	st := tx.StmtContext(ctx, s.hbStmt)
	defer st.Close()
	for _, h := range hbs {
		at := ms(h.At)
		if _, err := st.ExecContext(ctx, at, at, h.AgentVersion, at, h.AgentVersion, h.MachineID); err != nil {
			return fmt.Errorf("record heartbeat of %s: %w", h.MachineID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record heartbeats: %w", err)
	}
	return nil
}

// SetMachineStatus stores the status a machine reported.
func (s *DB) SetMachineStatus(ctx context.Context, id string, status []byte, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE machines SET status = ?, status_at = ? WHERE id = ?`, string(status), ms(at), id)
	return mustAffect(res, err, "machine "+id)
}

// UpdateMachineStatus is the read-modify-write of a machine's status in
// one write transaction.
func (s *DB) UpdateMachineStatus(ctx context.Context, id string, at time.Time, fn func(cur []byte) ([]byte, error)) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update the status of machine %s: %w", id, err)
	}
	defer tx.Rollback()
	var st sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT status FROM machines WHERE id = ?`+s.forUpdate(), id).Scan(&st); err != nil {
		return notFound(err, "machine "+id)
	}
	var cur []byte
	if st.Valid {
		cur = []byte(st.String)
	}
	next, err := fn(cur)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE machines SET status = ?, status_at = ? WHERE id = ?`, string(next), ms(at), id); err != nil {
		return fmt.Errorf("update the status of machine %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update the status of machine %s: %w", id, err)
	}
	return nil
}

// SetDesiredState replaces a machine's desired-state document.
func (s *DB) SetDesiredState(ctx context.Context, id string, doc []byte, etag string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE machines SET desired_state = ?, desired_etag = ? WHERE id = ?`, string(doc), etag, id)
	return mustAffect(res, err, "machine "+id)
}

// UpdateDesiredState is the read-modify-write of a desired state in one
// write transaction (the writer pool's single connection and BEGIN
// IMMEDIATE serialise it against every other write).
func (s *DB) UpdateDesiredState(ctx context.Context, id string, fn func(cur DesiredState) (*DesiredState, error)) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update the desired state of machine %s: %w", id, err)
	}
	defer tx.Rollback()
	var doc, etag, priv string
	if err := tx.QueryRowContext(ctx, `SELECT desired_state, desired_etag, desired_private FROM machines WHERE id = ?`+s.forUpdate(), id).Scan(&doc, &etag, &priv); err != nil {
		return notFound(err, "machine "+id)
	}
	next, err := fn(DesiredState{Doc: []byte(doc), ETag: etag, Private: []byte(priv)})
	if err != nil {
		return err
	}
	if next == nil {
		return nil
	}
	if next.Private == nil {
		next.Private = []byte("{}")
	}
	if _, err := tx.ExecContext(ctx, `UPDATE machines SET desired_state = ?, desired_etag = ?, desired_private = ? WHERE id = ?`, string(next.Doc), next.ETag, string(next.Private), id); err != nil {
		return fmt.Errorf("update the desired state of machine %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update the desired state of machine %s: %w", id, err)
	}
	return nil
}

const gaSelect = `SELECT subscription_id, rg_key, name, doc, updated_at FROM guestconfig_group_assignments`

func queryGroupAssignments(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, sub, rgKey string) ([]GroupAssignment, error) {
	rows, err := q.QueryContext(ctx, gaSelect+` WHERE subscription_id = ? AND rg_key = ? ORDER BY name_key`, strings.ToLower(sub), rgKey)
	if err != nil {
		return nil, fmt.Errorf("list the guest configuration assignments of resource group %s: %w", rgKey, err)
	}
	defer rows.Close()
	out := []GroupAssignment{}
	for rows.Next() {
		var g GroupAssignment
		var doc string
		var at int64
		if err := rows.Scan(&g.SubscriptionID, &g.ResourceGroup, &g.Name, &doc, &at); err != nil {
			return nil, fmt.Errorf("list the guest configuration assignments of resource group %s: %w", rgKey, err)
		}
		g.Doc, g.UpdatedAt = []byte(doc), fromMS(at)
		out = append(out, g)
	}
	return out, rows.Err()
}

// ListGroupAssignments lists a resource group's guest configuration
// assignments.
func (s *DB) ListGroupAssignments(ctx context.Context, subscriptionID, resourceGroup string) ([]GroupAssignment, error) {
	return queryGroupAssignments(ctx, s.r, subscriptionID, strings.ToLower(resourceGroup))
}

// syncMachines runs sync for every machine of a group inside tx.
func (s *DB) syncMachines(ctx context.Context, tx *sql.Tx, where string, args []any, group func(sub, rgKey string) ([]GroupAssignment, error), sync SyncFunc) error {
	type row struct {
		ref                         MachineRef
		sub, rgKey, doc, etag, priv string
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, resource_id, subscription_id, rg_key, desired_state, desired_etag, desired_private FROM machines WHERE `+where+` ORDER BY id`+s.forUpdate(), args...)
	if err != nil {
		return fmt.Errorf("read the desired states to update: %w", err)
	}
	var ms []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.ref.ID, &r.ref.ResourceID, &r.sub, &r.rgKey, &r.doc, &r.etag, &r.priv); err != nil {
			rows.Close()
			return fmt.Errorf("read the desired states to update: %w", err)
		}
		ms = append(ms, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the desired states to update: %w", err)
	}
	for _, m := range ms {
		g, err := group(m.sub, m.rgKey)
		if err != nil {
			return err
		}
		next, err := sync(m.ref, DesiredState{Doc: []byte(m.doc), ETag: m.etag, Private: []byte(m.priv)}, g)
		if err != nil {
			return err
		}
		if next == nil {
			continue
		}
		if next.Private == nil {
			next.Private = []byte("{}")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE machines SET desired_state = ?, desired_etag = ?, desired_private = ? WHERE id = ?`, string(next.Doc), next.ETag, string(next.Private), m.ref.ID); err != nil {
			return fmt.Errorf("update the desired state of machine %s: %w", m.ref.ID, err)
		}
	}
	return nil
}

// UpdateGroupAssignments changes a group's assignments and its machines'
// desired states in one write transaction.
func (s *DB) UpdateGroupAssignments(ctx context.Context, subscriptionID, resourceGroup string, fn func(cur []GroupAssignment) ([]GroupAssignment, error), sync SyncFunc) error {
	sub, rgKey := strings.ToLower(subscriptionID), strings.ToLower(resourceGroup)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update the guest configuration assignments of resource group %s: %w", resourceGroup, err)
	}
	defer tx.Rollback()
	if err := s.lock(ctx, tx, "guestconfig-group/"+sub+"/"+rgKey); err != nil {
		return fmt.Errorf("update the guest configuration assignments of resource group %s: %w", resourceGroup, err)
	}
	cur, err := queryGroupAssignments(ctx, tx, sub, rgKey)
	if err != nil {
		return err
	}
	next, err := fn(cur)
	if err != nil || next == nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM guestconfig_group_assignments WHERE subscription_id = ? AND rg_key = ?`, sub, rgKey); err != nil {
		return fmt.Errorf("update the guest configuration assignments of resource group %s: %w", resourceGroup, err)
	}
	for _, g := range next {
		if _, err := tx.ExecContext(ctx, `INSERT INTO guestconfig_group_assignments (subscription_id, rg_key, name, name_key, doc, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
			sub, rgKey, g.Name, strings.ToLower(g.Name), string(g.Doc), ms(g.UpdatedAt)); err != nil {
			if isUnique(err) {
				return fmt.Errorf("guest configuration assignment %s in resource group %s: %w", g.Name, resourceGroup, ErrConflict)
			}
			return fmt.Errorf("update the guest configuration assignments of resource group %s: %w", resourceGroup, err)
		}
	}
	stored, err := queryGroupAssignments(ctx, tx, sub, rgKey)
	if err != nil {
		return err
	}
	group := func(string, string) ([]GroupAssignment, error) { return stored, nil }
	if err := s.syncMachines(ctx, tx, `subscription_id = ? AND rg_key = ?`, []any{sub, rgKey}, group, sync); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update the guest configuration assignments of resource group %s: %w", resourceGroup, err)
	}
	return nil
}

// SyncGroupAssignments runs sync for one machine in one write transaction.
func (s *DB) SyncGroupAssignments(ctx context.Context, machineID string, sync SyncFunc) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update the desired state of machine %s: %w", machineID, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM machines WHERE id = ?`, machineID).Scan(&n); err != nil || n == 0 {
		return notFound(sql.ErrNoRows, "machine "+machineID)
	}
	group := func(sub, rgKey string) ([]GroupAssignment, error) { return queryGroupAssignments(ctx, tx, sub, rgKey) }
	if err := s.syncMachines(ctx, tx, `id = ?`, []any{machineID}, group, sync); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update the desired state of machine %s: %w", machineID, err)
	}
	return nil
}

// CreatePackage records a published package.
func (s *DB) CreatePackage(ctx context.Context, p Package) error {
	if p.Kind == "" {
		p.Kind = KindExtension
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO packages (publisher, type, version, name_key, sha256, size, key_id, published_at, published_by, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.Publisher, p.Type, p.Version, PackageKey(p.Publisher, p.Type, p.Version), p.SHA256, p.Size, p.KeyID, ms(p.PublishedAt), p.PublishedBy, p.Kind)
	if isUnique(err) {
		return fmt.Errorf("package %s.%s-%s (sha256 %s): %w", p.Publisher, p.Type, p.Version, p.SHA256, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store package %s.%s-%s: %w", p.Publisher, p.Type, p.Version, err)
	}
	return nil
}

const pkgSelect = `SELECT publisher, type, version, sha256, size, key_id, published_at, published_by, kind FROM packages`

func scanPackage(sc interface{ Scan(...any) error }) (Package, error) {
	var p Package
	var at int64
	err := sc.Scan(&p.Publisher, &p.Type, &p.Version, &p.SHA256, &p.Size, &p.KeyID, &at, &p.PublishedBy, &p.Kind)
	p.PublishedAt = fromMS(at)
	return p, err
}

// PackageByName finds a package by publisher, type and version.
func (s *DB) PackageByName(ctx context.Context, publisher, typ, version string) (Package, error) {
	p, err := scanPackage(s.r.QueryRowContext(ctx, pkgSelect+` WHERE name_key = ?`, PackageKey(publisher, typ, version)))
	if err != nil {
		return p, notFound(err, "package "+publisher+"."+typ+"-"+version)
	}
	return p, nil
}

// PackageBySHA256 finds a package by its digest.
func (s *DB) PackageBySHA256(ctx context.Context, sha256 string) (Package, error) {
	p, err := scanPackage(s.r.QueryRowContext(ctx, pkgSelect+` WHERE sha256 = ?`, sha256))
	if err != nil {
		return p, notFound(err, "package with sha256 "+sha256)
	}
	return p, nil
}

// ListPackages lists packages, optionally of one publisher, type and kind.
func (s *DB) ListPackages(ctx context.Context, publisher, typ, kind string) ([]Package, error) {
	q := pkgSelect + ` WHERE 1 = 1`
	var args []any
	if publisher != "" {
		q += ` AND LOWER(publisher) = ?`
		args = append(args, strings.ToLower(publisher))
	}
	if typ != "" {
		q += ` AND LOWER(type) = ?`
		args = append(args, strings.ToLower(typ))
	}
	if kind != "" {
		q += ` AND kind = ?`
		args = append(args, kind)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY LOWER(publisher), LOWER(type), published_at, version`, args...)
	if err != nil {
		return nil, fmt.Errorf("list packages: %w", err)
	}
	defer rows.Close()
	var out []Package
	for rows.Next() {
		p, err := scanPackage(rows)
		if err != nil {
			return nil, fmt.Errorf("list packages: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// AddSigningKey stores a new token-signing key.
func (s *DB) AddSigningKey(ctx context.Context, k SigningKey) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO signing_keys (kid, private_pem, created_at, retired_at) VALUES (?, ?, ?, ?)`,
		k.KID, string(k.PrivatePEM), ms(k.CreatedAt), ms(k.RetiredAt))
	if isUnique(err) {
		return fmt.Errorf("signing key %s: %w", k.KID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store signing key: %w", err)
	}
	return nil
}

// RetireSigningKeys marks every active key except exceptKID retired at at.
func (s *DB) RetireSigningKeys(ctx context.Context, exceptKID string, at time.Time) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE signing_keys SET retired_at = ? WHERE retired_at = 0 AND kid <> ?`, ms(at), exceptKID); err != nil {
		return fmt.Errorf("retire signing keys: %w", err)
	}
	return nil
}

// SigningKeys returns every key, newest first.
func (s *DB) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kid, private_pem, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, kid`)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	defer rows.Close()
	var out []SigningKey
	for rows.Next() {
		var k SigningKey
		var pemText string
		var c, r int64
		if err := rows.Scan(&k.KID, &pemText, &c, &r); err != nil {
			return nil, fmt.Errorf("read signing keys: %w", err)
		}
		k.PrivatePEM, k.CreatedAt, k.RetiredAt = []byte(pemText), fromMS(c), fromMS(r)
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteSigningKey removes a key that no longer verifies any live token.
func (s *DB) DeleteSigningKey(ctx context.Context, kid string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM signing_keys WHERE kid = ?`, kid)
	return mustAffect(res, err, "signing key "+kid)
}

// Backup writes a consistent snapshot with VACUUM INTO. The copy is made in
// a private temporary directory beside path, made 0600, then renamed into
// place, so the snapshot is never readable by others.
func (s *DB) Backup(ctx context.Context, path string) error {
	if s.dialect == dialectPostgres {
		return fmt.Errorf("back up %s: %w", s.path, ErrBackupUnsupported)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("backup target %s: %w (choose a new file name)", path, ErrConflict)
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".arcserver-backup-*")
	if err != nil {
		return fmt.Errorf("create a temporary directory beside %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("protect %s: %w", dir, err)
	}
	tmp := filepath.Join(dir, "backup.db")
	if _, err := s.r.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return fmt.Errorf("copy the database to %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("protect %s: %w", tmp, err)
	}
	if err := os.Link(tmp, path); err != nil { // fails rather than overwrite
		return fmt.Errorf("move the backup to %s: %w", path, err)
	}
	return nil
}
