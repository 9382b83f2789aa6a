package gcad

import (
	"context"
	"fmt"
	"time"

	"github.com/arcagent/arcagent/agent/daemon"

	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// ServiceOptions configure the daemon loop.
type ServiceOptions struct {
	// Interval between evaluations of an unchanged assignment
	// (DefaultInterval).
	Interval time.Duration
	// Poll is how often the desired state is polled (DefaultPoll).
	Poll time.Duration
	// Once polls once, evaluates every assignment, reports and returns.
	Once bool
	// ConfigEvery is how often localconfig.json is looked at for changes
	// (default 2 s); a change evaluates every assignment at once.
	ConfigEvery time.Duration
	// Connect returns the control plane client of the current
	// registration, or an error; it is called again at the next poll
	// after a failure.
	Connect func() (ControlPlane, error)
	// Passed, when set, is told after every pass (tests, metrics).
	Passed func(Outcome, error)
}

// Run is the guest configuration daemon: it polls the desired state with
// If-None-Match every Poll (and on Poke), evaluates every assignment every
// Interval and at once when one is new or changed or localconfig.json
// changed, and reports status after every pass; a report the control plane
// did not take is sent again at the next pass.
func (d *Daemon) Run(ctx context.Context, o ServiceOptions) error {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.ConfigEvery <= 0 {
		o.ConfigEvery = 2 * time.Second
	}
	st, err := LoadState(d.o.Layout)
	if err != nil {
		return err
	}
	etag := st.DesiredETag
	cfgPath := d.o.Layout.LocalConfig()
	cfgStamp := daemon.FileStamp(cfgPath)
	regPath := d.o.Layout.AgentConfig()
	regStamp := daemon.FileStamp(regPath)
	var (
		cp       ControlPlane
		nextPoll time.Time
		nextEval time.Time // zero: at once
		first    = true
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		now := d.o.Now()
		all := first || o.Once
		if s := daemon.FileStamp(cfgPath); s != cfgStamp {
			cfgStamp, all = s, true
			d.o.Log.Info("localconfig.json changed: evaluating every assignment again")
		}
		if s := daemon.FileStamp(regPath); s != regStamp {
			regStamp, cp, nextPoll = s, nil, time.Time{}
			d.o.Log.Info("agentconfig.json changed: connecting to the control plane again")
		}
		var desired *apiv1.DesiredState
		var tag string
		if !now.Before(nextPoll) {
			nextPoll = now.Add(o.Poll)
			if cp == nil && o.Connect != nil {
				c, err := o.Connect()
				if err != nil {
					d.o.Log.Warn("no control plane to poll", "err", err)
				}
				cp = c
			}
			if cp != nil {
				dst, t, err := cp.DesiredState(ctx, etag)
				if err != nil {
					d.o.Log.Warn("poll the desired state", "err", err)
				}
				desired, tag = dst, t
			}
		}
		if desired != nil || all || !now.Before(nextEval) {
			out, err := d.Pass(ctx, cp, desired, tag, PassOptions{All: all, Interval: o.Interval})
			if err != nil && ctx.Err() == nil {
				d.o.Log.Error("guest configuration pass", "err", err)
			} else if desired != nil {
				etag = tag
			}
			first = false
			nextEval = out.Next
			if nextEval.IsZero() {
				nextEval = d.o.Now().Add(o.Interval)
			}
			if o.Passed != nil {
				o.Passed(out, err)
			}
			if o.Once {
				if err == nil && out.Pending && cp != nil {
					err = fmt.Errorf("the status report was not accepted by the control plane; it is kept and sent by the next pass")
				}
				return err
			}
		}
		wait := o.ConfigEvery
		now = d.o.Now()
		for _, t := range []time.Time{nextPoll, nextEval} {
			if u := t.Sub(now); u < wait {
				wait = u
			}
		}
		timer.Reset(max(wait, 10*time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-d.poke:
			if !timer.Stop() {
				<-timer.C
			}
			nextPoll = time.Time{}
		}
	}
}
