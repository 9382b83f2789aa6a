// Package daemon holds the lifecycle that every agent service shares: bind
// its listeners (loopback TCP and unix sockets) while it may still be root,
// drop to the service user, serve until the context ends, reload on SIGHUP,
// and shut down gracefully.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// ListenLoopback listens on addr, which must be a loopback IP address and
// port (127.0.0.1:40342): the local APIs are never reachable from outside.
func ListenLoopback(ctx context.Context, addr string) (net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q is not IP:PORT (use 127.0.0.1:PORT): %w", addr, err)
	}
	if !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("listen address %s is not a loopback address: the local API binds 127.0.0.1 only", addr)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Server is one HTTP server on a bound listener.
type Server struct {
	Name        string
	Listener    net.Listener
	Handler     http.Handler
	ConnContext func(context.Context, net.Conn) context.Context
}

// Options configures Run.
type Options struct {
	Log *slog.Logger
	// Servers are served until ctx ends.
	Servers []Server
	// Work runs beside the servers (heartbeat loops) until ctx ends.
	Work func(ctx context.Context) error
	// Reload is called on SIGHUP.
	Reload func(ctx context.Context) error
	// ShutdownTimeout bounds the graceful stop (default 10s).
	ShutdownTimeout time.Duration
	// Ready, when set, is called once Run handles SIGHUP and serves: the
	// signal handler is installed before any server or Work starts.
	Ready func()
}

// Run serves until ctx is done (SIGTERM/SIGINT in the CLI), then stops the
// servers gracefully and waits for Work to return.
func Run(ctx context.Context, o Options) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// First, so that a SIGHUP sent once the service answers is never lost
	// (nor kills the process, the default action).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	errc := make(chan error, len(o.Servers)+1)
	var hs []*http.Server
	for _, s := range o.Servers {
		srv := &http.Server{Handler: s.Handler, ConnContext: s.ConnContext, ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn)}
		hs = append(hs, srv)
		go func(name string, ln net.Listener) {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}(s.Name, s.Listener)
	}
	var wg sync.WaitGroup
	if o.Work != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := o.Work(ctx); err != nil && ctx.Err() == nil {
				errc <- err
			}
		}()
	}
	if o.Ready != nil {
		o.Ready()
	}
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-errc:
			break loop
		case <-hup:
			if o.Reload != nil {
				if rerr := o.Reload(ctx); rerr != nil {
					o.Log.Warn("reload failed; keeping the previous configuration", "err", rerr)
				} else {
					o.Log.Info("reloaded on SIGHUP")
				}
			}
		}
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer scancel()
	for _, srv := range hs {
		_ = srv.Shutdown(sctx)
	}
	wg.Wait()
	return err
}
