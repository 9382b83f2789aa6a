package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestInventory(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	id := registerOne(t, s)
	if err := s.UpdateMachineInventory(ctx, id, []byte(`{"osType":"linux","agentVersion":"1.2.0"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMachineInventory(ctx, "nope", []byte(`{}`)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown machine: %v", err)
	}
	at := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	if err := s.RecordHeartbeats(ctx, []Heartbeat{{MachineID: id, At: at, AgentVersion: "1.2.1"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMachineStatus(ctx, id, []byte(`{"extensions":[]}`), at); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    MachineFilter
		want int
	}{
		{"all", MachineFilter{}, 1},
		{"subscription", MachineFilter{SubscriptionID: "S1"}, 1},
		{"group, any case", MachineFilter{SubscriptionID: "s1", ResourceGroup: "WEB"}, 1},
		{"other group", MachineFilter{SubscriptionID: "s1", ResourceGroup: "db"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := s.ListInventory(ctx, tc.f)
			if err != nil || len(rows) != tc.want {
				t.Fatalf("%d rows, %v", len(rows), err)
			}
			if tc.want == 0 {
				return
			}
			r := rows[0]
			if r.ID != id || r.ResourceGroup != "web" || r.AgentVersion != "1.2.1" || !r.LastHeartbeat.Equal(at) ||
				string(r.Inventory) != `{"osType":"linux","agentVersion":"1.2.0"}` || string(r.Status) != `{"extensions":[]}` {
				t.Fatalf("row %+v", r)
			}
		})
	}
	// fn's error stops the scan and is returned as is.
	stop := errors.New("stop")
	if err := s.EachInventory(ctx, MachineFilter{}, func(*InventoryRow) error { return stop }); err != stop {
		t.Fatalf("EachInventory: %v", err)
	}
}
