package extd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/layout"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func setConfig(t *testing.T, l layout.Layout, name, value string) {
	t.Helper()
	if _, err := config.NewStore(l).Update(context.Background(), func(s *config.Settings) error {
		_, err := s.Apply(config.Change{Op: config.OpSet, Property: name, Value: value})
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestRunAudits: off by default; on, it runs at once, then once per
// interval of the (test) clock, a failure is retried at the next interval,
// and the last run survives a restart.
func TestRunAudits(t *testing.T) {
	l := layout.New(t.TempDir())
	if err := os.MkdirAll(filepath.Dir(StatePath(l)), 0o700); err != nil {
		t.Fatal(err)
	}
	clk := &testClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	runs := make(chan struct{}, 10)
	checks := make(chan error, 10)
	var fail bool
	var mu sync.Mutex
	start := func() (context.CancelFunc, chan error) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- RunAudits(ctx, AuditOptions{
				Layout: l, Check: 5 * time.Millisecond, Now: clk.now,
				Run: func(context.Context) error {
					runs <- struct{}{}
					mu.Lock()
					defer mu.Unlock()
					if fail {
						return errors.New("control plane unreachable")
					}
					return nil
				},
				Ran: func(err error) { checks <- err },
			})
		}()
		return cancel, done
	}
	wait := func(what string) error {
		t.Helper()
		select {
		case err := <-checks:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("no run: %s", what)
		}
		return nil
	}
	noRun := func(what string) {
		t.Helper()
		// Several checks of the settings pass without a run.
		select {
		case <-runs:
			t.Fatalf("ran: %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}

	cancel, done := start()
	noRun("off by default")
	setConfig(t, l, config.AuditUploadEnabled, "true")
	if err := wait("enabled"); err != nil {
		t.Fatal(err)
	}
	<-runs
	noRun("before the interval")
	clk.add(24 * time.Hour)
	mu.Lock()
	fail = true
	mu.Unlock()
	if err := wait("after a day"); err == nil {
		t.Fatal("the failure was not reported")
	}
	<-runs
	mu.Lock()
	fail = false
	mu.Unlock()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A restart does not run again before the interval.
	cancel, done = start()
	noRun("after a restart")
	setConfig(t, l, config.AuditUploadInterval, "60")
	clk.add(time.Hour)
	if err := wait("hourly"); err != nil {
		t.Fatal(err)
	}
	<-runs
	setConfig(t, l, config.AuditUploadEnabled, "false")
	clk.add(2 * time.Hour)
	noRun("disabled again")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := loadAuditState(l); !st.LastRun.Equal(clk.now().Add(-2*time.Hour)) || st.LastErr != "" {
		t.Fatalf("state: %+v", st)
	}
}
