package controlplane_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
)

// serveIn starts Serve on dir and returns a stop function, or the error
// Serve failed with before listening.
func serveIn(t *testing.T, dir string, replica bool) (func(), error) {
	t.Helper()
	return serveWith(t, controlplane.ServeOptions{DataDir: dir, Replica: replica})
}

// serveOn is serveIn for a data directory whose database is database.
func serveOn(t *testing.T, dir, database string) (func(), error) {
	t.Helper()
	return serveWith(t, controlplane.ServeOptions{DataDir: dir, Database: database})
}

// serveWith starts Serve with o on a loopback port.
func serveWith(t *testing.T, o controlplane.ServeOptions) (func(), error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	o.Listen = "127.0.0.1:0"
	o.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	o.Ready = func(a net.Addr) { ready <- a }
	go func() {
		done <- controlplane.Serve(ctx, o)
	}()
	select {
	case <-ready:
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}, nil
	case err := <-done:
		cancel()
		return nil, err
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve neither listened nor failed")
		return nil, nil
	}
}

// Only one server without --replica may serve a data directory, and not
// beside replicas; replicas may serve it together.
func TestDataDirLock(t *testing.T) {
	tests := []struct {
		name          string
		first, second bool // replica?
		wantRefused   bool
	}{
		{"two alone", false, false, true},
		{"replica beside one alone", false, true, true},
		{"one alone beside replicas", true, false, true},
		{"two replicas", true, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := controlplane.Init(context.Background(), controlplane.InitOptions{DataDir: dir}); err != nil {
				t.Fatal(err)
			}
			stop, err := serveIn(t, dir, tc.first)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			stop2, err := serveIn(t, dir, tc.second)
			if !tc.wantRefused {
				if err != nil {
					t.Fatalf("second server refused: %v", err)
				}
				stop2()
				return
			}
			if err == nil {
				stop2()
				t.Fatal("a second server started over a locked data directory")
			}
			if c, _ := errcode.CodeOf(err); c != apiv1.CodeDataDirLocked {
				t.Fatalf("got %v, want %s", err, apiv1.CodeDataDirLocked)
			}
		})
	}
}
