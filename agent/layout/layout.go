// Package layout is the one place where arcagent's on-disk layout is
// written down: every well-known path, its owner, group and mode (README,
// "Layout") and the service identities. Atomic writes and file locks live in
// internal/atomicfile. All paths are taken relative to a root prefix so
// that tests and unprivileged development can use a temporary tree.
package layout

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Service users and groups.
const (
	UserRoot      = "root"
	GroupRoot     = "root"
	UserHIMDS     = "himds"
	GroupHIMDS    = "himds"
	UserArcProxy  = "arcproxy"
	GroupArcProxy = "arcproxy"
)

// Well-known absolute paths in production (root prefix "/").
const (
	BinDir         = "/opt/azcmagent/bin"
	Binary         = "/opt/azcmagent/bin/arcagent"
	StateDir       = "/var/opt/azcmagent"
	LocalConfig    = "/var/opt/azcmagent/localconfig.json"
	AgentConfig    = "/var/opt/azcmagent/agentconfig.json"
	CertsDir       = "/var/opt/azcmagent/certs"
	TokensDir      = "/var/opt/azcmagent/tokens"
	TrustDir       = "/var/opt/azcmagent/trust"
	LogDir         = "/var/opt/azcmagent/log"
	GuestConfigDir = "/var/lib/GuestConfig"
	ExtensionsDir  = "/var/lib/waagent"
	UnitDir        = "/etc/systemd/system"
)

// HIMDS state paths. They are not rows of the audited table: the machine
// key matches the "machine-key" glob, and the run directory is HIMDS's own.
const (
	// MachineKey is the machine private key (himds:himds 0600).
	MachineKey = CertsDir + "/machine.key"
	// ServerCA is the CA bundle of the control plane (himds:himds 0644).
	ServerCA = CertsDir + "/server-ca.crt"
	// RunDir holds HIMDS's runtime state (himds:himds 0750): the admin
	// socket and the status file. Group himds may reach both.
	RunDir = "/var/opt/azcmagent/run"
	// AdminSocket is HIMDS's unix-socket admin API (himds:himds 0660).
	AdminSocket = RunDir + "/himds.sock"
	// HIMDSStatus is the heartbeat status HIMDS records (himds:himds 0640):
	// status, lastHeartbeat (RFC 3339), lastError. The audit reads it.
	HIMDSStatus = RunDir + "/status.json"
)

// UpgradeDir holds the agent packages `arcagent upgrade` downloaded and
// verified, and the installed version's package kept to roll back to
// (root:root 0700).
const UpgradeDir = StateDir + "/upgrade"

// ProxyCredentials holds the upstream proxy's Basic credentials for the
// arc proxy, one line user:password (root:arcproxy 0640). It is a secret:
// never copy it into a log bundle.
const ProxyCredentials = StateDir + "/proxy-credentials"

// Extension manager paths (root:root 0700, under GuestConfigDir): extd's
// persisted state, its package downloads, and the handlers' log folders.
// Protected-settings certificates sit beside the extension trees as
// ExtensionsDir/<THUMBPRINT>.crt and .prv (root:root 0600).
const (
	ExtMgrDir        = GuestConfigDir + "/ext_mgr"
	ExtDownloadsDir  = ExtMgrDir + "/downloads"
	ExtensionLogsDir = GuestConfigDir + "/extension_logs"
	// ExtensionRecordsDir is the hidden directory of ExtensionsDir that
	// holds the install records (agent/extensions.RecordsDirName).
	ExtensionRecordsDir = ".arcagent"
)

// Guest configuration paths (root:root 0700, under GuestConfigDir): gcad's
// state and last reports, the configuration packages it downloaded (kept,
// verified again at each load) and the backups of the files it replaced.
const (
	GCAgentDir    = GuestConfigDir + "/gc_agent"
	GCPackagesDir = GCAgentDir + "/packages"
	GCReportsDir  = GCAgentDir + "/reports"
	GCBackupsDir  = GCAgentDir + "/backups"
)

// Kind says whether an entry is a directory, a regular file or a glob of
// files whose members share owner and mode.
type Kind string

// Entry kinds.
const (
	KindDir  Kind = "dir"
	KindFile Kind = "file"
	KindGlob Kind = "glob"
)

