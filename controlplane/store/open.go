package store

import (
	"context"
	"errors"
)

// ErrBackupUnsupported is Backup on PostgreSQL: its own tools (pg_dump,
// base backups with WAL archiving) make consistent copies.
var ErrBackupUnsupported = errors.New("arcserver backup copies SQLite databases only; back a PostgreSQL database up with pg_dump or its base backups")

// Open opens the store that spec names, applying pending migrations: a
// postgres:// or postgresql:// URL is a PostgreSQL database, anything else
// the path of a SQLite database file (created 0600 if missing).
func Open(ctx context.Context, spec string) (*DB, error) {
	if IsPostgresURL(spec) {
		return OpenPostgres(ctx, spec)
	}
	return OpenSQLite(ctx, spec)
}

// Postgres reports whether the store is on PostgreSQL.
func (s *DB) Postgres() bool { return s.dialect == dialectPostgres }

// Name is the database file, or the URL with its password redacted.
func (s *DB) Name() string { return s.path }
