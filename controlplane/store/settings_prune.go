package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// PruneSettings deletes the server settings whose name starts with prefix
// and that were created before createdBefore, and returns how many. It
// retires rotated secrets (TLS session ticket keys) so that the database
// keeps only the ones still in use. prefix must be non-empty and hold no
// LIKE wildcard (%, _ or \).
func (s *DB) PruneSettings(ctx context.Context, prefix string, createdBefore time.Time) (int64, error) {
	if prefix == "" || strings.ContainsAny(prefix, `%_\`) {
		return 0, errors.New("prune settings: the prefix must be non-empty and hold no %, _ or \\")
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM server_settings WHERE name LIKE ? AND created_at < ?`, prefix+"%", ms(createdBefore))
	if err != nil {
		return 0, fmt.Errorf("prune settings %s*: %w", prefix, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune settings %s*: %w", prefix, err)
	}
	return n, nil
}