// Entry is one row of the layout table: a production path with the owner,
// group and mode it must have.
type Entry struct {
	// ID is a short stable name for the entry, used by rules and reports.
	ID    string      `json:"id"`
	Path  string      `json:"path"`
	Kind  Kind        `json:"kind"`
	Owner string      `json:"owner"`
	Group string      `json:"group"`
	Mode  fs.FileMode `json:"mode"`
	Holds string      `json:"holds"`
}

// Entries is the on-disk layout (README, "Layout") as data. The order is stable.
var entries = []Entry{
	{ID: "bin-dir", Path: BinDir, Kind: KindDir, Owner: UserRoot, Group: GroupRoot, Mode: 0o755, Holds: "the agent binary and its links"},
	{ID: "binary", Path: Binary, Kind: KindFile, Owner: UserRoot, Group: GroupRoot, Mode: 0o755, Holds: "the arcagent binary"},
	{ID: "state-dir", Path: StateDir, Kind: KindDir, Owner: UserRoot, Group: GroupRoot, Mode: 0o755, Holds: "agent state"},
	{ID: "localconfig", Path: LocalConfig, Kind: KindFile, Owner: UserRoot, Group: GroupHIMDS, Mode: 0o640, Holds: "local security controls"},
	{ID: "agentconfig", Path: AgentConfig, Kind: KindFile, Owner: UserRoot, Group: GroupHIMDS, Mode: 0o640, Holds: "registration: machine id, control plane URL, scope"},
	{ID: "proxy-credentials", Path: ProxyCredentials, Kind: KindFile, Owner: UserRoot, Group: GroupArcProxy, Mode: 0o640, Holds: "the upstream proxy's Basic credentials for the arc proxy"},
	{ID: "upgrade-dir", Path: UpgradeDir, Kind: KindDir, Owner: UserRoot, Group: GroupRoot, Mode: 0o700, Holds: "agent packages downloaded and verified by arcagent upgrade, and the previous version's to roll back to"},
	{ID: "certs-dir", Path: CertsDir, Kind: KindDir, Owner: UserHIMDS, Group: GroupHIMDS, Mode: 0o700, Holds: "machine private key, control plane CA"},
	{ID: "machine-key", Path: CertsDir + "/*.key", Kind: KindGlob, Owner: UserHIMDS, Group: GroupHIMDS, Mode: 0o600, Holds: "machine private key"},
	{ID: "tokens-dir", Path: TokensDir, Kind: KindDir, Owner: UserHIMDS, Group: GroupHIMDS, Mode: 0o710, Holds: "challenge secret files"},
	{ID: "token-key", Path: TokensDir + "/*.key", Kind: KindGlob, Owner: UserHIMDS, Group: GroupHIMDS, Mode: 0o640, Holds: "challenge secret file"},
	{ID: "trust-dir", Path: TrustDir, Kind: KindDir, Owner: UserRoot, Group: GroupRoot, Mode: 0o755, Holds: "trusted publisher keys and catalog state"},
	{ID: "trust-file", Path: TrustDir + "/*", Kind: KindGlob, Owner: UserRoot, Group: GroupRoot, Mode: 0o644, Holds: "trusted key or catalog state"},
	{ID: "log-dir", Path: LogDir, Kind: KindDir, Owner: UserHIMDS, Group: GroupHIMDS, Mode: 0o750, Holds: "service logs"},
	{ID: "guestconfig-dir", Path: GuestConfigDir, Kind: KindDir, Owner: UserRoot, Group: GroupRoot, Mode: 0o700, Holds: "assignments, downloads, guest configuration and extension manager logs"},
	{ID: "extmgr-dir", Path: ExtMgrDir, Kind: KindDir, Owner: UserRoot, Group: GroupRoot, Mode: 0o700, Holds: "the extension manager's persisted state"},
	{ID: "ext-downloads-dir", Path: ExtDownloadsDir, Kind: KindDir, Owner: UserRoot, Group: GroupRoot, Mode: 0o700, Holds: "extension packages being downloaded and verified"},
	{ID: "gcagent-dir", Path: GCAgentDir, Kind: KindDir, Owner: UserRoot, Group: GroupRoot, Mode: 0o700, Holds: "guest configuration's state (gcad)"},
	{ID: "gc-packages-dir", Path: GCPackagesDir, Kind: KindDir, Owner: UserRoot, Group: GroupRoot, Mode: 0o700, Holds: "downloaded configuration packages and their signatures"},
	{ID: "gc-reports-dir", Path: GCReportsDir, Kind: KindDir, Owner: UserRoot, Group: GroupRoot, Mode: 0o700, Holds: "the last compliance report of each assignment"},
	{ID: "gc-backups-dir", Path: GCBackupsDir, Kind: KindDir, Owner: UserRoot, Group: GroupRoot, Mode: 0o700, Holds: "previous versions of the files guest configuration replaced"},
	{ID: "extension-logs-dir", Path: ExtensionLogsDir, Kind: KindDir, Owner: UserRoot, Group: GroupRoot, Mode: 0o700, Holds: "the extension handlers' log folders"},
	// A path a more specific row names (the records directory, the
	// settings certificates) is judged by that row, not by extension-dir.
	{ID: "extension-records", Path: ExtensionsDir + "/" + ExtensionRecordsDir, Kind: KindDir, Owner: UserRoot, Group: GroupRoot, Mode: 0o700, Holds: "install records of the extensions (agent/extensions)"},
	{ID: "ext-settings-cert", Path: ExtensionsDir + "/*.crt", Kind: KindGlob, Owner: UserRoot, Group: GroupRoot, Mode: 0o600, Holds: "a protected-settings certificate (<THUMBPRINT>.crt)"},
	{ID: "ext-settings-key", Path: ExtensionsDir + "/*.prv", Kind: KindGlob, Owner: UserRoot, Group: GroupRoot, Mode: 0o600, Holds: "a protected-settings private key (<THUMBPRINT>.prv)"},
	{ID: "extension-dir", Path: ExtensionsDir + "/*", Kind: KindGlob, Owner: UserRoot, Group: GroupRoot, Mode: 0o700, Holds: "an installed extension"},
	{ID: "unit-himdsd", Path: UnitDir + "/himdsd.service", Kind: KindFile, Owner: UserRoot, Group: GroupRoot, Mode: 0o644, Holds: "HIMDS systemd unit"},
	{ID: "unit-extd", Path: UnitDir + "/extd.service", Kind: KindFile, Owner: UserRoot, Group: GroupRoot, Mode: 0o644, Holds: "extension manager systemd unit"},
	{ID: "unit-gcad", Path: UnitDir + "/gcad.service", Kind: KindFile, Owner: UserRoot, Group: GroupRoot, Mode: 0o644, Holds: "guest configuration systemd unit"},
	{ID: "unit-arcproxyd", Path: UnitDir + "/arcproxyd.service", Kind: KindFile, Owner: UserRoot, Group: GroupRoot, Mode: 0o644, Holds: "arc proxy systemd unit"},
	{ID: "unit-upgrade", Path: UnitDir + "/arcagent-upgrade.service", Kind: KindFile, Owner: UserRoot, Group: GroupRoot, Mode: 0o644, Holds: "automatic upgrade systemd unit (arcagent upgrade --auto)"},
	{ID: "unit-upgrade-timer", Path: UnitDir + "/arcagent-upgrade.timer", Kind: KindFile, Owner: UserRoot, Group: GroupRoot, Mode: 0o644, Holds: "daily timer of the automatic upgrade"},
}

