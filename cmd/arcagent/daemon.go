package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/daemon"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/arcagent/arcagent/internal/buildinfo"
)

func init() { extraCommands = append(extraCommands, newDaemonCmd) }

// himdsOptions are the flags of `arcagent daemon himds`.
type himdsOptions struct {
	listen            string
	socket            string
	tokensDir         string
	user              string
	heartbeatInterval time.Duration
	backoffMin        time.Duration
	backoffMax        time.Duration
	reloadEvery       time.Duration
}

func newDaemonCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon SERVICE",
		Short: "Run an agent service in the foreground (himds, extd, arcproxy)",
		Args:  exactArgs(1),
	}
	cmd.AddCommand(newDaemonHIMDSCmd(a), newDaemonExtdCmd(a), newDaemonGcadCmd(a), newDaemonArcProxyCmd(a))
	return cmd
}

func newDaemonHIMDSCmd(a *app) *cobra.Command {
	var o himdsOptions
	cmd := &cobra.Command{
		Use:   "himds",
		Short: "Run HIMDS: heartbeats, instance metadata and managed-identity tokens on 127.0.0.1:40342",
		Long: `himds runs the metadata and identity service in the foreground.

It binds the local API (loopback only) and its admin socket, then, when
started as root, switches to user himds (--user) for good. Under systemd,
run it with User=himds instead. It heartbeats every 5 minutes, reloads
agentconfig.json and localconfig.json when they change (or on SIGHUP),
and stops gracefully on SIGTERM.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runHIMDS(cmd, a, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", himds.DefaultListen, "loopback address of the local API")
	f.StringVar(&o.socket, "admin-socket", "", "admin socket path (default ROOT"+layout.AdminSocket+")")
	f.StringVar(&o.tokensDir, "tokens-dir", "", "directory of challenge secret files (default ROOT"+layout.TokensDir+")")
	f.StringVar(&o.user, "user", layout.UserHIMDS, "user to switch to after binding when started as root")
	f.DurationVar(&o.heartbeatInterval, "heartbeat-interval", 0, "heartbeat interval (default: what the control plane asks, 5m)")
	f.DurationVar(&o.backoffMin, "backoff-min", 10*time.Second, "first retry delay after a failed heartbeat (doubles up to --backoff-max)")
	f.DurationVar(&o.backoffMax, "backoff-max", 0, "longest retry delay (default: the heartbeat interval)")
	f.DurationVar(&o.reloadEvery, "reload-every", 2*time.Second, "how often to look for changes to agentconfig.json and localconfig.json")
	_ = f.MarkHidden("reload-every")
	return cmd
}

func runHIMDS(cmd *cobra.Command, a *app, o himdsOptions) error {
	ctx := cmd.Context()
	l := a.layout()
	log := a.serviceLogger()
	tokens := o.tokensDir
	if tokens == "" {
		tokens = l.TokensDir()
	}
	socket := o.socket
	if socket == "" {
		socket = l.AdminSocket()
	}
	dirs := daemon.HIMDSDirs(l, tokens)
	{
		// The directories HIMDS relies on exist with their owners and
		// modes, repaired while the process may still be root.
		if err := daemon.CheckDirs(dirs, log); err != nil {
			return errcode.Wrap(himds.CodeUnsafeDir, err, "check HIMDS's directories")
		}
		// Files written by a connect that ran before user himds existed
		// get the owners of the layout, so the service user can read them.
		himdsOwner := atomicfile.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS}
		for _, f := range []struct {
			path  string
			owner atomicfile.Owner
		}{{l.CertsDir(), himdsOwner}, {l.MachineKey(), himdsOwner}, {l.ServerCA(), himdsOwner},
			{l.AgentConfig(), atomicfile.Owner{User: layout.UserRoot, Group: layout.GroupHIMDS}}} {
			if _, err := os.Lstat(f.path); err != nil {
				continue
			}
			if err := atomicfile.Chown(f.path, f.owner); err != nil {
				return errcode.Wrap(errcode.WriteFailed, err, "set the owner of %s", f.path)
			}
		}
	}
	ln, err := daemon.ListenLoopback(ctx, o.listen)
	if err != nil {
		return errcode.Wrap(himds.CodeListen, err, "start HIMDS")
	}
	defer ln.Close()
	adm, err := daemon.ListenUnix(ctx, socket, 0o660, atomicfile.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS})
	if err != nil {
		return errcode.Wrap(himds.CodeListen, err, "start the admin socket")
	}
	defer adm.Close()
	if os.Geteuid() == 0 && o.user != "" && o.user != "root" {
		if err := daemon.DropPrivileges(o.user); err != nil {
			return errcode.Wrap(himds.CodePrivilegeDrop, err, "switch to user %s", o.user)
		}
		log.Info("switched to the service user", "user", o.user, "uid", os.Getuid(), "gid", os.Getgid())
	}
	svc, err := himds.New(himds.Options{
		Layout: l, TokensDir: tokens, Log: log, HeartbeatInterval: o.heartbeatInterval,
		BackoffMin: o.backoffMin, BackoffMax: o.backoffMax, ReloadEvery: o.reloadEvery,
		AgentVersion: buildinfo.Get().Version, Listen: ln.Addr().String(),
	})
	if err != nil {
		return err
	}
	err = daemon.Run(ctx, daemon.Options{
		Log: log,
		Servers: []daemon.Server{
			{Name: "local API", Listener: ln, Handler: svc.Handler()},
			{Name: "admin socket", Listener: adm, Handler: svc.AdminHandler(), ConnContext: himds.AdminConnContext},
		},
		Work: svc.Run,
		Reload: func(ctx context.Context) error {
			// Checked again on SIGHUP; as the service user only modes of
			// its own directories can be repaired.
			if err := daemon.CheckDirs(dirs, log); err != nil {
				log.Error("a directory HIMDS relies on is unsafe", "err", err)
				return errcode.Wrap(himds.CodeUnsafeDir, err, "check HIMDS's directories")
			}
			return svc.Reload(ctx)
		},
		Ready: func() {
			log.Info("HIMDS serving", "listen", ln.Addr().String(), "admin_socket", socket, "tokens_dir", tokens)
			if !a.json {
				fmt.Fprintf(a.stdout, "HIMDS serving http://%s (admin socket %s)\n", ln.Addr(), socket)
			}
		},
	})
	log.Info("HIMDS stopped")
	return err
}
