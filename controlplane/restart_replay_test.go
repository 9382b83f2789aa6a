package controlplane_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// The replay cache starts empty at each start: an assertion used before a
// restart must not be accepted again after it, even seconds later.
func TestNoReplayAcrossRestart(t *testing.T) {
	e := newEnv(t)
	sub := e.scope("prod", "rg1")
	m := e.mustRegister(sub, "rg1", "host1")
	now := e.clock.Now()
	id := m.reg.MachineID
	tok := sign(t, m.key, jwt.RegisteredClaims{Issuer: id, Subject: id, Audience: jwt.ClaimStrings{m.reg.Audience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)), ID: "once"})
	if st, _, _, _ := e.raw("POST", "/v1/machines/"+id+"/heartbeat", tok, "", nil); st != 200 {
		t.Fatalf("first use: %d", st)
	}
	e.clock.Advance(20 * time.Second) // well inside the clock leeway
	srv2, err := controlplane.New(context.Background(), controlplane.Config{Store: e.st, Now: e.clock.Now, Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	srv2.Start(context.Background())
	defer srv2.Close()
	req := httptest.NewRequest("POST", "/v1/machines/"+id+"/heartbeat", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	srv2.Handler().ServeHTTP(rec, req)
	if rec.Code == http.StatusOK {
		t.Errorf("an assertion used before the restart was accepted again after it: %s", rec.Body)
	}
}

// A principal assigned only below a subscription sees it listed (to
// navigate) but not its tags, which GET on it would refuse.
func TestSubscriptionListHidesTagsBelowScope(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("secret-sub", "rg1")
	if _, err := e.owner.AssignRole(ctx, apiv1.CreateRoleAssignmentRequest{Principal: "bob", Role: "Reader", Scope: "/subscriptions/" + sub + "/resourceGroups/rg1"}); err != nil {
		t.Fatal(err)
	}
	bt, err := e.owner.CreateAPIToken(ctx, apiv1.CreateAPITokenRequest{Principal: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	subs, err := e.client.Operator(bt.Token).ListSubscriptions(ctx)
	if err != nil || len(subs) != 1 {
		t.Fatalf("list: %v %v", subs, err)
	}
	if len(subs[0].Tags) != 0 {
		t.Errorf("tags %v listed to a principal without subscriptions/read on it", subs[0].Tags)
	}
	if code, _, _, _ := e.raw("GET", "/v1/subscriptions/"+sub, bt.Token, "", nil); code != http.StatusForbidden {
		t.Errorf("GET: %d, want 403", code)
	}
}

// Two tenant Owners removing each other's Owner assignment at once: one
// of the deletes must be refused, so the tenant always keeps an Owner.
func TestLastTenantOwnerSurvivesConcurrentDeletes(t *testing.T) {
	for round := 0; round < 10; round++ {
		e := newEnv(t)
		ctx := context.Background()
		a2, err := e.owner.AssignRole(ctx, apiv1.CreateRoleAssignmentRequest{Principal: "owner2", Role: "Owner", Scope: "/"})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := e.owner.CreateAPIToken(ctx, apiv1.CreateAPITokenRequest{Principal: "owner2"})
		if err != nil {
			t.Fatal(err)
		}
		ras, _ := e.owner.ListRoleAssignments(ctx, "/")
		var a1 string
		for _, r := range ras {
			if r.Principal == "owner" && r.Scope == "/" {
				a1 = r.ID
			}
		}
		done := make(chan struct{}, 2)
		go func() { e.raw("DELETE", "/v1/roleAssignments/"+a2.ID, e.ownerT, "", nil); done <- struct{}{} }()
		go func() { e.raw("DELETE", "/v1/roleAssignments/"+a1, tok.Token, "", nil); done <- struct{}{} }()
		<-done
		<-done
		all, err := e.st.ListRoleAssignments(ctx)
		if err != nil {
			t.Fatal(err)
		}
		owners := 0
		for _, r := range all {
			if r.Role == "Owner" && r.Scope == "/" {
				owners++
			}
		}
		if owners == 0 {
			t.Fatalf("round %d: no tenant Owner left", round)
		}
	}
}
