//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/agent/upgrade"
	"github.com/arcagent/arcagent/signing"
)

const himdsAddr = "127.0.0.1:40342"

// chrootHIMDS is the upgrade.System of the root with HIMDS run by the test
// in place of systemd: dpkg --root installs, and a restart of himdsd stops
// the running `arcagent daemon himds` (SIGTERM, as systemd does) and starts
// the installed binary again inside the root. Everything else is
// upgrade.Debian's, so the upgrade's own restart and wait steps run.
type chrootHIMDS struct {
	*upgrade.Debian
	root string
	t    *testing.T
	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
}

func (c *chrootHIMDS) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cmd := exec.Command("chroot", c.root, agent, "daemon", "himds")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	c.out = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Start(); err != nil {
		return err
	}
	c.cmd = cmd
	return nil
}

func (c *chrootHIMDS) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	c.cmd = nil
}

func (c *chrootHIMDS) Running() bool { return true }
func (c *chrootHIMDS) ActiveUnits(context.Context, []string) ([]string, error) {
	return []string{"himdsd"}, nil
}
func (c *chrootHIMDS) Reload(context.Context) error { return nil }
func (c *chrootHIMDS) MainPID(context.Context, string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}
func (c *chrootHIMDS) Restart(_ context.Context, unit string) error {
	c.stop()
	return c.start()
}
func (c *chrootHIMDS) WaitRunning(ctx context.Context, unit string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !upgrade.Answers(ctx, himdsAddr) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// gapMeter dials HIMDS's port every millisecond and keeps the longest
// time with no listener.
type gapMeter struct {
	stop    chan struct{}
	done    chan struct{}
	longest time.Duration
	gaps    int
}

func measureGaps() *gapMeter {
	g := &gapMeter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		lastUp := time.Now()
		down := false
		for {
			select {
			case <-g.stop:
				return
			default:
			}
			conn, err := net.DialTimeout("tcp", himdsAddr, 50*time.Millisecond)
			now := time.Now()
			if err == nil {
				conn.Close()
				if down {
					g.gaps++
					if d := now.Sub(lastUp); d > g.longest {
						g.longest = d
					}
					down = false
				}
				lastUp = now
			} else {
				down = true
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return g
}

// himdsDowntime upgrades 2.0.0 -> 3.0.0 through upgrade.Run with HIMDS
// running in the root, and reports the time with no listener on 40342.
// It reports false when it could not measure (the port is taken here).
func himdsDowntime(t *testing.T, root, arch string, store *signing.TrustStore, catalog string) bool {
	t.Helper()
	if ln, err := net.Listen("tcp", himdsAddr); err != nil {
		t.Logf("HIMDS downtime not measured: %s is taken on this machine (%v)", himdsAddr, err)
		return false
	} else {
		ln.Close()
	}
	sys := &chrootHIMDS{Debian: upgrade.NewSystem(layout.New(root)), root: root, t: t}
	if err := sys.start(); err != nil {
		t.Fatalf("start HIMDS in the root: %v", err)
	}
	defer sys.stop()
	if err := sys.WaitRunning(context.Background(), "himdsd", 30*time.Second); err != nil {
		t.Fatalf("HIMDS 2.0.0 does not answer in the root: %v\n%s", err, sys.out)
	}
	meter := measureGaps()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	res, err := upgrade.Run(context.Background(), upgrade.Options{
		Layout: layout.New(root), Catalog: filepath.Join(root, catalog), Trust: store, Arch: arch, System: sys,
	})
	took := time.Since(start)
	time.Sleep(100 * time.Millisecond)
	close(meter.stop)
	<-meter.done
	if err != nil {
		t.Fatalf("upgrade 2.0.0 -> 3.0.0 with HIMDS running: %v\nHIMDS output:\n%s", err, sys.out)
	}
	for _, s := range res.Steps {
		t.Logf("  %-16s %-7s %s", s.Name, s.Status, s.Detail)
	}
	if v := installedVersion(t, root); v != "3.0.0" {
		t.Errorf("installed %q after the upgrade with HIMDS running, want 3.0.0", v)
	}
	t.Logf("HIMDS upgrade downtime: %s with no listener on %s (%d gap(s)) during an upgrade of %s", meter.longest.Round(time.Microsecond), himdsAddr, meter.gaps, took.Round(time.Millisecond))
	if meter.gaps == 0 {
		t.Errorf("HIMDS was never restarted (no gap seen)")
	}
	return true
}