// Entries returns a copy of the layout table.
func Entries() []Entry {
	out := make([]Entry, len(entries))
	copy(out, entries)
	return out
}

// Service describes one of the four agent services.
type Service struct {
	Name  string `json:"name"`  // systemd unit name without ".service"
	User  string `json:"user"`  // the user it must run as
	Port  int    `json:"port"`  // loopback port it listens on, 0 if none
	Holds string `json:"holds"` // what it does
}

// Services returns the four agent services and their identities.
func Services() []Service {
	return []Service{
		{Name: "himdsd", User: UserHIMDS, Port: 40342, Holds: "metadata and identity (HIMDS)"},
		{Name: "extd", User: UserRoot, Holds: "extension manager"},
		{Name: "gcad", User: UserRoot, Holds: "guest configuration"},
		{Name: "arcproxyd", User: UserArcProxy, Port: 40343, Holds: "arc proxy"},
	}
}

// Layout resolves production paths under a root prefix.
type Layout struct {
	root string
	// win is set for the Windows layout (see windows.go).
	win *WindowsEnv
}

// New returns a Layout rooted at root. An empty root means "/". On
// Windows it is the Windows layout (NewWindows with WindowsEnvFromOS).
func New(root string) Layout {
	if runtime.GOOS == "windows" {
		return NewWindows(root, WindowsEnvFromOS())
	}
	return newLinux(root)
}

