package controlplane_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// A machine may delete its own resource (arcagent disconnect); its key is
// refused from then on, and other machines are untouched.
func TestMachineDeletesItself(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "rg1")
	a := e.mustRegister(sub, "rg1", "host-a")
	b := e.mustRegister(sub, "rg1", "host-b")

	// A cannot sign for B: the assertion names B but A's key signs it.
	forged := *a.m
	forged.ID = b.reg.MachineID
	if err := forged.Delete(ctx); err == nil {
		t.Fatal("a machine deleted another machine")
	}
	if err := a.m.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.owner.GetMachine(ctx, a.reg.MachineID); cloud.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("deleted machine still readable: %v", err)
	}
	if _, err := a.m.Heartbeat(ctx, apiv1.HeartbeatRequest{}); err == nil {
		t.Fatal("a deleted machine's key is still accepted")
	}
	if _, err := e.owner.GetMachine(ctx, b.reg.MachineID); err != nil {
		t.Fatalf("the other machine is gone: %v", err)
	}
}
