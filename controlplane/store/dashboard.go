package store

import (
	"context"
	"fmt"
	"time"
)

// MachineSummary is what a fleet overview needs of a machine: no
// documents (desired state, status, inventory), so listing 10,000 stays
// cheap.
type MachineSummary struct {
	ID, Name, SubscriptionID, ResourceGroup, ResourceID string
	AgentVersion                                        string
	LastHeartbeat                                       time.Time
}

// MachineSummaries lists the machines matching f without their
// documents, ordered by subscription, resource group and name (agent
// version and last heartbeat from machine_heartbeats, as ListMachines).
func (s *DB) MachineSummaries(ctx context.Context, f MachineFilter) ([]MachineSummary, error) {
	q := `SELECT m.id, m.name, m.subscription_id, m.resource_group, m.resource_id,
		COALESCE(h.agent_version, m.agent_version), COALESCE(h.last_heartbeat, m.last_heartbeat)
		FROM machines m LEFT JOIN machine_heartbeats h ON h.machine_id = m.id WHERE 1 = 1`
	scope, args := scopeWhere(f.SubscriptionID, f.ResourceGroup)
	q += scope
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY m.subscription_id, m.rg_key, m.name_key`, args...)
	if err != nil {
		return nil, fmt.Errorf("list machine summaries: %w", err)
	}
	defer rows.Close()
	var out []MachineSummary
	for rows.Next() {
		var m MachineSummary
		var hb int64
		if err := rows.Scan(&m.ID, &m.Name, &m.SubscriptionID, &m.ResourceGroup, &m.ResourceID, &m.AgentVersion, &hb); err != nil {
			return nil, fmt.Errorf("list machine summaries: %w", err)
		}
		m.LastHeartbeat = fromMS(hb)
		out = append(out, m)
	}
	return out, rows.Err()
}
