package store

import (
	"context"
	"fmt"
	"strings"
)

// CountOtherMachines counts the machines of a subscription other than the
// machine exceptID, without reading their rows (the cloud facts of the
// audit need the count only). It is not part of Store: the server falls
// back to ListMachines for a store without it.
func (s *DB) CountOtherMachines(ctx context.Context, subscriptionID, exceptID string) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM machines WHERE subscription_id = ? AND id <> ?`,
		strings.ToLower(subscriptionID), exceptID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count the machines of subscription %s: %w", subscriptionID, err)
	}
	return n, nil
}
