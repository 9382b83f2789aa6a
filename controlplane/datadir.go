package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

// Files in the data directory (mode 0700).
const (
	DBFile      = "arcserver.db"
	CACertFile  = "ca.crt"
	CAKeyFile   = "ca.key"
	TLSCertFile = "tls.crt"
	TLSKeyFile  = "tls.key"
)

// OwnerPrincipal is the principal of the first Owner token.
const OwnerPrincipal = "owner"

// InitOptions configures Init.
type InitOptions struct {
	DataDir string
	// Hosts are extra DNS names or IPs for the generated TLS certificate
	// (localhost, 127.0.0.1, ::1 and the host name are always included).
	Hosts []string
	// Database, if set, is the PostgreSQL database (a postgres:// URL) to
	// initialise instead of DIR/arcserver.db. It must hold no tenant.
	Database string
}

// InitResult is what Init created. OwnerToken is shown once and never
// stored in clear.
type InitResult struct {
	TenantID   string `json:"tenantId"`
	OwnerToken string `json:"ownerToken"`
	CACert     string `json:"caCert"`  // path
	TLSCert    string `json:"tlsCert"` // path
	DB         string `json:"database"`
}

// Init creates a data directory: the tenant, a CA and TLS certificate, the
// token-signing key and a first Owner API token.
func Init(ctx context.Context, o InitOptions) (InitResult, error) {
	dir := o.DataDir
	if dir == "" {
		return InitResult{}, errcode.New(apiv1.CodeDataDir, "--data DIR is required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return InitResult{}, errcode.Wrap(apiv1.CodeDataDir, err, "create data directory %s", dir)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return InitResult{}, errcode.Wrap(apiv1.CodeDataDir, err, "protect data directory %s", dir)
	}
	dbPath := filepath.Join(dir, DBFile)
	if _, err := os.Stat(dbPath); err == nil {
		return InitResult{}, errcode.New(apiv1.CodeDataDir, "%s is already initialised (%s exists); serve it, or choose an empty directory", dir, dbPath)
	}
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		return InitResult{}, errcode.New(apiv1.CodeDataDir, "%s is already initialised (%s exists); serve it, or choose an empty directory", dir, CAKeyFile)
	}
	var st *store.DB
	var err error
	if o.Database != "" {
		if st, err = OpenStoreAt(ctx, dir, o.Database); err != nil {
			return InitResult{}, err
		}
		dbPath = st.Name()
		if _, err := st.Tenant(ctx); err == nil {
			st.Close()
			return InitResult{}, errcode.New(CodeDatabaseInitted, "database %s already holds a tenant", dbPath)
		}
	} else if st, err = store.OpenSQLite(ctx, dbPath); err != nil {
		return InitResult{}, errcode.Wrap(apiv1.CodeStore, err, "create the database")
	}
	defer st.Close()
	now := time.Now().UTC()
	res := InitResult{TenantID: newUUID(), DB: dbPath, CACert: filepath.Join(dir, CACertFile), TLSCert: filepath.Join(dir, TLSCertFile)}

	caPEM, caKeyPEM, ca, caKey, err := generateCA(res.TenantID, now)
	if err != nil {
		return res, err
	}
	crtPEM, keyPEM, err := generateServerCert(ca, caKey, defaultHosts(o.Hosts), now)
	if err != nil {
		return res, err
	}
	// The protected-settings fingerprint key is made here too, so that a
	// copy of the directory taken right after init (for a replica) holds
	// the same key as the first server.
	fpKey := make([]byte, 32)
	if _, err := rand.Read(fpKey); err != nil {
		return res, fmt.Errorf("make the protected-settings key: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode fs.FileMode
	}{{CAKeyFile, caKeyPEM, 0o600}, {CACertFile, caPEM, 0o644}, {TLSKeyFile, keyPEM, 0o600}, {TLSCertFile, crtPEM, 0o644}, {SettingsKeyFile, fpKey, 0o600}} {
		if err := atomicfile.WriteFile(filepath.Join(dir, f.name), f.data, atomicfile.WriteOptions{Mode: f.mode}); err != nil {
			return res, errcode.Wrap(errcode.WriteFailed, err, "write %s", f.name)
		}
	}
	if err := st.CreateTenant(ctx, store.Tenant{ID: res.TenantID, CreatedAt: now}); err != nil {
		return res, errcode.Wrap(apiv1.CodeStore, err, "store the tenant")
	}
	if _, err := newSigningKey(ctx, st, now, 0); err != nil {
		return res, errcode.Wrap(apiv1.CodeStore, err, "create the token-signing key")
	}
	res.OwnerToken = newSecret(apiTokenPrefix)
	if err := st.CreateAPIToken(ctx, store.APIToken{ID: newUUID(), Principal: OwnerPrincipal, Hash: hashSecret(res.OwnerToken), Description: "created by arcserver init", CreatedAt: now}); err != nil {
		return res, errcode.Wrap(apiv1.CodeStore, err, "store the Owner token")
	}
	if err := st.CreateRoleAssignment(ctx, store.RoleAssignment{ID: newUUID(), Principal: OwnerPrincipal, Role: rbac.Owner, Scope: rbac.TenantScope, CreatedAt: now}); err != nil {
		return res, errcode.Wrap(apiv1.CodeStore, err, "assign the Owner role")
	}
	return res, nil
}

// CreateTokenOffline creates an API token directly in a data directory's
// database, for recovery when no Owner token is left. The server must not
// need to be stopped: the database is shared safely.
func CreateTokenOffline(ctx context.Context, dir, principal string, life time.Duration) (string, error) {
	return CreateTokenOfflineAt(ctx, dir, "", principal, life)
}

// CreateTokenOfflineAt is CreateTokenOffline on the database OpenStoreAt
// opens (PostgreSQL when database is set).
func CreateTokenOfflineAt(ctx context.Context, dir, database, principal string, life time.Duration) (string, error) {
	if err := checkPrincipal(principal); err != nil {
		return "", errcode.New(errcode.Usage, "%s", err.(*apiError).msg)
	}
	st, err := OpenStoreAt(ctx, dir, database)
	if err != nil {
		return "", err
	}
	defer st.Close()
	now := time.Now().UTC()
	secret := newSecret(apiTokenPrefix)
	t := store.APIToken{ID: newUUID(), Principal: principal, Hash: hashSecret(secret), Description: "created by arcserver tokens create", CreatedAt: now}
	if life > 0 {
		t.ExpiresAt = now.Add(life)
	}
	if err := st.CreateAPIToken(ctx, t); err != nil {
		return "", errcode.Wrap(apiv1.CodeStore, err, "store the token")
	}
	return secret, nil
}

// OpenStore opens the database of an initialised data directory.
func OpenStore(ctx context.Context, dir string) (*store.SQLite, error) {
	if dir == "" {
		return nil, errcode.New(apiv1.CodeDataDir, "--data DIR is required")
	}
	p := filepath.Join(dir, DBFile)
	if _, err := os.Stat(p); err != nil {
		return nil, errcode.Wrap(apiv1.CodeDataDir, err, "%s is not an initialised data directory", dir)
	}
	st, err := store.OpenSQLite(ctx, p)
	if err != nil {
		return nil, errcode.Wrap(apiv1.CodeStore, err, "open the database")
	}
	return st, nil
}

// ServeOptions configures Serve.
type ServeOptions struct {
	DataDir string
	Listen  string // host:port; default 127.0.0.1:8443
	TLSCert string // default DATA/tls.crt
	TLSKey  string // default DATA/tls.key
	Issuer  string // default https://LISTEN
	Logger  *slog.Logger
	// TokenLifetime of issued tokens (default one hour).
	TokenLifetime time.Duration
	// ShutdownTimeout bounds the graceful shutdown (default 20s).
	ShutdownTimeout time.Duration
	// Ready, if set, is called with the bound address once listening.
	Ready func(addr net.Addr)
	// AuditHistory is how many uploaded audit reports of one machine and
	// profile are kept (default DefaultAuditHistory).
	AuditHistory int
	// ReleaseCatalog is a signed release catalog (FILE or https://URL) the
	// dashboard classifies agent versions with; "" shows plain counts.
	// ReleaseCatalogName is the name its keys are trusted for (default
	// "releases"), ReleaseTrustDir the trust directory (default DATA/trust).
	ReleaseCatalog     string
	ReleaseCatalogName string
	ReleaseTrustDir    string
	// Replica serves the data directory's database beside other arcserver
	// processes (replicas): the data directory's lock is taken shared, and
	// the state replicas must agree on (assertion replay cache, machine
	// cache) is kept in the database. Without it Serve takes the lock
	// exclusive, refuses to start while another arcserver holds it either
	// way, and keeps that state in memory.
	Replica bool
	// Database, if set, is the PostgreSQL database (postgres:// URL) to
	// serve instead of DATA/arcserver.db; DATA still holds the TLS files
	// and the published packages.
	Database string
}

// LockFile is the data directory's lock (held by `arcserver serve`
// without --replica).
const LockFile = DBFile + ".lock"

// lockDataDir takes the data directory's lock, exclusive for a server
// alone on it and shared for a replica, failing within a second when
// another arcserver holds it in the other way (or exclusive).
func lockDataDir(ctx context.Context, dir string, replica bool) (*atomicfile.Lock, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	lock := atomicfile.LockFile
	if replica {
		lock = atomicfile.LockFileShared
	}
	l, err := lock(ctx, filepath.Join(dir, DBFile))
	if errors.Is(err, context.DeadlineExceeded) {
		if replica {
			return nil, errcode.Wrap(apiv1.CodeDataDirLocked, err, "an arcserver without --replica serves %s (it holds %s): stop it, then start every server with --replica", dir, filepath.Join(dir, LockFile))
		}
		return nil, errcode.Wrap(apiv1.CodeDataDirLocked, err, "another arcserver serves %s (it holds %s): stop it first, or run every process with --replica", dir, filepath.Join(dir, LockFile))
	}
	if err != nil {
		return nil, errcode.Wrap(apiv1.CodeDataDir, err, "lock the data directory %s", dir)
	}
	return l, nil
}

// Serve runs the HTTPS server until ctx is cancelled (SIGTERM in the
// command), then shuts down gracefully: no new connections, in-flight
// requests finish, queued heartbeats are written, the database is closed.
func Serve(ctx context.Context, o ServeOptions) error {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8443"
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errcode.New(apiv1.CodeTLSConfig, "--tls-cert and --tls-key must be given together")
	}
	if o.TLSCert == "" {
		o.TLSCert, o.TLSKey = filepath.Join(o.DataDir, TLSCertFile), filepath.Join(o.DataDir, TLSKeyFile)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 20 * time.Second
	}
	if o.DataDir == "" {
		return errcode.New(apiv1.CodeDataDir, "--data DIR is required")
	}
	st, err := OpenStoreAt(ctx, o.DataDir, o.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	l, err := lockDataDir(ctx, o.DataDir, o.Replica)
	if err != nil {
		return err
	}
	defer l.Unlock()
	if st.Postgres() {
		o.Logger.Info("arcserver database", "database", st.Name())
	}
	cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
	if err != nil {
		return errcode.Wrap(apiv1.CodeTLSConfig, err, "load the TLS certificate %s and key %s", o.TLSCert, o.TLSKey)
	}
	cfg := Config{Store: st, Issuer: o.Issuer, Logger: o.Logger, TokenLifetime: o.TokenLifetime, DataDir: o.DataDir, AuditHistory: o.AuditHistory,
		// A PostgreSQL database is there to be shared: every server over
		// it keeps the replica-shared state in it, --replica or not.
		Exclusive: !o.Replica && !st.Postgres()}
	if o.ReleaseCatalog != "" {
		if cfg.Releases, err = openReleaseCatalog(ctx, o, o.Logger); err != nil {
			return err
		}
	}
	srv, err := New(ctx, cfg)
	if err != nil {
		return errcode.Wrap(apiv1.CodeDataDir, err, "start the server")
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return errcode.Wrap(errcode.Usage, err, "listen on %s (is another arcserver running, or the port taken?)", o.Listen)
	}
	if o.Issuer == "" {
		srv.SetIssuer("https://" + ln.Addr().String())
		if ta, ok := ln.Addr().(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
			o.Logger.Warn("listening on all interfaces without --issuer: tokens name "+srv.Issuer()+" as issuer, which validators cannot reach; pass --issuer https://PUBLIC-NAME:PORT", "issuer", srv.Issuer())
		}
	}
	return RunHTTPS(ctx, srv, ln, cert, o.ShutdownTimeout, o.Logger, o.Ready)
}

// tls12CipherSuites are the TLS 1.2 suites the server offers: forward
// secret (ECDHE) and authenticated encryption (AES-GCM, ChaCha20-Poly1305)
// only, for ECDSA and RSA certificates. No CBC (padding oracles, Lucky13)
// and no static RSA key exchange. TLS 1.3 suites are all AEAD and are not
// configurable.
var tls12CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSConfig is the server's TLS configuration: TLS 1.2 or later, and in
// TLS 1.2 only ECDHE key exchange with AEAD ciphers.
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: tls12CipherSuites, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
}