func newLinux(root string) Layout {
	if root == "" {
		root = "/"
	}
	return Layout{root: filepath.Clean(root)}
}

// Root is the root prefix.
func (l Layout) Root() string { return l.root }

// IsSystemRoot reports whether the layout is the live system ("/").
func (l Layout) IsSystemRoot() bool { return l.root == "/" }

// Path maps a production absolute path to its location under the root.
func (l Layout) Path(prod string) string {
	if l.win != nil {
		return l.windowsPath(prod)
	}
	if l.root == "/" {
		return filepath.Clean(prod)
	}
	return filepath.Join(l.root, prod)
}

// Prod is the inverse of Path: the production path of a path under the
// root (e.g. "<root>/var/opt/azcmagent/x" -> "/var/opt/azcmagent/x").
func (l Layout) Prod(p string) string {
	if l.root == "/" {
		return filepath.Clean(p)
	}
	return "/" + strings.TrimPrefix(filepath.ToSlash(strings.TrimPrefix(filepath.Clean(p), l.root)), "/")
}

// Rel returns the production path without its leading slash, the stable
// relative form used in reports (e.g. "var/opt/azcmagent/localconfig.json").
func Rel(prod string) string {
	return strings.TrimPrefix(filepath.ToSlash(filepath.Clean(prod)), "/")
}

// Convenience accessors for the paths used most.
func (l Layout) LocalConfig() string      { return l.Path(LocalConfig) }
func (l Layout) AgentConfig() string      { return l.Path(AgentConfig) }
func (l Layout) StateDir() string         { return l.Path(StateDir) }
func (l Layout) CertsDir() string         { return l.Path(CertsDir) }
func (l Layout) TokensDir() string        { return l.Path(TokensDir) }
func (l Layout) TrustDir() string         { return l.Path(TrustDir) }
func (l Layout) LogDir() string           { return l.Path(LogDir) }
func (l Layout) GuestConfigDir() string   { return l.Path(GuestConfigDir) }
func (l Layout) ExtensionsDir() string    { return l.Path(ExtensionsDir) }
func (l Layout) UnitDir() string          { return l.Path(UnitDir) }
func (l Layout) ExtMgrDir() string        { return l.Path(ExtMgrDir) }
func (l Layout) ExtDownloadsDir() string  { return l.Path(ExtDownloadsDir) }
func (l Layout) ExtensionLogsDir() string { return l.Path(ExtensionLogsDir) }
func (l Layout) GCAgentDir() string       { return l.Path(GCAgentDir) }
func (l Layout) GCPackagesDir() string    { return l.Path(GCPackagesDir) }
func (l Layout) GCReportsDir() string     { return l.Path(GCReportsDir) }
func (l Layout) GCBackupsDir() string     { return l.Path(GCBackupsDir) }
func (l Layout) MachineKey() string       { return l.Path(MachineKey) }
func (l Layout) ServerCA() string         { return l.Path(ServerCA) }
func (l Layout) RunDir() string           { return l.Path(RunDir) }
func (l Layout) AdminSocket() string      { return l.Path(AdminSocket) }
func (l Layout) HIMDSStatus() string      { return l.Path(HIMDSStatus) }
func (l Layout) ProxyCredentials() string { return l.Path(ProxyCredentials) }

// Lookup returns the entry with the given ID.
func Lookup(id string) (Entry, bool) {
	for _, e := range entries {
		if e.ID == id {
			return e, true
		}
	}
	return Entry{}, false
}

// EnsureDir creates a layout directory (and its parents) if missing, with
// the mode of its layout entry. Ownership is applied by the caller (see
// Chown) because only root can change it.
func (l Layout) EnsureDir(prod string) (string, error) {
	p := l.Path(prod)
	mode := fs.FileMode(0o755)
	for _, e := range entries {
		if e.Path == prod && e.Kind == KindDir {
			mode = e.Mode
		}
	}
	if err := os.MkdirAll(p, mode); err != nil {
		return p, fmt.Errorf("create directory %s: %w", p, err)
	}
	return p, nil
}
