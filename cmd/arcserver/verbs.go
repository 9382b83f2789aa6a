package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/loadgen"
	"github.com/arcagent/arcagent/errcode"
)

func newInitCmd(a *app) *cobra.Command {
	var o controlplane.InitOptions
	cmd := &cobra.Command{
		Use:   "init --data DIR",
		Short: "Create a data directory: tenant, CA and TLS certificate, token-signing key, first Owner token",
		Long: `init creates DIR (mode 0700) with the database, a self-signed CA (ca.crt,
ca.key), a TLS certificate for localhost, 127.0.0.1, ::1, this host's name and
every --host (tls.crt, tls.key), the token-signing key, and a first API token
for the principal "owner", who holds the Owner role on the whole tenant.

The Owner token is printed once and stored only as a hash: keep it safe.

With --database postgres://… (or ARCSERVER_DATABASE) the tenant, keys and
tokens go into that PostgreSQL database instead of DIR/arcserver.db; DIR still
holds the CA and TLS files. For several replicas, init once and copy DIR to
every replica host.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Database = databaseSpec(o.Database)
			res, err := controlplane.Init(cmd.Context(), o)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(res)
			}
			fmt.Fprintf(a.stdout, "Initialised %s\n  tenant:   %s\n  database: %s\n  CA:       %s (give it to agents and operators)\n  TLS cert: %s\n\n", o.DataDir, res.TenantID, res.DB, res.CACert, res.TLSCert)
			fmt.Fprintf(a.stdout, "Owner API token (shown once, stored only as a hash):\n\n  %s\n\n", res.OwnerToken)
			serve := "arcserver serve --data " + o.DataDir
			if o.Database != "" {
				serve += " --database URL"
			}
			fmt.Fprintf(a.stdout, "Next:\n  %s\n  arcagent fleet login --server https://127.0.0.1:8443 --ca-file %s --token -   (paste the token)\n", serve, res.CACert)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.DataDir, "data", "", "data directory to create (required)")
	cmd.Flags().StringSliceVar(&o.Hosts, "host", nil, "extra DNS name or IP address for the TLS certificate (repeatable)")
	databaseFlag(cmd, &o.Database)
	return cmd
}

func newServeCmd(a *app) *cobra.Command {
	var o controlplane.ServeOptions
	var level, format string
	cmd := &cobra.Command{
		Use:   "serve --data DIR [--listen 127.0.0.1:8443]",
		Short: "Serve the HTTPS API until SIGTERM or Ctrl-C",
		Long: `serve runs the control plane API over HTTPS (never plain HTTP) on --listen.
It uses DIR/tls.crt and DIR/tls.key unless --tls-cert and --tls-key name your
own. Pending schema migrations run at start. On SIGTERM or SIGINT it stops
accepting connections, lets requests in flight finish (up to --shutdown-timeout),
writes queued heartbeats and exits 0.

The read-only web dashboard is served at https://LISTEN/ui/ (log in with an
operator API token); --release-catalog lets its agent version chart tell
current, behind and unsupported versions apart.

Requests are logged as JSON (or text) on stderr with slog; tokens, onboarding
credentials and request bodies are never logged.

With --database postgres://… (or ARCSERVER_DATABASE) the state is in that
PostgreSQL database, and several replicas may serve it at once; DIR still holds
the TLS files and the published packages. Without it, DIR/arcserver.db.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return errcode.Wrap(errcode.Usage, err, "--log-level must be debug, info, warn or error")
			}
			hopts := &slog.HandlerOptions{Level: lv}
			switch format {
			case "json":
				o.Logger = slog.New(slog.NewJSONHandler(a.stderr, hopts))
			case "text":
				o.Logger = slog.New(slog.NewTextHandler(a.stderr, hopts))
			default:
				return errcode.New(errcode.Usage, "--log-format must be json or text, not %q", format)
			}
			if !a.json {
				o.Ready = func(addr net.Addr) {
					fmt.Fprintf(a.stdout, "arcserver serving https://%s (Ctrl-C or SIGTERM to stop)\n", addr)
				}
			}
			if o.AuditHistory < 1 || o.AuditHistory > 1000 {
				return errcode.New(errcode.Usage, "--audit-history must be between 1 and 1000, not %d", o.AuditHistory)
			}
			tuneGC()
			o.Database = databaseSpec(o.Database)
			return controlplane.Serve(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data", "", "data directory made by arcserver init (required)")
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8443", "address to listen on (host:port)")
	f.StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate (chain) to serve instead of DIR/tls.crt")
	f.StringVar(&o.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&o.Issuer, "issuer", "", "public https URL of this server, the iss of issued tokens (default https://LISTEN)")
	f.DurationVar(&o.TokenLifetime, "token-lifetime", time.Hour, "lifetime of issued managed-identity tokens")
	f.IntVar(&o.AuditHistory, "audit-history", controlplane.DefaultAuditHistory, "uploaded audit reports kept per machine and profile (the oldest are deleted)")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long requests in flight may take to finish at shutdown")
	f.StringVar(&o.ReleaseCatalog, "release-catalog", "", "signed release catalog (FILE or https://URL, as `arcagent fleet currency --catalog` reads) the dashboard classifies agent versions with")
	f.StringVar(&o.ReleaseCatalogName, "release-catalog-name", "releases", "name the release catalog's keys are trusted for")
	f.StringVar(&o.ReleaseTrustDir, "release-trust-dir", "", "trust directory holding the release catalog's keys (default DIR/trust)")
	f.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&format, "log-format", "json", "log format: json or text")
	f.BoolVar(&o.Replica, "replica", false, "serve beside other arcserver replicas over the same database: the replay cache lives in the database, cached machines are re-read every second, and the data directory lock is taken shared")
	databaseFlag(cmd, &o.Database)
	return cmd
}

