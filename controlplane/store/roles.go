package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrLastAssignment is DeleteRoleAssignmentKeepOne refusing to remove the
// last assignment of the protected role at the protected scope.
var ErrLastAssignment = errors.New("it is the last assignment of its role at its scope")

// DeleteRoleAssignmentKeepOne deletes assignment id, except when it is an
// assignment of role at scope and no other one is left
// (ErrLastAssignment). The check and the delete are one transaction under
// a lock on role and scope, so two deletes at once (two replicas, two
// Owners removing each other) cannot both pass the check.
func (s *DB) DeleteRoleAssignmentKeepOne(ctx context.Context, id, role, scope string) error {
	scopeKey := strings.ToLower(scope)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete role assignment %s: %w", id, err)
	}
	defer tx.Rollback()
	if err := s.lock(ctx, tx, "role-assignments/"+role+"/"+scopeKey); err != nil {
		return fmt.Errorf("delete role assignment %s: %w", id, err)
	}
	var gotRole, gotScope string
	if err := tx.QueryRowContext(ctx, `DELETE FROM role_assignments WHERE id = ? RETURNING role, scope_key`, id).Scan(&gotRole, &gotScope); err != nil {
		return notFound(err, "role assignment "+id)
	}
	if gotRole == role && gotScope == scopeKey {
		var left int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM role_assignments WHERE role = ? AND scope_key = ?`, role, scopeKey).Scan(&left); err != nil {
			return fmt.Errorf("delete role assignment %s: %w", id, err)
		}
		if left == 0 {
			return fmt.Errorf("role assignment %s: %w", id, ErrLastAssignment)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete role assignment %s: %w", id, err)
	}
	return nil
}
