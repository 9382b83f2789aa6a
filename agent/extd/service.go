package extd

import (
	"context"
	"os"
	"time"

	"github.com/arcagent/arcagent/agent/daemon"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// DefaultInterval is how often the desired state is polled.
const DefaultInterval = 60 * time.Second

// ServiceOptions configure the daemon loop.
type ServiceOptions struct {
	// Interval between polls of the desired state (DefaultInterval).
	Interval time.Duration
	// ConfigEvery is how often localconfig.json is looked at for changes
	// (default 2 s); a change triggers a pass without a restart.
	ConfigEvery time.Duration
	// Connect returns the control plane client of the current
	// registration, or an error (not connected, no key); it is called
	// again at the next poll after a failure, so a later `arcagent
	// connect` is picked up.
	Connect func() (ControlPlane, error)
	// Passed, when set, is told after every pass (tests, metrics).
	Passed func(Outcome, error)
}

// Run is the extension manager daemon: it recovers what a previous run
// left unfinished, then polls the desired state with If-None-Match and
// reconciles when it changed, when localconfig.json changed, when a retry
// is due or when a status report is pending. Installed extensions keep
// running while the control plane is unreachable; their status is sent
// once it answers.
func (m *Manager) Run(ctx context.Context, o ServiceOptions) error {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.ConfigEvery <= 0 {
		o.ConfigEvery = 2 * time.Second
	}
	if err := m.Recover(ctx); err != nil {
		return err
	}
	st, err := LoadState(m.o.Layout)
	if err != nil {
		return err
	}
	etag := ""
	if st.Desired != nil {
		etag = st.DesiredETag
	}
	cfgPath := m.o.Layout.LocalConfig()
	cfgStamp := daemon.FileStamp(cfgPath)
	// A change of the state by someone else (arcagent extension remove,
	// package install) triggers a pass too.
	statePath := StatePath(m.o.Layout)
	stateStamp := daemon.FileStamp(statePath)
	// A new registration (disconnect, connect) gets a new client.
	regPath := m.o.Layout.AgentConfig()
	regStamp := daemon.FileStamp(regPath)
	var (
		cp       ControlPlane
		wake     time.Time
		nextPoll time.Time
		pending  = true // the first pass reports what Recover found
	)
	svc := ServiceStatus{PID: os.Getpid(), StartedAt: m.o.Now().UTC().Truncate(time.Second), State: ServiceRunning}
	if err := writeServiceStatus(m.o.Layout, svc); err != nil {
		return err
	}
	defer removeServiceStatus(m.o.Layout)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		now := m.o.Now()
		cfgChanged := false
		if s := daemon.FileStamp(cfgPath); s != cfgStamp {
			cfgStamp, cfgChanged = s, true
			m.o.Log.Info("localconfig.json changed: applying the local controls again")
		}
		if s := daemon.FileStamp(statePath); s != stateStamp {
			stateStamp, cfgChanged = s, true
		}
		if s := daemon.FileStamp(regPath); s != regStamp {
			regStamp, cp, nextPoll = s, nil, time.Time{}
			m.o.Log.Info("agentconfig.json changed: connecting to the control plane again")
		}
		due := !now.Before(nextPoll)
		retry := !wake.IsZero() && !now.Before(wake)
		if due || cfgChanged || retry {
			var desired *apiv1.DesiredState
			var tag string
			if due {
				nextPoll = now.Add(o.Interval)
				if cp == nil && o.Connect != nil {
					c, err := o.Connect()
					if err != nil {
						m.o.Log.Warn("no control plane to poll", "err", err)
					}
					cp = c
				}
				if cp != nil {
					d, t, err := cp.DesiredState(ctx, etag)
					if err != nil {
						m.o.Log.Warn("poll the desired state", "err", err)
					}
					desired, tag = d, t
				}
			}
			if desired != nil || cfgChanged || retry || pending {
				out, err := m.Reconcile(ctx, cp, desired, tag)
				stateStamp = daemon.FileStamp(statePath)
				if err != nil && ctx.Err() == nil {
					m.o.Log.Error("reconcile", "err", err)
				} else if desired != nil {
					etag = tag
				}
				wake, pending = out.Wake, out.Pending
				svc.LastPass, svc.Pending = m.o.Now().UTC().Truncate(time.Second), out.Pending
				svc.State, svc.Message = ServiceRunning, ""
				if out.Degraded != "" {
					svc.State, svc.Message = ServiceDegraded, out.Degraded
				}
				if err := writeServiceStatus(m.o.Layout, svc); err != nil {
					m.o.Log.Warn("write the service status", "err", err)
				}
				if o.Passed != nil {
					o.Passed(out, err)
				}
			} else if o.Passed != nil {
				o.Passed(Outcome{}, nil)
			}
		}
		// Sleep until the next poll, retry or look at localconfig.json,
		// whichever comes first.
		d := o.ConfigEvery
		now = m.o.Now()
		if u := nextPoll.Sub(now); u < d {
			d = u
		}
		if !wake.IsZero() {
			if u := wake.Sub(now); u < d {
				d = u
			}
		}
		timer.Reset(max(d, 10*time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-m.poke:
			if !timer.Stop() {
				<-timer.C
			}
			nextPoll = time.Time{}
		}
	}
}
