package store

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// FleetCounts and FleetPage agree with MachineSummaries classified and
// sorted in Go, for every combination of scopes and status, on both
// engines.
func TestFleetCountsAndPage(t *testing.T) { backends(t, testFleetCountsAndPage) }

func testFleetCountsAndPage(t *testing.T, s *DB) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	b := HeartbeatBounds{DisconnectedAt: now.Add(-15 * time.Minute), ExpiredAt: now.Add(-45 * 24 * time.Hour)}
	for _, sub := range []string{"s1", "s2"} {
		if err := s.CreateSubscription(ctx, Subscription{ID: sub, DisplayName: sub, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		for _, rg := range []string{"Web", "db"} {
			if err := s.CreateResourceGroup(ctx, ResourceGroup{SubscriptionID: sub, Name: rg, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			cred := OnboardingCredential{ID: sub + rg, Hash: "h" + sub + rg, SubscriptionID: sub, ResourceGroup: rg, CreatedBy: "o", CreatedAt: now, ExpiresAt: now.Add(time.Hour), UsesTotal: 100, UsesLeft: 100}
			if err := s.CreateOnboarding(ctx, cred); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Heartbeat ages on both sides of each bound (exactly at a bound
	// is the older status, as apiv1.StatusAt says).
	ages := []time.Duration{0, 15*time.Minute - time.Millisecond, 15 * time.Minute, 24 * time.Hour, 45*24*time.Hour - time.Millisecond, 45 * 24 * time.Hour, 90 * 24 * time.Hour}
	var hbs []Heartbeat
	for i := range 40 {
		sub, rg := []string{"s1", "s2"}[i%2], []string{"Web", "db"}[i/2%2]
		name := fmt.Sprintf("%s-m%02d", []string{"Alpha", "beta", "Gamma"}[i%3], 40-i)
		m := &Machine{ID: fmt.Sprintf("id-%02d", i), Name: name, PublicKeyPEM: "k", DesiredState: []byte("{}"), DesiredETag: "e0", Inventory: []byte("{}"), AgentVersion: "1.0.0", CreatedAt: now, LastHeartbeat: now.Add(-ages[i%len(ages)])}
		if err := s.RegisterMachine(ctx, "h"+sub+rg, now, m); err != nil {
			t.Fatal(err)
		}
		if i%4 != 3 { // a quarter never sent a heartbeat: registration's values
			hbs = append(hbs, Heartbeat{MachineID: m.ID, At: now.Add(-ages[i%len(ages)]), AgentVersion: fmt.Sprintf("1.%d.0", i%3)})
		}
	}
	if err := s.RecordHeartbeats(ctx, hbs); err != nil {
		t.Fatal(err)
	}
	status := func(hb time.Time) string {
		switch {
		case !hb.After(b.ExpiredAt):
			return fleetExpired
		case !hb.After(b.DisconnectedAt):
			return fleetDisconnected
		}
		return fleetConnected
	}
	for _, scopes := range [][]MachineFilter{nil, {{SubscriptionID: "S1"}}, {{SubscriptionID: "s1", ResourceGroup: "WEB"}}, {{SubscriptionID: "s1", ResourceGroup: "web"}, {SubscriptionID: "s2"}}, {{SubscriptionID: "s3"}}} {
		var all []MachineSummary
		read := scopes
		if len(read) == 0 {
			read = []MachineFilter{{}} // every machine
		}
		for _, f := range read {
			ms, err := s.MachineSummaries(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, ms...)
		}
		want := map[[2]string]int{}
		for _, m := range all {
			want[[2]string{m.AgentVersion, status(m.LastHeartbeat)}]++
		}
		counts, err := s.FleetCounts(ctx, scopes, b)
		if err != nil {
			t.Fatal(err)
		}
		got := map[[2]string]int{}
		for _, c := range counts {
			got[[2]string{c.AgentVersion, c.Status}] += c.Machines
		}
		if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("scopes %+v: counts %v, want %v", scopes, got, want)
		}
		slices.SortFunc(all, func(a, b MachineSummary) int {
			return cmp.Or(strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), strings.Compare(a.ID, b.ID))
		})
		for _, st := range []string{"", fleetConnected, fleetDisconnected, fleetExpired} {
			var rows []MachineSummary
			for _, m := range all {
				if st == "" || status(m.LastHeartbeat) == st {
					rows = append(rows, m)
				}
			}
			for _, off := range []int{0, 3, len(rows)} {
				page, err := s.FleetPage(ctx, scopes, st, b, off, 4)
				if err != nil {
					t.Fatal(err)
				}
				wantPage := rows[min(off, len(rows)):min(off+4, len(rows))]
				if len(page) != len(wantPage) || (len(page) > 0 && !reflect.DeepEqual(page, wantPage)) {
					t.Errorf("scopes %+v status %q offset %d: %+v, want %+v", scopes, st, off, page, wantPage)
				}
			}
		}
	}
	if _, err := s.FleetPage(ctx, nil, "Lost", b, 0, 1); err == nil {
		t.Error("an unknown status is accepted")
	}
}
