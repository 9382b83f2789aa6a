package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// dialect is the SQL engine behind a DB.
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// IsPostgresURL reports whether spec names a PostgreSQL database
// (postgres:// or postgresql://) rather than a SQLite file.
func IsPostgresURL(spec string) bool {
	l := strings.ToLower(spec)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// RedactURL returns a database URL with its password replaced, for
// messages and logs. A spec that does not parse is reduced to its scheme.
func RedactURL(spec string) string {
	if !IsPostgresURL(spec) {
		return spec
	}
	u, err := url.Parse(spec)
	if err != nil {
		return spec[:strings.Index(spec, "://")+3] + "…"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// urlPassword is the password a database URL holds ("" if none).
func urlPassword(spec string) string {
	u, err := url.Parse(spec)
	if err != nil {
		return ""
	}
	if p, ok := u.User.Password(); ok {
		return p
	}
	return u.Query().Get("password")
}

// redactedError hides a password that a driver error may quote.
type redactedError struct {
	err    error
	secret string
}

func (e *redactedError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.secret, "xxxxx")
}
func (e *redactedError) Unwrap() error { return e.err }

func redactErr(err error, spec string) error {
	if err == nil {
		return nil
	}
	if p := urlPassword(spec); p != "" {
		return &redactedError{err: err, secret: p}
	}
	return err
}

// OpenPostgres connects to the PostgreSQL database named by url, applies
// the pending migrations (under an advisory lock, so replicas starting at
// once migrate only once) and returns the store.
func OpenPostgres(ctx context.Context, dsn string) (*DB, error) {
	return openPostgres(ctx, dsn, true)
}

func openPostgres(ctx context.Context, dsn string, migrate bool) (*DB, error) {
	name := RedactURL(dsn)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("database URL %s: %w", name, redactErr(err, dsn))
	}
	conn := &rewriteConnector{c: stdlib.GetConnector(*cfg)}
	w := sql.OpenDB(conn)
	// 8 + 8 connections a replica: enough to keep two cores busy, and
	// several replicas fit PostgreSQL's default max_connections (100).
	w.SetMaxOpenConns(8)
	w.SetMaxIdleConns(8)
	w.SetConnMaxIdleTime(5 * time.Minute)
	r := sql.OpenDB(conn)
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	r.SetConnMaxIdleTime(5 * time.Minute)
	s := &DB{w: w, r: r, path: name, dialect: dialectPostgres}
	if err := w.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to %s (is PostgreSQL running, and the user, password and database right?): %w", name, redactErr(err, dsn))
	}
	if !migrate {
		return s, nil
	}
	if err := s.migratePostgres(ctx); err != nil {
		s.Close()
		return nil, redactErr(err, dsn)
	}
	return s, nil
}

// migrateLockKey is the advisory lock the migrations of every replica
// take; any constant does, advisory locks are per database.
const migrateLockKey = 0x6172637365727665 // "arcserve"

