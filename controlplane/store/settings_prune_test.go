package store

import (
	"context"
	"testing"
	"time"
)

func TestPruneSettings(t *testing.T) {
	backends(t, func(t *testing.T, s *DB) {
		ctx := context.Background()
		t0 := time.UnixMilli(1_700_000_000_000)
		for _, st := range []struct {
			name string
			at   time.Time
		}{
			{"tick:1", t0},
			{"tick:2", t0.Add(time.Hour)},
			{"other", t0},
			{"tickle", t0}, // shares the prefix's letters, not the prefix
		} {
			if _, err := s.EnsureSetting(ctx, st.name, []byte("v"), st.at); err != nil {
				t.Fatal(err)
			}
		}
		for _, bad := range []string{"", "tick_", "ti%", `t\`} {
			if _, err := s.PruneSettings(ctx, bad, t0.Add(time.Hour)); err == nil {
				t.Fatalf("prefix %q accepted", bad)
			}
		}
		n, err := s.PruneSettings(ctx, "tick:", t0.Add(time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("pruned %d (%v), want 1 (tick:1)", n, err)
		}
		for name, want := range map[string]string{"tick:1": "new", "tick:2": "v", "other": "v", "tickle": "v"} {
			v, err := s.EnsureSetting(ctx, name, []byte("new"), t0)
			if err != nil || string(v) != want {
				t.Fatalf("%s = %q (%v) after the prune, want %q", name, v, err, want)
			}
		}
	})
}
