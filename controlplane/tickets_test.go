package controlplane

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/arcagent/arcagent/controlplane/store"
)

// Ticket keys rotate daily: tomorrow's key (pre-published today) encrypts
// tomorrow, today's is still accepted then, and keys older than that
// leave the database.
func TestTicketKeysRotate(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := &Server{st: st}
	day0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	k0, err := s.ticketKeys(ctx, day0)
	if err != nil || len(k0) != 3 {
		t.Fatalf("%d keys, %v", len(k0), err)
	}
	if k0[0] == k0[1] || k0[0] == k0[2] || k0[1] == k0[2] {
		t.Fatal("two days share a ticket key")
	}
	again, err := s.ticketKeys(ctx, day0.Add(time.Hour))
	if err != nil || again[0] != k0[0] || again[1] != k0[1] || again[2] != k0[2] {
		t.Fatalf("the keys changed within the day (%v)", err)
	}
	k1, err := s.ticketKeys(ctx, day0.Add(ticketKeyDay))
	if err != nil {
		t.Fatal(err)
	}
	if k1[0] != k0[1] || k1[2] != k0[0] {
		t.Fatal("tomorrow does not encrypt with the key published today, or does not accept today's")
	}
	// Four days on, the keys created on day 0 are pruned.
	later := day0.Add(5 * ticketKeyDay)
	if _, err := s.ticketKeys(ctx, later); err != nil {
		t.Fatal(err)
	}
	n, err := st.PruneSettings(ctx, ticketKeyPrefix, later.Add(-4*ticketKeyDay))
	if err != nil || n != 3 { // days -1, 0 and 1, created on day 0 (day 2 is exactly four days old)
		t.Fatalf("pruned %d (%v), want 3", n, err)
	}
}
