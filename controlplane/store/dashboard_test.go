package store

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// MachineSummaries agrees with ListMachines on every field it returns,
// including the heartbeat table's agent version and time.
func TestMachineSummaries(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	id := registerOne(t, s)
	at := time.UnixMilli(time.Now().Add(time.Minute).UnixMilli())
	if err := s.RecordHeartbeats(ctx, []Heartbeat{{MachineID: id, At: at, AgentVersion: "1.4.2"}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []MachineFilter{{}, {SubscriptionID: "S1"}, {SubscriptionID: "s1", ResourceGroup: "WEB"}, {ResourceGroup: "db"}} {
		full, err := s.ListMachines(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.MachineSummaries(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var want []MachineSummary
		for _, m := range full {
			want = append(want, MachineSummary{ID: m.ID, Name: m.Name, SubscriptionID: m.SubscriptionID, ResourceGroup: m.ResourceGroup, ResourceID: m.ResourceID, AgentVersion: m.AgentVersion, LastHeartbeat: m.LastHeartbeat})
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("filter %+v: %+v, want %+v", f, got, want)
		}
	}
	got, _ := s.MachineSummaries(ctx, MachineFilter{})
	if len(got) != 1 || got[0].AgentVersion != "1.4.2" || !got[0].LastHeartbeat.Equal(at) {
		t.Fatalf("%+v, want the heartbeat's version and time", got)
	}
}
