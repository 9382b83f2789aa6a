package loadgen

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
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
	return serveLocal(ctx, controlplane.ServeOptions{DataDir: dir, Database: database, Logger: log}, res.OwnerToken)
}

// StartReplica serves, from a new data directory dir, the PostgreSQL
// database that a StartLocalOn server in fromDir serves: a second replica
// with a copy of the first one's CA and TLS files, on its own loopback
// port. token is the first server's Owner token (Local.Token).
func StartReplica(ctx context.Context, fromDir, dir, database, token string, log *slog.Logger) (*Local, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for _, name := range []string{controlplane.CACertFile, controlplane.CAKeyFile, controlplane.TLSCertFile, controlplane.TLSKeyFile, controlplane.SettingsKeyFile} {
		b, err := os.ReadFile(filepath.Join(fromDir, name))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	return serveLocal(ctx, controlplane.ServeOptions{DataDir: dir, Database: database, Logger: log}, token)
}

// serveLocal serves o on a loopback port until the Local is stopped; a
// nil o.Logger discards the request log (after formatting it).
func serveLocal(ctx context.Context, o controlplane.ServeOptions, token string) (*Local, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	ca, err := readFile(filepath.Join(o.DataDir, controlplane.CACertFile))
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	o.Listen = "127.0.0.1:0"
	o.Ready = func(a net.Addr) { ready <- a }
	go func() {
		done <- controlplane.Serve(sctx, o)
	}()
	select {
	case a := <-ready:
		return &Local{URL: "https://" + a.String(), Token: token, CAPEM: ca, stop: func() error { cancel(); return <-done }}, nil
	case err := <-done:
		cancel()
		return nil, err
	case <-ctx.Done():
		cancel()
		<-done
		return nil, ctx.Err()
	}
}