// RunHTTPS serves srv over TLS on ln until ctx ends, then shuts down.
func RunHTTPS(ctx context.Context, srv *Server, ln net.Listener, cert tls.Certificate, grace time.Duration, log *slog.Logger, ready func(net.Addr)) error {
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	srv.Start(bg)
	tc := TLSConfig(cert)
	if err := srv.ShareSessionTickets(bg, tc); err != nil {
		srv.Close()
		return errcode.Wrap(apiv1.CodeStore, err, "start the server")
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(tls.NewListener(ln, hs.TLSConfig)) }()
	log.Info("arcserver listening", "addr", ln.Addr().String(), "issuer", srv.Issuer(), "tenant", srv.TenantID())
	if ready != nil {
		ready(ln.Addr())
	}
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
		log.Info("arcserver shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		if err := hs.Shutdown(sctx); err != nil {
			log.Warn("graceful shutdown timed out; closing connections", "err", err)
			hs.Close()
		}
		cancel()
		<-errc
	}
	srv.Close()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve HTTPS: %w", serveErr)
	}
	log.Info("arcserver stopped")
	return nil
}

// Backup writes a consistent copy of a data directory's database to path
// while the server may be running.
func Backup(ctx context.Context, dir, path string) error {
	if dir == "" {
		return errcode.New(apiv1.CodeDataDir, "--data DIR is required")
	}
	st, err := store.OpenSQLiteNoMigrate(ctx, filepath.Join(dir, DBFile))
	if err != nil {
		return errcode.Wrap(apiv1.CodeDataDir, err, "%s is not an initialised data directory", dir)
	}
	defer st.Close()
	if err := st.Backup(ctx, path); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errcode.Wrap(errcode.Usage, err, "back up to %s", path)
		}
		return errcode.Wrap(apiv1.CodeStore, err, "back up to %s", path)
	}
	return nil
}

// LoadCAPool reads a PEM CA bundle into a pool.
func LoadCAPool(path string) (*x509.CertPool, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read CA file %s: %w", path, err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, nil, fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return p, b, nil
}
