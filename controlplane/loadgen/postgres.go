package loadgen

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/arcagent/arcagent/controlplane"
)

// StartLocalOn is StartLocal with the store in the PostgreSQL database
// at database (a postgres:// URL; "" is StartLocal's SQLite file).
func StartLocalOn(ctx context.Context, dir, database string, log *slog.Logger) (*Local, error) {
	res, err := controlplane.Init(ctx, controlplane.InitOptions{DataDir: dir, Database: database})
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	ca, err := readFile(filepath.Join(dir, controlplane.CACertFile))
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- controlplane.Serve(sctx, controlplane.ServeOptions{DataDir: dir, Database: database, Listen: "127.0.0.1:0", Logger: log, Ready: func(a net.Addr) { ready <- a }})
	}()
	select {
	case a := <-ready:
		return &Local{URL: "https://" + a.String(), Token: res.OwnerToken, CAPEM: ca, stop: func() error { cancel(); return <-done }}, nil
	case err := <-done:
		cancel()
		return nil, err
	case <-ctx.Done():
		cancel()
		<-done
		return nil, ctx.Err()
	}
}
