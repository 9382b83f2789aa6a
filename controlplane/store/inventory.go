package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// InventoryRow is one machine of the fleet inventory: what it reported
// about itself (Inventory, JSON) and its last status report (Status, JSON,
// nil if never reported), without the desired-state documents.
// AgentVersion and LastHeartbeat are the heartbeats' (as ListMachines
// reads them).
type InventoryRow struct {
	ID, Name, SubscriptionID, ResourceGroup, ResourceID, AgentVersion string
	LastHeartbeat, CreatedAt                                          time.Time
	Inventory                                                         []byte
	Status                                                            []byte
}

// invSelect reads the inventory columns with the latest heartbeat.
const invSelect = `SELECT m.id, m.name, m.subscription_id, m.resource_group, m.resource_id,
	COALESCE(h.agent_version, m.agent_version), COALESCE(h.last_heartbeat, m.last_heartbeat), m.created_at, m.inventory, m.status
	FROM machines m LEFT JOIN machine_heartbeats h ON h.machine_id = m.id WHERE 1 = 1`

// ListInventory returns the inventory of the machines matching f, ordered
// by scope and name, in one query.
func (s *DB) ListInventory(ctx context.Context, f MachineFilter) ([]InventoryRow, error) {
	var out []InventoryRow
	err := s.EachInventory(ctx, f, func(r *InventoryRow) error {
		c := *r
		c.Inventory = append([]byte(nil), r.Inventory...)
		if r.Status != nil {
			c.Status = append([]byte(nil), r.Status...)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// EachInventory streams the rows ListInventory returns to fn, one at a
// time, from one query. The row and its Inventory and Status bytes are
// reused for the next row: fn must copy what it keeps. An error from fn
// stops the scan and is returned.
func (s *DB) EachInventory(ctx context.Context, f MachineFilter, fn func(*InventoryRow) error) error {
	q := invSelect
	scope, args := scopeWhere(f.SubscriptionID, f.ResourceGroup)
	q += scope
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY m.subscription_id, m.rg_key, m.name_key`, args...)
	if err != nil {
		return fmt.Errorf("list the fleet inventory: %w", err)
	}
	defer rows.Close()
	var r InventoryRow
	var inv, st sql.RawBytes // copied into by Scan, reused row after row
	var hb, c int64
	for rows.Next() {
		r = InventoryRow{}
		if err := rows.Scan(&r.ID, &r.Name, &r.SubscriptionID, &r.ResourceGroup, &r.ResourceID, &r.AgentVersion, &hb, &c, &inv, &st); err != nil {
			return fmt.Errorf("list the fleet inventory: %w", err)
		}
		r.LastHeartbeat, r.CreatedAt, r.Inventory = fromMS(hb), fromMS(c), inv
		if st != nil {
			r.Status = st
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list the fleet inventory: %w", err)
	}
	return nil
}

// UpdateMachineInventory replaces the inventory (JSON) a machine reported.
func (s *DB) UpdateMachineInventory(ctx context.Context, id string, inventory []byte) error {
	res, err := s.w.ExecContext(ctx, `UPDATE machines SET inventory = ? WHERE id = ?`, string(inventory), id)
	return mustAffect(res, err, "machine "+id)
}
