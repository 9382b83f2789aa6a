package controlplane

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/errcode"
)

// Error codes of the database choice and arcserver migrate (ARC0650–ARC0669).
const (
	CodeDatabase        errcode.Code = "ARC0650" // the --database URL is invalid or PostgreSQL is unreachable
	CodeMigrateTarget   errcode.Code = "ARC0651" // arcserver migrate's target database is not empty
	CodeMigrateFailed   errcode.Code = "ARC0652" // arcserver migrate failed; nothing was committed
	CodeBackupPostgres  errcode.Code = "ARC0653" // arcserver backup of a PostgreSQL database
	CodeDatabaseInitted errcode.Code = "ARC0654" // arcserver init on a PostgreSQL database that has a tenant
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeDatabase, Exit: errcode.ExitFailed, Title: "the PostgreSQL database cannot be opened",
			Remedy: "check --database (postgres://USER@HOST:5432/DB?sslmode=verify-full; the password may come from PGPASSWORD or ~/.pgpass instead of the URL), that PostgreSQL runs and that the role may create tables in the database"},
		{Code: CodeMigrateTarget, Exit: errcode.ExitUsage, Title: "the target PostgreSQL database is not empty",
			Remedy: "arcserver migrate copies into an empty database only (it never merges): create a new database (`createdb -O USER arcserver`) and run the migration again"},
		{Code: CodeMigrateFailed, Exit: errcode.ExitFailed, Title: "copying the SQLite database into PostgreSQL failed",
			Remedy: "nothing was committed in the target: fix the cause named in the message and run `arcserver migrate` again"},
		{Code: CodeBackupPostgres, Exit: errcode.ExitUsage, Title: "arcserver backup copies SQLite databases only",
			Remedy: "back a PostgreSQL database up with its own tools: `pg_dump --format=custom` or base backups with WAL archiving"},
		{Code: CodeDatabaseInitted, Exit: errcode.ExitUsage, Title: "the PostgreSQL database is already initialised",
			Remedy: "serve it (`arcserver serve --data DIR --database URL`), with a copy of the data directory of the first init on every replica, or initialise an empty database"},
	} {
		errcode.Register(i)
	}
}

// OpenStoreAt opens the store of a data directory: the PostgreSQL database
// at database when it is set (a postgres:// URL), else DIR/arcserver.db.
// Pending migrations run in either case.
func OpenStoreAt(ctx context.Context, dir, database string) (*store.DB, error) {
	if database == "" {
		return OpenStore(ctx, dir)
	}
	if !store.IsPostgresURL(database) {
		return nil, errcode.New(errcode.Usage, "--database must be a postgres:// or postgresql:// URL (without it the data directory's SQLite database is used)")
	}
	st, err := store.Open(ctx, database)
	if err != nil {
		return nil, errcode.Wrap(CodeDatabase, err, "open the database")
	}
	return st, nil
}

// MigrateOptions configures Migrate.
type MigrateOptions struct {
	DataDir  string // the SQLite data directory to copy
	Database string // the empty PostgreSQL database to copy into
}

// MigrateResult is what Migrate copied.
type MigrateResult struct {
	Source string             `json:"source"`
	Target string             `json:"target"` // password redacted
	Tables []store.TableCount `json:"tables"`
}

// Migrate copies every table of a data directory's SQLite database into
// an empty PostgreSQL database, all or nothing (store.CopyAll), with the
// published packages' bytes (those still only in packages/ are first
// copied into the SQLite database, ImportPackageFiles). Files of the data
// directory (TLS material, protected-settings key) stay where they are.
func Migrate(ctx context.Context, o MigrateOptions) (MigrateResult, error) {
	if o.Database == "" || !store.IsPostgresURL(o.Database) {
		return MigrateResult{}, errcode.New(errcode.Usage, "--database postgres://… (the empty target database) is required")
	}
	src, err := OpenStore(ctx, o.DataDir)
	if err != nil {
		return MigrateResult{}, err
	}
	defer src.Close()
	dst, err := OpenStoreAt(ctx, o.DataDir, o.Database)
	if err != nil {
		return MigrateResult{}, err
	}
	defer dst.Close()
	res := MigrateResult{Source: filepath.Join(o.DataDir, DBFile), Target: dst.Name()}
	// Packages whose bytes are still only in packages/ (published by an
	// older server) go into the SQLite database first, so that the copy
	// carries them; a package that cannot be copied stops the migration,
	// since no PostgreSQL replica could serve it.
	if _, err := ImportPackageFiles(ctx, src, o.DataDir); err != nil {
		return res, err
	}
	res.Tables, err = store.CopyAll(ctx, src, dst)
	if errors.Is(err, store.ErrTargetNotEmpty) {
		return res, errcode.Wrap(CodeMigrateTarget, err, "migrate to %s", res.Target)
	}
	if err != nil {
		return res, errcode.Wrap(CodeMigrateFailed, err, "migrate to %s", res.Target)
	}
	return res, nil
}

// BackupPostgresError is what arcserver backup answers for a PostgreSQL
// database.
func BackupPostgresError() error {
	return errcode.Wrap(CodeBackupPostgres, store.ErrBackupUnsupported, "back up")
}
