package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// The fleet overview's reads: counts and one page of machines computed in
// the database, so that an overview of 10,000 machines moves a few rows,
// not the whole fleet.

// HeartbeatBounds classify a machine by its last heartbeat (agent or
// registration): Connected after DisconnectedAt, Disconnected after
// ExpiredAt, Expired at or before it (as apiv1.StatusAt does).
type HeartbeatBounds struct {
	DisconnectedAt, ExpiredAt time.Time
}

// Fleet statuses, as apiv1 words them.
const (
	fleetConnected    = "Connected"
	fleetDisconnected = "Disconnected"
	fleetExpired      = "Expired"
)

// FleetCount is how many machines of one agent version have one status.
type FleetCount struct {
	AgentVersion string
	Status       string // Connected, Disconnected or Expired
	Machines     int
}

// fleetScope is the WHERE clause matching any of scopes (m aliases
// machines); no scope matches every machine.
func fleetScope(scopes []MachineFilter) (string, []any) {
	if len(scopes) == 0 {
		return ` WHERE 1 = 1`, nil
	}
	var or []string
	var args []any
	for _, f := range scopes {
		w, a := scopeWhere(f.SubscriptionID, f.ResourceGroup)
		c := `1 = 1` + w
		args = append(args, a...)
		or = append(or, "("+c+")")
	}
	return ` WHERE (` + strings.Join(or, " OR ") + `)`, args
}

const fleetFrom = ` FROM machines m LEFT JOIN machine_heartbeats h ON h.machine_id = m.id`

// FleetCounts counts the machines of scopes (any of them; none: every
// machine) by agent version and status, in one grouped query.
func (s *DB) FleetCounts(ctx context.Context, scopes []MachineFilter, b HeartbeatBounds) ([]FleetCount, error) {
	where, args := fleetScope(scopes)
	q := `SELECT v, st, COUNT(*) FROM (SELECT COALESCE(h.agent_version, m.agent_version) AS v,
		CASE WHEN COALESCE(h.last_heartbeat, m.last_heartbeat) <= ? THEN '` + fleetExpired + `'
			WHEN COALESCE(h.last_heartbeat, m.last_heartbeat) <= ? THEN '` + fleetDisconnected + `'
			ELSE '` + fleetConnected + `' END AS st` + fleetFrom + where + `) c GROUP BY v, st ORDER BY v, st`
	args = append([]any{ms(b.ExpiredAt), ms(b.DisconnectedAt)}, args...)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("count the fleet: %w", err)
	}
	defer rows.Close()
	var out []FleetCount
	for rows.Next() {
		var c FleetCount
		if err := rows.Scan(&c.AgentVersion, &c.Status, &c.Machines); err != nil {
			return nil, fmt.Errorf("count the fleet: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// FleetPage lists at most limit machines of scopes with status ("" =
// any), ordered by name (case-insensitively) and id, after skipping
// offset of them.
func (s *DB) FleetPage(ctx context.Context, scopes []MachineFilter, status string, b HeartbeatBounds, offset, limit int) ([]MachineSummary, error) {
	where, args := fleetScope(scopes)
	const hb = `COALESCE(h.last_heartbeat, m.last_heartbeat)`
	switch status {
	case "":
	case fleetConnected:
		where += ` AND ` + hb + ` > ?`
		args = append(args, ms(b.DisconnectedAt))
	case fleetDisconnected:
		where += ` AND ` + hb + ` <= ? AND ` + hb + ` > ?`
		args = append(args, ms(b.DisconnectedAt), ms(b.ExpiredAt))
	case fleetExpired:
		where += ` AND ` + hb + ` <= ?`
		args = append(args, ms(b.ExpiredAt))
	default:
		return nil, fmt.Errorf("list a page of the fleet: status %q is not Connected, Disconnected or Expired", status)
	}
	q := `SELECT m.id, m.name, m.subscription_id, m.resource_group, m.resource_id, COALESCE(h.agent_version, m.agent_version), ` + hb +
		fleetFrom + where + ` ORDER BY m.name_key, m.id LIMIT ? OFFSET ?`
	args = append(args, limit, offset)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list a page of the fleet: %w", err)
	}
	defer rows.Close()
	var out []MachineSummary
	for rows.Next() {
		var m MachineSummary
		var at int64
		if err := rows.Scan(&m.ID, &m.Name, &m.SubscriptionID, &m.ResourceGroup, &m.ResourceID, &m.AgentVersion, &at); err != nil {
			return nil, fmt.Errorf("list a page of the fleet: %w", err)
		}
		m.LastHeartbeat = fromMS(at)
		out = append(out, m)
	}
	return out, rows.Err()
}
