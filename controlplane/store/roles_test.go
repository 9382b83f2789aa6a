package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestDeleteRoleAssignmentKeepOne(t *testing.T) {
	backends(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		now := time.Now()
		for _, a := range []RoleAssignment{
			{ID: "o1", Principal: "alice", Role: "Owner", Scope: "/", CreatedAt: now},
			{ID: "o2", Principal: "bob", Role: "Owner", Scope: "/", CreatedAt: now},
			{ID: "r1", Principal: "carol", Role: "Reader", Scope: "/", CreatedAt: now},
		} {
			if err := s.CreateRoleAssignment(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		// Two Owners removing each other at once: exactly one goes.
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, id := range []string{"o1", "o2"} {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = s.DeleteRoleAssignmentKeepOne(ctx, id, "Owner", "/") }()
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("concurrent deletes of the two Owners: %v, %v", errs[0], errs[1])
		}
		for _, err := range errs {
			if err != nil && !errors.Is(err, ErrLastAssignment) {
				t.Fatal(err)
			}
		}
		if as, _ := s.ListRoleAssignments(ctx); len(as) != 2 {
			t.Fatalf("%d assignments left, want the last Owner and the Reader", len(as))
		}
		if err := s.DeleteRoleAssignmentKeepOne(ctx, "r1", "Owner", "/"); err != nil {
			t.Fatalf("the last Reader is not protected: %v", err)
		}
		if err := s.DeleteRoleAssignmentKeepOne(ctx, "nope", "Owner", "/"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
	})
}
