package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ErrTargetNotEmpty is CopyAll into a database that already holds rows.
var ErrTargetNotEmpty = errors.New("the target database is not empty")

// TableCount is how many rows of one table CopyAll copied.
type TableCount struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// CopyAll copies every table of the SQLite store src into dst (normally
// PostgreSQL), which must be at the same schema version and hold no rows
// (ErrTargetNotEmpty otherwise: the copy never merges). The source is read
// in one read transaction (a consistent snapshot, also while a server
// writes to it) and the target written in one transaction that checks
// every table's row count before it commits: a failure anywhere leaves
// the target as it was, and the copy can simply be run again.
func CopyAll(ctx context.Context, src, dst *DB) ([]TableCount, error) {
	if src.dialect != dialectSQLite {
		return nil, errors.New("copy: the source must be a SQLite database")
	}
	stx, err := src.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src.path, err)
	}
	defer stx.Rollback()
	rows, err := stx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY rowid`)
	if err != nil {
		return nil, fmt.Errorf("list the tables of %s: %w", src.path, err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list the tables of %s: %w", src.path, err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the tables of %s: %w", src.path, err)
	}
	var sv, dv int
	if err := stx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&sv); err != nil {
		return nil, fmt.Errorf("read the schema version of %s: %w", src.path, err)
	}

	dtx, err := dst.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", dst.path, err)
	}
	defer dtx.Rollback()
	if err := dst.lock(ctx, dtx, "arcserver migrate"); err != nil {
		return nil, err
	}
	if err := dtx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&dv); err != nil {
		return nil, fmt.Errorf("read the schema version of %s: %w", dst.path, err)
	}
	if sv != dv {
		return nil, fmt.Errorf("%s has schema version %d and %s version %d: open both with this arcserver first", src.path, sv, dst.path, dv)
	}
	for _, t := range tables {
		var n int64
		if err := dtx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t)).Scan(&n); err != nil {
			return nil, fmt.Errorf("count the rows of %s in %s: %w", t, dst.path, err)
		}
		if n > 0 {
			return nil, fmt.Errorf("table %s of %s holds %d rows: %w (copy into a new, empty database)", t, dst.path, n, ErrTargetNotEmpty)
		}
	}
	var out []TableCount
	for _, t := range tables {
		n, err := copyTable(ctx, stx, dtx, t)
		if err != nil {
			return nil, fmt.Errorf("copy table %s: %w", t, err)
		}
		var want, got int64
		if err := stx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t)).Scan(&want); err != nil {
			return nil, fmt.Errorf("count the rows of %s in %s: %w", t, src.path, err)
		}
		if err := dtx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t)).Scan(&got); err != nil {
			return nil, fmt.Errorf("count the rows of %s in %s: %w", t, dst.path, err)
		}
		if n != want || got != want {
			return nil, fmt.Errorf("table %s: %d rows in %s, %d copied, %d in %s: nothing was committed", t, want, src.path, n, got, dst.path)
		}
		out = append(out, TableCount{Table: t, Rows: got})
	}
	if err := dtx.Commit(); err != nil {
		return nil, fmt.Errorf("commit the copy into %s: %w", dst.path, err)
	}
	return out, nil
}

// copyTable copies the rows of table t from src to dst, column by name.
func copyTable(ctx context.Context, src, dst *sql.Tx, t string) (int64, error) {
	rows, err := src.QueryContext(ctx, `SELECT * FROM `+quoteIdent(t))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	qcols := make([]string, len(cols))
	marks := make([]string, len(cols))
	for i, c := range cols {
		qcols[i], marks[i] = quoteIdent(c), "?"
	}
	st, err := dst.PrepareContext(ctx, `INSERT INTO `+quoteIdent(t)+` (`+strings.Join(qcols, ", ")+`) VALUES (`+strings.Join(marks, ", ")+`)`)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		if _, err := st.ExecContext(ctx, vals...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// quoteIdent quotes an SQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
