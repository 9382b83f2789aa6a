package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Shared is what several arcserver replicas over one database use to
// agree on state that one process could keep in memory: the assertion
// replay cache, server-wide settings and the narrow machine read that
// authenticates a request. Every statement is a single atomic one, so it
// is correct at READ COMMITTED with any number of replicas.
type Shared interface {
	// RememberAssertion records key (machine id and jti) until exp and
	// reports whether it was fresh: false means it was recorded already
	// and not yet expired (a replay). A key whose row has expired is
	// fresh again.
	RememberAssertion(ctx context.Context, key string, exp, now time.Time) (fresh bool, err error)
	// RememberAssertions is RememberAssertion for many keys in one
	// transaction (a group commit): fresh[i] answers keys[i]. A key twice
	// in keys is fresh at most once.
	RememberAssertions(ctx context.Context, keys []AssertionKey, now time.Time) (fresh []bool, err error)
	// SweepAssertions deletes the replay rows that expired before now and
	// returns how many.
	SweepAssertions(ctx context.Context, now time.Time) (int64, error)
	// EnsureSetting stores value under name unless a value is stored
	// already, and returns the stored value (so that replicas creating a
	// setting at once all end up with the same one).
	EnsureSetting(ctx context.Context, name string, value []byte, now time.Time) ([]byte, error)
	// MachineAuth reads what authenticating a machine needs.
	MachineAuth(ctx context.Context, id string) (MachineAuth, error)
	// DeleteRoleAssignmentKeeping deletes role assignment id unless it is
	// the last assignment of role at scope (ErrLastAssignment), with the
	// check and the delete serialised against every other such delete.
	DeleteRoleAssignmentKeeping(ctx context.Context, id, role, scope string) error
}

// ErrLastAssignment refuses to delete the last assignment of a role at a
// scope (the tenant's last Owner).
var ErrLastAssignment = errors.New("it is the last assignment of its role at its scope")

// AssertionKey is one assertion to remember: its key until Expires.
type AssertionKey struct {
	Key     string
	Expires time.Time
}

// MachineAuth is the narrow view of a machine a request authenticates
// against.
type MachineAuth struct {
	ID            string
	ResourceID    string
	PublicKeyPEM  string
	DesiredETag   string
	LastHeartbeat time.Time
}

var _ Shared = (*SQLite)(nil)

// RememberAssertion inserts the key, or takes over an expired row of the
// same key, in one statement: one row is affected exactly when the key is
// fresh.
func (s *SQLite) RememberAssertion(ctx context.Context, key string, exp, now time.Time) (bool, error) {
	res, err := s.w.ExecContext(ctx, rememberSQL, key, ms(exp), ms(now))
	if err != nil {
		return false, fmt.Errorf("remember assertion: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("remember assertion: %w", err)
	}
	return n == 1, nil
}

const rememberSQL = `INSERT INTO assertion_replay (replay_key, expires_at) VALUES (?, ?)
		ON CONFLICT (replay_key) DO UPDATE SET expires_at = excluded.expires_at
		WHERE assertion_replay.expires_at < ?`

// RememberAssertions runs the statement of RememberAssertion for each key
// in one write transaction, in key order (so that two batches meeting on
// an engine with row locks wait for each other rather than deadlock).
func (s *SQLite) RememberAssertions(ctx context.Context, keys []AssertionKey, now time.Time) ([]bool, error) {
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return keys[order[a]].Key < keys[order[b]].Key })
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("remember assertions: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, rememberSQL)
	if err != nil {
		return nil, fmt.Errorf("remember assertions: %w", err)
	}
	defer st.Close()
	fresh := make([]bool, len(keys))
	for _, i := range order {
		res, err := st.ExecContext(ctx, keys[i].Key, ms(keys[i].Expires), ms(now))
		if err != nil {
			return nil, fmt.Errorf("remember assertion: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("remember assertion: %w", err)
		}
		fresh[i] = n == 1
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("remember assertions: %w", err)
	}
	return fresh, nil
}

// SweepAssertions deletes expired replay rows.
func (s *SQLite) SweepAssertions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM assertion_replay WHERE expires_at < ?`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("sweep expired assertions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sweep expired assertions: %w", err)
	}
	return n, nil
}

// EnsureSetting inserts the setting unless present (ON CONFLICT DO
// NOTHING), then reads back whichever value won.
func (s *SQLite) EnsureSetting(ctx context.Context, name string, value []byte, now time.Time) ([]byte, error) {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO server_settings (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		name, string(value), ms(now)); err != nil {
		return nil, fmt.Errorf("store setting %s: %w", name, err)
	}
	var v string
	// Read through the writer: the row was just written on it, and a
	// reader could lag behind on an engine with replicas.
	if err := s.w.QueryRowContext(ctx, `SELECT value FROM server_settings WHERE name = ?`, name).Scan(&v); err != nil {
		return nil, notFound(err, "setting "+name)
	}
	return []byte(v), nil
}

// MachineAuth reads a machine's key, resource id, desired-state ETag and
// latest heartbeat.
func (s *SQLite) MachineAuth(ctx context.Context, id string) (MachineAuth, error) {
	var a MachineAuth
	var hb int64
	err := s.r.QueryRowContext(ctx, `SELECT m.id, m.resource_id, m.public_key, m.desired_etag, COALESCE(h.last_heartbeat, m.last_heartbeat)
		FROM machines m LEFT JOIN machine_heartbeats h ON h.machine_id = m.id WHERE m.id = ?`, id).
		Scan(&a.ID, &a.ResourceID, &a.PublicKeyPEM, &a.DesiredETag, &hb)
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("machine %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("read machine %s: %w", id, err)
	}
	a.LastHeartbeat = fromMS(hb)
	return a, nil
}

// DeleteRoleAssignmentKeeping takes the tenant row's write lock first (a
// no-op UPDATE, held to commit), so that concurrent deletes of the last
// assignments run one after the other even at READ COMMITTED; the DELETE
// then counts and deletes in one statement.
func (s *SQLite) DeleteRoleAssignmentKeeping(ctx context.Context, id, role, scope string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete role assignment %s: %w", id, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE tenant SET created_at = created_at`); err != nil {
		return fmt.Errorf("delete role assignment %s: %w", id, err)
	}
	key := strings.ToLower(scope)
	res, err := tx.ExecContext(ctx, `DELETE FROM role_assignments WHERE id = ?
		AND NOT (role = ? AND scope_key = ? AND (SELECT COUNT(*) FROM role_assignments WHERE role = ? AND scope_key = ?) <= 1)`,
		id, role, key, role, key)
	if err != nil {
		return fmt.Errorf("delete role assignment %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete role assignment %s: %w", id, err)
	}
	if n == 0 {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM role_assignments WHERE id = ?`, id).Scan(&one)
		if err == nil {
			return fmt.Errorf("role assignment %s: %w", id, ErrLastAssignment)
		}
		return notFound(err, "role assignment "+id)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete role assignment %s: %w", id, err)
	}
	return nil
}
