package store

import (
	"context"
	"fmt"
	"slices"
)

// pgHeartbeats is RecordHeartbeats' one statement on PostgreSQL: the batch
// travels as three arrays and updates every row in one round trip (one
// UPDATE per heartbeat costs a round trip each).
const pgHeartbeats = `UPDATE machine_heartbeats h SET
	last_heartbeat = CASE WHEN h.last_heartbeat < x.at THEN x.at ELSE h.last_heartbeat END,
	agent_version = CASE WHEN x.v <> '' AND h.last_heartbeat <= x.vat THEN x.v ELSE h.agent_version END
	FROM (SELECT * FROM unnest(?::text[], ?::bigint[], ?::text[], ?::bigint[]) AS u(id, at, v, vat)) x
	WHERE h.machine_id = x.id`

// recordHeartbeatsPG merges the batch per machine the way the row-by-row
// updates would have (the latest time; the agent version of the latest heartbeat that sent one, which an older heartbeat never overwrites),
// then writes it in one statement. Two replicas' overlapping batches can
// still lock rows in different orders; a deadlock (SQLSTATE 40P01) aborts
// one of them, which is retried.
func (s *DB) recordHeartbeatsPG(ctx context.Context, hbs []Heartbeat) error {
	type agg struct {
		at  int64
		v   string
		vat int64 // time of the heartbeat that sent v
	}
	by := make(map[string]agg, len(hbs))
	for _, h := range hbs {
		a := by[h.MachineID]
		at := ms(h.At)
		a.at = max(a.at, at)
		if h.AgentVersion != "" && (a.v == "" || at >= a.vat) {
			a.v, a.vat = h.AgentVersion, at
		}
		by[h.MachineID] = a
	}
	ids := make([]string, 0, len(by))
	for id := range by {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ats, vs, vats := make([]int64, len(ids)), make([]string, len(ids)), make([]int64, len(ids))
	for i, id := range ids {
		ats[i], vs[i], vats[i] = by[id].at, by[id].v, by[id].vat
	}
	var err error
	for range 5 {
		if _, err = s.w.ExecContext(ctx, pgHeartbeats, ids, ats, vs, vats); pgCode(err) != "40P01" {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("record heartbeats: %w", err)
	}
	return nil
}
