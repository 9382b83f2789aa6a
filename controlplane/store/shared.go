package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	// MachineAuths is MachineAuth for many machines in one query; a
	// machine that does not exist is absent from the map.
	MachineAuths(ctx context.Context, ids []string) (map[string]MachineAuth, error)
}

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

var _ Shared = (*DB)(nil)

// RememberAssertion inserts the key, or takes over an expired row of the
// same key, in one statement: one row is affected exactly when the key is
// fresh.
func (s *DB) RememberAssertion(ctx context.Context, key string, exp, now time.Time) (bool, error) {
	res, err := s.w.ExecContext(ctx, rememberSQL, replayRowKey(key), ms(exp), ms(now))
	if err != nil {
		return false, fmt.Errorf("remember assertion: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("remember assertion: %w", err)
	}
	return n == 1, nil
}

// replayRowKey is the row key of a replay key: its SHA-256 in hex, so that
// any bytes a key holds (the server joins machine id and jti with a NUL,
// which PostgreSQL's text refuses) are stored, in a fixed 64 characters.
func replayRowKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

const rememberSQL = `INSERT INTO assertion_replay (replay_key, expires_at) VALUES (?, ?)
		ON CONFLICT (replay_key) DO UPDATE SET expires_at = excluded.expires_at
		WHERE assertion_replay.expires_at < ?`

// RememberAssertions runs the statement of RememberAssertion for each key
// in one write transaction, in key order (so that two batches meeting on
// an engine with row locks wait for each other rather than deadlock). On
// PostgreSQL the batch is one statement (rememberAssertionsPG).
func (s *DB) RememberAssertions(ctx context.Context, keys []AssertionKey, now time.Time) ([]bool, error) {
	if s.dialect == dialectPostgres {
		return s.rememberAssertionsPG(ctx, keys, now)
	}
	order := make([]int, len(keys))
	rows := make([]string, len(keys))
	for i := range order {
		order[i] = i
		rows[i] = replayRowKey(keys[i].Key)
	}
	sort.SliceStable(order, func(a, b int) bool { return rows[order[a]] < rows[order[b]] })
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
		res, err := st.ExecContext(ctx, rows[i], ms(keys[i].Expires), ms(now))
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
func (s *DB) SweepAssertions(ctx context.Context, now time.Time) (int64, error) {
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
func (s *DB) EnsureSetting(ctx context.Context, name string, value []byte, now time.Time) ([]byte, error) {
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
func (s *DB) MachineAuth(ctx context.Context, id string) (MachineAuth, error) {
	got, err := s.MachineAuths(ctx, []string{id})
	if err != nil {
		return MachineAuth{}, err
	}
	a, ok := got[id]
	if !ok {
		return a, fmt.Errorf("machine %s: %w", id, ErrNotFound)
	}
	return a, nil
}

// MachineAuths reads the machines of ids in one query (an id twice is
// read once).
func (s *DB) MachineAuths(ctx context.Context, ids []string) (map[string]MachineAuth, error) {
	out := make(map[string]MachineAuth, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.r.QueryContext(ctx, `SELECT m.id, m.resource_id, m.public_key, m.desired_etag, COALESCE(h.last_heartbeat, m.last_heartbeat)
		FROM machines m LEFT JOIN machine_heartbeats h ON h.machine_id = m.id WHERE m.id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("read %d machines: %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var a MachineAuth
		var hb int64
		if err := rows.Scan(&a.ID, &a.ResourceID, &a.PublicKeyPEM, &a.DesiredETag, &hb); err != nil {
			return nil, fmt.Errorf("read %d machines: %w", len(ids), err)
		}
		a.LastHeartbeat = fromMS(hb)
		out[a.ID] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %d machines: %w", len(ids), err)
	}
	return out, nil
}

// placeholders is n comma-separated ? placeholders (n ≥ 1).
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
