// Package daemon holds the lifecycle that every agent service shares: bind
// its listeners (loopback TCP and unix sockets) while it may still be root,
// drop to the service user, serve until the context ends, reload on SIGHUP,
// and shut down gracefully.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/arcagent/arcagent/internal/atomicfile"
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

// ListenUnix listens on a unix socket at path with the given mode and
// owner, replacing a stale socket left by an earlier run (but never a file
// that is not a socket).
func ListenUnix(ctx context.Context, path string, mode fs.FileMode, owner atomicfile.Owner) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket: remove it by hand", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another process serves %s: stop it first", path)
		}
		_ = os.Remove(path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	// The socket is created with its final mode through the umask: a
	// chmod by path afterwards would follow a symlink that the owner of the
	// directory could swap in, and widen some other file's mode as root.
	old := syscall.Umask(int(0o777 &^ mode.Perm()))
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// Lchown never follows a link.
	if err := atomicfile.Chown(path, owner); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// DropPrivileges switches a root process to the named user, its primary
// group and its supplementary groups, for every thread, and checks that
// root cannot be regained. It is a no-op when the process is not root.
func DropPrivileges(name string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("look up user %s: %w", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("user %s has a non-numeric uid or gid", name)
	}
	if uid == 0 {
		return fmt.Errorf("user %s is root: the service must run as an unprivileged user", name)
	}
	groups := []int{gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.Atoi(g); err == nil && n != gid {
				groups = append(groups, n)
			}
		}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("set supplementary groups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("set group %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("set user %d: %w", uid, err)
	}
	if syscall.Setuid(0) == nil || os.Geteuid() == 0 {
		return errors.New("root could be regained after the privilege drop: refusing to run")
	}
	return nil
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
