package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/daemon"
	"github.com/arcagent/arcagent/agent/gcad"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/buildinfo"
	"github.com/arcagent/arcagent/signing"
)

type gcadOptions struct {
	interval    time.Duration
	poll        time.Duration
	once        bool
	configEvery time.Duration
	cgroupRoot  string
}

func gcadVersion() string { return "arcagent-gcad/" + buildinfo.Get().Version }

func newDaemonGcadCmd(a *app) *cobra.Command {
	var o gcadOptions
	cmd := &cobra.Command{
		Use:   "gcad",
		Short: "Run guest configuration: evaluate the assigned configuration packages and report compliance",
		Long: `gcad runs guest configuration in the foreground, as root (resources read and
set system files such as /etc/shadow).

It polls the control plane's desired state (--poll, with If-None-Match; SIGHUP
polls at once) and evaluates every guest configuration assignment every
--interval, and at once when an assignment is new or changed (version,
digest, mode, parameters) or localconfig.json changed. Each package is
downloaded by digest into /var/lib/GuestConfig/gc_agent/packages, verified
against the trust store at every load, and evaluated in its mode: Audit never
changes anything, ApplyAndMonitor sets once per assignment and then reports
drift, ApplyAndAutoCorrect sets whenever a test fails. Commands the resources
run are CPU-limited (guestconfiguration.agent.cpulimit). With
guestconfiguration.enabled false every assignment is reported NotApplied and
nothing is touched. --once polls once, evaluates every assignment, reports
and exits. See docs/guestconfig.md.`,
		Example: "  arcagent daemon gcad\n  arcagent daemon gcad --once\n  arcagent daemon gcad --interval 5m --poll 1m",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGcad(cmd, a, o)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.interval, "interval", gcad.DefaultInterval, "how often every assignment is evaluated")
	f.DurationVar(&o.poll, "poll", gcad.DefaultPoll, "how often to poll the desired state")
	f.BoolVar(&o.once, "once", false, "poll once, evaluate every assignment, report and exit")
	f.DurationVar(&o.configEvery, "reload-every", 2*time.Second, "how often to look for changes to localconfig.json")
	f.StringVar(&o.cgroupRoot, "cgroup-root", "", "cgroup mount to create the CPU-limited group under (default /sys/fs/cgroup)")
	_ = f.MarkHidden("reload-every")
	_ = f.MarkHidden("cgroup-root")
	return cmd
}

func runGcad(cmd *cobra.Command, a *app, o gcadOptions) error {
	ctx := cmd.Context()
	l := a.layout()
	log := a.serviceLogger()
	if os.Geteuid() != 0 && l.IsSystemRoot() {
		return errcode.New(errcode.PermissionDenied, "guest configuration reads and sets system files as root: start it as root (systemd unit gcad.service), or use --root DIR for a test tree")
	}
	a.log = log
	d := gcad.New(gcad.Options{
		Layout:     l,
		Trust:      func() (*signing.TrustStore, error) { return a.loadTrust("") },
		CgroupRoot: o.cgroupRoot,
		Log:        log,
	})
	connect := func() (gcad.ControlPlane, error) {
		cfg, err := himds.LoadAgentConfig(l)
		if err != nil {
			return nil, err
		}
		if cfg == nil {
			return nil, errcode.New(gcad.CodeNotConnected, "the machine is not connected (arcagent connect)")
		}
		settings, _, err := config.NewStore(l).Load()
		if err != nil {
			return nil, err
		}
		return himds.MachineClient(l, cfg, settings, gcadVersion())
	}
	so := gcad.ServiceOptions{Interval: o.interval, Poll: o.poll, ConfigEvery: o.configEvery, Connect: connect}
	if o.once {
		so.Once = true
		var out gcad.Outcome
		so.Passed = func(x gcad.Outcome, _ error) { out = x }
		if err := d.Run(ctx, so); err != nil {
			return err
		}
		if a.json {
			return a.printJSON(out)
		}
		fmt.Fprintf(a.stdout, "guest configuration: %d assignment(s) evaluated (state %s)\n", out.Evaluated, gcad.StatePath(l))
		if out.Degraded != "" {
			fmt.Fprintf(a.stdout, "degraded: %s\n", out.Degraded)
		}
		return nil
	}
	return daemon.Run(ctx, daemon.Options{
		Log:  log,
		Work: func(ctx context.Context) error { return d.Run(ctx, so) },
		// SIGHUP: poll the desired state now.
		Reload: func(context.Context) error { d.Poke(); return nil },
		Ready: func() {
			log.Info("guest configuration running", "interval", o.interval, "poll", o.poll, "state", gcad.StatePath(l))
			if !a.json {
				fmt.Fprintf(a.stdout, "guest configuration running (state %s)\n", gcad.StatePath(l))
			}
		},
	})
}