// migratePostgres applies every pending migration in one transaction
// holding an advisory lock: PostgreSQL's DDL is transactional, so a
// failure leaves the schema as it was, and a second replica waits, then
// finds nothing left to do.
func (s *DB) migratePostgres(ctx context.Context) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", s.path, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(migrateLockKey)); err != nil {
		return fmt.Errorf("lock %s for migration: %w", s.path, err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("prepare schema migrations in %s: %w", s.path, err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("read schema version of %s: %w", s.path, err)
	}
	if cur > len(migrations) {
		return fmt.Errorf("database %s has schema version %d but this arcserver knows only %d: run a newer arcserver", s.path, cur, len(migrations))
	}
	for v := cur + 1; v <= len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("migrate %s to version %d: %w", s.path, v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, v, ms(time.Now())); err != nil {
			return fmt.Errorf("migrate %s to version %d: %w", s.path, v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %s: %w", s.path, err)
	}
	return nil
}

// forUpdate is the row-lock clause a read-modify-write SELECT ends with:
// FOR UPDATE on PostgreSQL, which runs at READ COMMITTED; nothing on
// SQLite, whose single writer connection and BEGIN IMMEDIATE already
// serialise every write transaction.
func (s *DB) forUpdate() string {
	if s.dialect == dialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// lock takes a transaction-scoped lock on key, for read-modify-writes
// that have no single row to lock (a group's set of assignments, the
// tenant). A no-op on SQLite, where write transactions are serial.
func (s *DB) lock(ctx context.Context, tx *sql.Tx, key string) error {
	if s.dialect != dialectPostgres {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(h.Sum64())); err != nil {
		return fmt.Errorf("lock %s: %w", key, err)
	}
	return nil
}

// pgCode is the SQLSTATE of a PostgreSQL error ("" for other errors).
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// isForeignKey reports whether err is a foreign-key violation.
func isForeignKey(err error) bool {
	if err == nil {
		return false
	}
	if pgCode(err) == "23503" {
		return true
	}
	return strings.Contains(err.Error(), "FOREIGN KEY")
}

// rewriteConnector wraps pgx's database/sql connector so that the store's
// SQL, written with SQLite's ? placeholders, runs unchanged: every query
// text is rewritten to PostgreSQL's $1, $2, … before it reaches pgx.
type rewriteConnector struct{ c driver.Connector }

func (rc *rewriteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := rc.c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &rewriteConn{Conn: c.(*stdlib.Conn)}, nil
}

func (rc *rewriteConnector) Driver() driver.Driver { return rc.c.Driver() }

// rewriteConn is a pgx connection whose query texts are rewritten.
type rewriteConn struct{ *stdlib.Conn }

func (c *rewriteConn) Prepare(q string) (driver.Stmt, error) {
	return c.Conn.Prepare(rebind(q))
}

func (c *rewriteConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, rebind(q))
}

func (c *rewriteConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, rebind(q), args)
}

func (c *rewriteConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, rebind(q), args)
}

// rebind rewrites ? placeholders to $1, $2, … outside string literals
// (E'…' escape strings included), quoted identifiers, dollar-quoted
// strings and comments (block comments nest, as in PostgreSQL); a $
// inside an identifier (a$b) opens no dollar quote.
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '?':
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		case c == '\'' || c == '"':
			// A quoted literal or identifier; a doubled quote is an
			// escaped one and keeps the literal open, and so is a
			// backslashed one in an E'…' string.
			escapes := c == '\'' && i > 0 && (q[i-1] == 'E' || q[i-1] == 'e') && (i < 2 || !identByte(q[i-2]))
			j := i + 1
			for j < len(q) {
				if escapes && q[j] == '\\' {
					j += 2
					continue
				}
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			end := min(j+1, len(q))
			b.WriteString(q[i:end])
			i = end - 1
			continue
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j - 1
			continue
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end, depth := len(q), 0
			for j := i; j+1 < len(q); j++ {
				if q[j] == '/' && q[j+1] == '*' {
					depth++
					j++
				} else if q[j] == '*' && q[j+1] == '/' {
					depth--
					j++
					if depth == 0 {
						end = j + 1
						break
					}
				}
			}
			b.WriteString(q[i:end])
			i = end - 1
			continue
		case c == '$' && (i == 0 || !identByte(q[i-1])):
			// $tag$ … $tag$ (tag may be empty); $1 is not a quote.
			if tag, ok := dollarTag(q[i:]); ok {
				j := strings.Index(q[i+len(tag):], tag)
				end := len(q)
				if j >= 0 {
					end = i + len(tag) + j + len(tag)
				}
				b.WriteString(q[i:end])
				i = end - 1
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// identByte reports whether c may continue an unquoted identifier or
// keyword (PostgreSQL allows $ after the first character).
func identByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// dollarTag returns the opening $tag$ at the start of s, if there is one.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '$':
			return s[:j+1], true
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || (j > 1 && c >= '0' && c <= '9'):
		default:
			return "", false
		}
	}
	return "", false
}
