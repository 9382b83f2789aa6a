package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/config"
	"github.com/arcagent/arcagent/agent/daemon"
	"github.com/arcagent/arcagent/agent/extd"
	"github.com/arcagent/arcagent/agent/extensions/handler"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/errcode"
)

type extdOptions struct {
	interval       time.Duration
	installTimeout time.Duration
	enableTimeout  time.Duration
	otherTimeout   time.Duration
	configEvery    time.Duration
	cgroupRoot     string
	retryMin       time.Duration
	auditEvery     time.Duration
	auditCheck     time.Duration
}

func newDaemonExtdCmd(a *app) *cobra.Command {
	var o extdOptions
	cmd := &cobra.Command{
		Use:   "extd",
		Short: "Run the extension manager: install, enable, update and remove assigned extensions",
		Long: `extd runs the extension manager in the foreground, as root (the handler
commands of extensions run as root, as in the Azure agent).

It polls the control plane's desired state (--interval, with If-None-Match)
and reconciles: local policy first (extensions.enabled, the blocklist, the
allowlist, monitor mode), before any byte is downloaded; then download,
signature check against the trust store, safe extraction and the handler
commands (install, enable, update, disable, uninstall) of the Azure Linux
extension handler protocol, each in a CPU-limited cgroup
(extensions.agent.cpulimit); then status to the control plane. A change of
localconfig.json is applied without a restart; SIGHUP polls at once. Its state is kept in
/var/lib/GuestConfig/ext_mgr/state.json, so a restart after a crash rolls
an unfinished install back and resumes the rest. It stops on SIGTERM.

With audit.upload.enabled true (off by default), it also audits the
machine every audit.upload.interval minutes (default 1440, at least 15)
with the default rule packs, report only, and uploads the JSON report to
the control plane as ` + "`arcagent audit --upload`" + ` does; the time of the last
run is kept in /var/lib/GuestConfig/ext_mgr/audit_upload.json.`,
		Example: "  arcagent daemon extd\n  arcagent daemon extd --interval 30s",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runExtd(cmd, a, o)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.interval, "interval", extd.DefaultInterval, "how often to poll the desired state")
	f.DurationVar(&o.installTimeout, "install-timeout", handler.DefaultTimeout, "timeout of a handler's install command")
	f.DurationVar(&o.enableTimeout, "enable-timeout", handler.DefaultTimeout, "timeout of a handler's enable command")
	f.DurationVar(&o.otherTimeout, "command-timeout", handler.DefaultTimeout, "timeout of the update, disable and uninstall commands")
	f.DurationVar(&o.configEvery, "reload-every", 2*time.Second, "how often to look for changes to localconfig.json")
	f.StringVar(&o.cgroupRoot, "cgroup-root", "", "cgroup mount to create the CPU-limited groups under (default /sys/fs/cgroup)")
	f.DurationVar(&o.retryMin, "retry-min", 30*time.Second, "first retry delay after a failed step (doubles up to 64 times)")
	f.DurationVar(&o.auditEvery, "audit-every", 0, "override audit.upload.interval (tests)")
	f.DurationVar(&o.auditCheck, "audit-check", time.Minute, "how often to read audit.upload.enabled again")
	_ = f.MarkHidden("audit-every")
	_ = f.MarkHidden("audit-check")
	_ = f.MarkHidden("reload-every")
	_ = f.MarkHidden("cgroup-root")
	return cmd
}

func runExtd(cmd *cobra.Command, a *app, o extdOptions) error {
	ctx := cmd.Context()
	l := a.layout()
	log := a.serviceLogger()
	if os.Geteuid() != 0 && l.IsSystemRoot() {
		return errcode.New(errcode.PermissionDenied, "the extension manager runs extension handlers as root: start it as root (systemd unit extd.service), or use --root DIR for a test tree")
	}
	a.log = log
	m := a.manager(extd.Options{
		Timeouts: map[handler.Op]time.Duration{
			handler.OpInstall: o.installTimeout, handler.OpEnable: o.enableTimeout,
			handler.OpUpdate: o.otherTimeout, handler.OpDisable: o.otherTimeout, handler.OpUninstall: o.otherTimeout,
		},
		CgroupRoot: o.cgroupRoot,
		RetryMin:   o.retryMin,
	})
	connect := func() (extd.ControlPlane, error) {
		cfg, err := himds.LoadAgentConfig(l)
		if err != nil {
			return nil, err
		}
		if cfg == nil {
			return nil, errcode.New(extd.CodeNotConnected, "the machine is not connected (arcagent connect)")
		}
		settings, _, err := config.NewStore(l).Load()
		if err != nil {
			return nil, err
		}
		return himds.MachineClient(l, cfg, settings, extdVersion())
	}
	return daemon.Run(ctx, daemon.Options{
		Log: log,
		Work: func(ctx context.Context) error {
			// The periodic audit runs beside the extension manager and
			// stops with it.
			actx, stop := context.WithCancel(ctx)
			audits := make(chan error, 1)
			go func() {
				audits <- extd.RunAudits(actx, extd.AuditOptions{Layout: l, Log: log, Run: a.periodicAudit, Every: o.auditEvery, Check: o.auditCheck})
			}()
			err := m.Run(ctx, extd.ServiceOptions{Interval: o.interval, ConfigEvery: o.configEvery, Connect: connect})
			stop()
			return errors.Join(err, <-audits)
		},
		// SIGHUP: poll the desired state now.
		Reload: func(context.Context) error { m.Poke(); return nil },
		Ready: func() {
			log.Info("extension manager running", "interval", o.interval, "state", extd.StatePath(l))
			if !a.json {
				fmt.Fprintf(a.stdout, "extension manager running (state %s)\n", extd.StatePath(l))
			}
		},
	})
}
