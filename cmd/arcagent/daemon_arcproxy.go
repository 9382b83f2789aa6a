package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/agent/daemon"
	"github.com/arcagent/arcagent/agent/himds"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/agent/proxy"
	"github.com/arcagent/arcagent/errcode"
)

// arcproxyOptions are the flags of `arcagent daemon arcproxy`.
type arcproxyOptions struct {
	listen      string
	user        string
	credentials string
	reloadEvery time.Duration
}

func newDaemonArcProxyCmd(a *app) *cobra.Command {
	var o arcproxyOptions
	cmd := &cobra.Command{
		Use:     "arcproxy",
		Aliases: []string{"proxy"},
		Short:   "Run the arc proxy: the agent's one egress path, on 127.0.0.1:40343",
		Long: `arcproxy runs the arc proxy in the foreground: an HTTP proxy for CONNECT
tunnels (no TLS interception) on a loopback address, through which every
agent service sends its control-plane and package traffic.

It is on only when connection.type is gateway or proxy.url is set;
otherwise it says so and exits 0 without listening (the systemd path unit
arcproxyd.path starts it again when localconfig.json changes). It connects
only to the control plane of agentconfig.json and the proxy.allowed
endpoints, and refuses anything else with 403. Upstream it goes through
proxy.url (or HTTPS_PROXY), with Basic credentials from
/var/opt/azcmagent/proxy-credentials (user:password, root:arcproxy 0640),
or direct for the proxy.bypass classes.

When started as root it reads localconfig.json, agentconfig.json and the
credentials, binds, and switches to user arcproxy (--user) for good. That
user is deliberately not in group himds (a member could read HIMDS's
challenge secrets and obtain the machine's tokens), so it cannot read the
two configuration files again: when they change it exits with status 75,
and systemd (arcproxyd.service, Restart=on-failure) starts it again to read
them; a credentials change alone is read in place. Run as root or as an
ordinary user (no switch) it reloads in place. It stops when the
configuration turns it off, and gracefully on SIGTERM.`,
		Example: "  arcagent daemon arcproxy\n  arcagent daemon arcproxy --listen 127.0.0.1:40343",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runArcProxy(cmd, a, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", proxy.DefaultListen, "loopback address to listen on")
	f.StringVar(&o.user, "user", layout.UserArcProxy, "user to switch to after binding when started as root")
	f.StringVar(&o.credentials, "credentials-file", "", "upstream proxy credentials, user:password (default ROOT"+proxy.CredentialsFile+")")
	f.DurationVar(&o.reloadEvery, "reload-every", 2*time.Second, "how often to look for changes to localconfig.json, agentconfig.json and the credentials")
	_ = f.MarkHidden("reload-every")
	return cmd
}

func runArcProxy(cmd *cobra.Command, a *app, o arcproxyOptions) error {
	ctx := cmd.Context()
	l := a.layout()
	log := a.serviceLogger()
	srv := proxy.New(proxy.Options{
		Layout: l, Log: log, CredentialsFile: o.credentials, ReloadEvery: o.reloadEvery,
		LoadServer: func() (string, error) {
			cfg, err := himds.LoadAgentConfig(l)
			if err != nil || cfg == nil {
				return "", err
			}
			return cfg.Server, nil
		},
	})
	// As root still: the credentials file may be readable by root only.
	on, err := srv.Reload(ctx)
	if err != nil {
		return fmt.Errorf("start the arc proxy: %w", err)
	}
	if !on {
		log.Info("the arc proxy is off until configured: connection.type is not gateway and proxy.url is not set")
		if !a.json {
			fmt.Fprintln(a.stdout, "arc proxy off until configured (arcagent config set proxy.url URL, or connection.type gateway): not listening")
		}
		return nil
	}
	ln, err := daemon.ListenLoopback(ctx, o.listen)
	if err != nil {
		return errcode.Wrap(proxy.CodeListen, err, "start the arc proxy")
	}
	defer ln.Close()
	if os.Geteuid() == 0 && o.user != "" && o.user != "root" {
		if err := daemon.DropPrivileges(o.user); err != nil {
			return errcode.Wrap(proxy.CodePrivilegeDrop, err, "switch to user %s", o.user)
		}
		log.Info("switched to the service user", "user", o.user, "uid", os.Getuid(), "gid", os.Getgid())
	}
	err = daemon.Run(ctx, daemon.Options{
		Log:     log,
		Servers: []daemon.Server{{Name: "arc proxy", Listener: ln, Handler: srv}},
		Work:    srv.Run,
		Reload: func(ctx context.Context) error {
			_, err := srv.Reload(ctx)
			return err
		},
		Ready: func() {
			log.Info("arc proxy serving", "listen", ln.Addr().String())
			if !a.json {
				fmt.Fprintf(a.stdout, "arc proxy serving http://%s\n", ln.Addr())
			}
		},
	})
	if errors.Is(err, proxy.ErrRestart) {
		// Started again by systemd (Restart=on-failure), as root, to read
		// what the service user may not.
		log.Info("arc proxy stopping to be started again with the new configuration", "exit", proxy.ExitRestart)
		return silentError{code: proxy.ExitRestart}
	}
	if errors.Is(err, proxy.ErrOff) {
		if !a.json {
			fmt.Fprintln(a.stdout, "arc proxy turned off by localconfig.json: stopped")
		}
		err = nil
	}
	log.Info("arc proxy stopped")
	return err
}