func newBackupCmd(a *app) *cobra.Command {
	var dir, to, database string
	cmd := &cobra.Command{
		Use:   "backup --data DIR --to FILE",
		Short: "Write a consistent copy of the database, also while serving",
		Long: `backup copies the database (VACUUM INTO) to FILE, which must not exist. It is
safe while "arcserver serve" runs. The copy is mode 0600: it holds the
token-signing keys. To restore, stop the server and replace DIR/arcserver.db
(and remove DIR/arcserver.db-wal and -shm) with the copy.

A PostgreSQL database (--database) is refused: back it up with pg_dump or
PostgreSQL's base backups.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if databaseSpec(database) != "" {
				return controlplane.BackupPostgresError()
			}
			if to == "" {
				return errcode.New(errcode.Usage, "--to FILE is required")
			}
			abs, err := filepath.Abs(to)
			if err != nil {
				return errcode.Wrap(errcode.Usage, err, "--to %s", to)
			}
			if err := controlplane.Backup(cmd.Context(), dir, abs); err != nil {
				return err
			}
			fi, err := os.Stat(abs)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"backup": abs, "bytes": fi.Size()})
			}
			fmt.Fprintf(a.stdout, "Backed up %s to %s (%d bytes)\n", dir, abs, fi.Size())
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", "", "data directory (required)")
	cmd.Flags().StringVar(&to, "to", "", "backup file to create (required)")
	databaseFlag(cmd, &database)
	return cmd
}

func newKeysCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage the token-signing keys"}
	var dir, database string
	rotate := &cobra.Command{
		Use:   "rotate --data DIR",
		Short: "Publish a new token-signing key, which signs 2 minutes later; the old one stays in the JWKS until its tokens expire",
		Long: `rotate creates a new ES256 token-signing key and retires the current one. A
running server (every replica) publishes the new key within a minute; it signs
from 2 minutes after the rotation on, when every server publishes it, and the
current key signs until then. The retired key stays
published in /.well-known/jwks.json until every token it signed has expired
(token lifetime + 5 minutes), then it is deleted.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := controlplane.OpenStoreAt(cmd.Context(), dir, databaseSpec(database))
			if err != nil {
				return err
			}
			defer st.Close()
			kid, err := controlplane.RotateSigningKey(cmd.Context(), st)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]string{"kid": kid})
			}
			fmt.Fprintf(a.stdout, "New token-signing key %s is published; it signs tokens %s from now, once every server publishes it\n", kid, controlplane.KeyPrepublication)
			return nil
		},
	}
	rotate.Flags().StringVar(&dir, "data", "", "data directory (required)")
	databaseFlag(rotate, &database)
	cmd.AddCommand(rotate)
	return cmd
}

func newTokensCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Short: "Create API tokens directly in the database (recovery)"}
	var dir, principal, database string
	var life time.Duration
	create := &cobra.Command{
		Use:   "create --data DIR --principal P",
		Short: "Create an API token without the API, e.g. when every Owner token is lost",
		Long: `create writes a new API token for principal P straight into the database of DIR
(also while the server runs) and prints it once. P keeps the roles assigned to
it; "owner" is the principal that init made Owner of the tenant. Normally use
"arcagent fleet tokens create" instead.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := controlplane.CreateTokenOfflineAt(cmd.Context(), dir, databaseSpec(database), principal, life)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]string{"principal": principal, "token": tok})
			}
			fmt.Fprintf(a.stdout, "API token for %s (shown once, stored only as a hash):\n\n  %s\n", principal, tok)
			return nil
		},
	}
	create.Flags().StringVar(&dir, "data", "", "data directory (required)")
	create.Flags().StringVar(&principal, "principal", controlplane.OwnerPrincipal, "principal the token acts as")
	create.Flags().DurationVar(&life, "expires", 0, "lifetime (default: never expires)")
	databaseFlag(create, &database)
	cmd.AddCommand(create)
	return cmd
}

func newLoadgenCmd(a *app) *cobra.Command {
	var cfg loadgen.Config
	var caFile, serverLog, database string
	cmd := &cobra.Command{
		Use:   "loadgen",
		Short: "Measure heartbeat throughput and latency with simulated machines",
		Long: `loadgen registers --machines simulated machines (each with its own key) and
sends heartbeats from them with --workers requests in flight for --duration,
then prints heartbeats/s and latency percentiles.

Without --server it starts a fresh arcserver in a temporary directory on
127.0.0.1 in this process. With --server it needs --token (an Owner token)
and --ca-file; it creates a "loadgen-…" subscription there.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if len(cfg.Replicas) > 0 && cfg.ServerURL == "" {
				return errcode.New(errcode.Usage, "--replica needs --server: replicas share a running server's database")
			}
			if cfg.Resume && !cfg.Reconnect {
				return errcode.New(errcode.Usage, "--resume needs --reconnect: keep-alive connections do not handshake again")
			}
			tuneGC()
			if cfg.ServerURL == "" {
				dir, err := os.MkdirTemp("", "arcserver-loadgen-*")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				var log *slog.Logger // nil: formatted, then discarded
				if serverLog != "" {
					f, err := os.OpenFile(serverLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
					if err != nil {
						return errcode.Wrap(errcode.Usage, err, "--server-log")
					}
					defer f.Close()
					log = slog.New(slog.NewJSONHandler(f, nil))
				}
				l, err := loadgen.StartLocalOn(ctx, dir, database, log)
				if err != nil {
					return err
				}
				defer l.Stop()
				cfg.ServerURL, cfg.Token, cfg.CAPEM = l.URL, l.Token, l.CAPEM
			} else {
				if cfg.Token == "" || caFile == "" {
					return errcode.New(errcode.Usage, "--server needs --token and --ca-file")
				}
				_, pemBytes, err := controlplane.LoadCAPool(caFile)
				if err != nil {
					return errcode.Wrap(errcode.Usage, err, "--ca-file")
				}
				cfg.CAPEM = pemBytes
			}
			if !a.json {
				cfg.Progress = func(f string, args ...any) { fmt.Fprintf(a.stderr, f+"\n", args...) }
			}
			fleet, err := loadgen.Setup(ctx, cfg)
			if err != nil {
				return err
			}
			res := fleet.Drive(ctx, cfg, 0)
			if a.json {
				return a.printJSON(res)
			}
			fmt.Fprintln(a.stdout, res)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ServerURL, "server", "", "server URL (default: start one in-process on 127.0.0.1)")
	f.IntSliceVar(&cfg.ServerPIDs, "server-pid", nil, "process id of --server (and of each --replica) on this host: report the servers' own CPU per heartbeat")
	f.StringArrayVar(&cfg.Replicas, "replica", nil, "URL of a further replica sharing --server's database; heartbeats are spread over all servers (repeatable)")
	f.StringVar(&cfg.Token, "token", "", "Owner API token for --server")
	f.StringVar(&caFile, "ca-file", "", "CA certificate of --server")
	f.IntVar(&cfg.Machines, "machines", 1000, "simulated machines")
	f.IntVar(&cfg.Workers, "workers", 64, "requests in flight")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured duration")
	f.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured warm-up")
	f.BoolVar(&cfg.HTTP2, "http2", false, "use HTTP/2 (default HTTP/1.1 keep-alive connections)")
	f.BoolVar(&cfg.Reconnect, "reconnect", false, "open a new TLS connection for every heartbeat, as real agents do (default: keep-alive connections)")
	f.BoolVar(&cfg.Resume, "resume", false, "with --reconnect, each machine resumes its TLS session from its last connection's ticket, as the agent does")
	f.BoolVar(&cfg.PreSign, "presign", false, "sign the machines' assertions before the measured window")
	f.StringVar(&database, "database", "", "an EMPTY PostgreSQL database (postgres:// URL) for the in-process server (default: SQLite in the temporary directory; $ARCSERVER_DATABASE is not read)")
	f.StringVar(&serverLog, "server-log", "", "write the in-process server's request log to this file (default: format it, then discard it)")
	return cmd
}
