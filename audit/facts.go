// Package audit is arcagent's audit engine. Data flows one way: collectors
// read a target (the live host, a root prefix, or a planned
// localconfig.json) into one typed Facts document; compiled rules (package
// rules) evaluate it; waivers and a baseline are applied; the result is a
// reports.Report for the writers.
package audit

import (
	"time"

	"github.com/arcagent/arcagent/releases"
)

// Facts is everything the collectors learned about a target. It is
// serialised to JSON and evaluated by CEL rules as the variable `facts`, so
// the JSON names are the names rule authors use. Each section says whether
// it could be read (`available`) and, if not, why (`reason`), so that a rule
// yields not_applicable or error with that reason, never a false fail.
type Facts struct {
	Target     TargetFacts     `json:"target"`
	Options    OptionsFacts    `json:"options"`
	Host       HostFacts       `json:"host"`
	Agent      AgentFacts      `json:"agent"`
	Config     ConfigFacts     `json:"config"`
	Services   ServicesFacts   `json:"services"`
	Files      FilesFacts      `json:"files"`
	Extensions ExtensionsFacts `json:"extensions"`
	Secrets    SecretsFacts    `json:"secrets"`
	Releases   ReleasesFacts   `json:"releases"`
	Cloud      CloudFacts      `json:"cloud"`
	HostConfig HostConfigFacts `json:"host_config"`
	// Errors are the things collectors could not read.
	Errors []CollectorError `json:"errors"`
}

// Section is embedded in every section of Facts.
type Section struct {
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	// Error is set when the section is unavailable because something
	// could not be read (as opposed to not existing on this target): rules
	// that need it yield error, not not_applicable, so CI fails closed.
	Error bool `json:"error,omitempty"`
}

// CollectorError records what a collector could not read and why.
type CollectorError struct {
	Collector string `json:"collector"`
	Path      string `json:"path,omitempty"`
	Error     string `json:"error"`
}

// TargetFacts says what is being audited.
type TargetFacts struct {
	Kind    string `json:"kind"` // host, root, planned
	Root    string `json:"root"`
	Planned string `json:"planned,omitempty"`
	Live    bool   `json:"live"` // the running system: /proc is this target's
	// OS is "windows" for a Windows target (the live Windows machine, or a
	// planned file audited there); empty for Linux.
	OS string `json:"os,omitempty"`
	// DefaultInstall is true when no agent is installed and the default
	// configuration is evaluated as the planned one.
	DefaultInstall bool `json:"default_install"`
	// IDs are the tree's own numeric ids of the accounts the layout names
	// ("user:himds" -> "999", "group:himds" -> "995"), read from its
	// /etc/passwd and /etc/group, for --root targets only: a chown in a fix
	// for an image must use the image's ids, which this host's names may
	// not map to.
	IDs map[string]string `json:"ids,omitempty"`
}

// OptionsFacts are the audit's own options that rules may read.
type OptionsFacts struct {
	// Strict judges extension trees that this agent did not install
	// (no install record) by the signature and tamper rules too, as
	// critical failures, instead of only as "not installed by this agent".
	Strict bool `json:"strict"`
}

// HostFacts describes the machine.
type HostFacts struct {
	Section
	Name      string `json:"name"`
	MachineID string `json:"machine_id"`
	OS        string `json:"os"`
	Kernel    string `json:"kernel,omitempty"`
	// HimdsMembers are the users who may obtain identity tokens: members of
	// group himds, by membership or primary group.
	HimdsMembers []string `json:"himds_members"`
	HimdsGroup   bool     `json:"himds_group_exists"`
}

// AgentFacts describes the installed agent and its registration.
type AgentFacts struct {
	Section
	Installed  bool   `json:"installed"`
	Version    string `json:"version"`
	Binary     string `json:"binary"`
	Connected  bool   `json:"connected"`
	MachineID  string `json:"machine_id,omitempty"`
	ResourceID string `json:"resource_id,omitempty"`
	Server     string `json:"server,omitempty"`
	Status     string `json:"status,omitempty"`
	// LastHeartbeat is when HIMDS last reached the control plane;
	// HeartbeatAgeMinutes is -1 when unknown.
	LastHeartbeat       *time.Time `json:"last_heartbeat,omitempty"`
	HeartbeatAgeMinutes int        `json:"heartbeat_age_minutes"`
}

// ConfigFacts holds the local security controls, configured and effective.
type ConfigFacts struct {
	Section
	// Source: file (localconfig.json), default (no file: every property at
	// its default), planned (--config FILE).
	Source string `json:"source"`
	Path   string `json:"path"` // production path, relative (for locations)
	// Set lists the properties the file sets; Values holds every property,
	// configured or default; Effective applies monitor mode.
	Set       []string       `json:"set"`
	Values    map[string]any `json:"values"`
	Effective map[string]any `json:"effective"`
	// Lines maps each key of the file to its 1-based line: properties by
	// their name, unknown keys as written (for the warning naming them).
	Lines map[string]int `json:"lines"`
	Mode  string         `json:"mode"`
	// ProxyHasCredentials is true when proxy.url carries a user or password.
	ProxyHasCredentials bool `json:"proxy_has_credentials"`
	// ScriptExtensionsAllowed lists script-capable extensions (CustomScript,
	// RunCommand kinds) that the effective lists would let install.
	ScriptExtensionsAllowed []string `json:"script_extensions_allowed"`
	UnknownKeys             []string `json:"unknown_keys"`
}

// ServicesFacts describes the agent's services: unit files and, on the live
// host, running processes and listening sockets.
type ServicesFacts struct {
	Section
	Units map[string]UnitFacts `json:"units"`
	// ProcAvailable is false when the process table is not this target's.
	ProcAvailable bool                   `json:"proc_available"`
	ProcReason    string                 `json:"proc_reason,omitempty"`
	Processes     map[string][]Process   `json:"processes"`
	Listeners     map[string][]Listener  `json:"listeners"`
	Expected      map[string]ServiceSpec `json:"expected"`
	// ProxyOn is true when localconfig.json turns the arc proxy on
	// (connection.type gateway, or proxy.url set).
	ProxyOn bool `json:"proxy_on"`
	// ProxyProbes are the answers of the arc proxy's loopback listeners to
	// a CONNECT for a destination no allowlist holds (live host only).
	ProxyProbes []ProxyProbe `json:"proxy_probes"`
}

// ProxyProbe is one probe of the arc proxy's egress allowlist.
type ProxyProbe struct {
	Address     string `json:"address"`     // loopback IP:port probed
	Destination string `json:"destination"` // what the probe asked for
	Status      int    `json:"status"`      // the proxy's HTTP status
	Answer      string `json:"answer,omitempty"`
	Refused     bool   `json:"refused"` // 403: the allowlist refused it
	Error       string `json:"error,omitempty"`
}

// ServiceSpec is what the layout requires of a service.
type ServiceSpec struct {
	User string `json:"user"`
	Port int    `json:"port"`
}

// UnitFacts is one systemd unit file.
type UnitFacts struct {
	Present   bool   `json:"present"`
	Path      string `json:"path,omitempty"`
	User      string `json:"user"` // "" means root
	Group     string `json:"group,omitempty"`
	ExecStart string `json:"exec_start,omitempty"`
}

// Process is one running daemon.
type Process struct {
	PID     int    `json:"pid"`
	UID     int    `json:"uid"`
	User    string `json:"user"`
	Cmdline string `json:"cmdline"`
}

// Listener is one listening TCP socket.
type Listener struct {
	Address  string `json:"address"`
	Port     int    `json:"port"`
	Loopback bool   `json:"loopback"`
	UID      int    `json:"uid"`
}

// FilesFacts holds the owner, group and mode of every layout path.
type FilesFacts struct {
	Section
	Entries []FileFact `json:"entries"`
}

// FileFact is one path of the layout as found on the target.
type FileFact struct {
	ID     string `json:"id"`    // layout entry id
	Class  string `json:"class"` // tokens, certs, config, binary, trust, extensions, units, state, logs, guestconfig
	Path   string `json:"path"`  // production path, relative
	Exists bool   `json:"exists"`
	Kind   string `json:"kind,omitempty"` // dir, file, symlink, other
	Owner  string `json:"owner,omitempty"`
	Group  string `json:"group,omitempty"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	Mode   string `json:"mode,omitempty"` // octal, e.g. "0640"
	// ExtraBits are permission bits present beyond the wanted mode, octal
	// ("0" when none): a tighter mode is fine, a looser one is not.
	ExtraBits string `json:"extra_bits"`
	WantKind  string `json:"want_kind"`
	WantOwner string `json:"want_owner"`
	WantGroup string `json:"want_group"`
	WantMode  string `json:"want_mode"`
	Error     string `json:"error,omitempty"`
}

// ExtensionsFacts lists installed extensions.
type ExtensionsFacts struct {
	Section
	Installed []ExtensionFact `json:"installed"`
}

// ExtensionFact is one installed extension and the verdicts about it.
type ExtensionFact struct {
	Name          string `json:"name"` // Publisher/Type
	Publisher     string `json:"publisher"`
	Type          string `json:"type"`
	Version       string `json:"version"`
	Path          string `json:"path"` // production path, relative
	ScriptCapable bool   `json:"script_capable"`
	// Managed is true when the tree has an install record (it was installed
	// through agent/extensions.Install: by `package install` or the
	// extension manager), even one that turns out corrupt: a corrupt
	// record is a signature and tamper failure, not an unmanaged tree.
	// ManagedReason says which.
	Managed       bool           `json:"managed"`
	ManagedReason string         `json:"managed_reason"`
	Manifest      ManifestFact   `json:"manifest"`
	Signature     SignatureFact  `json:"signature"`
	Tamper        TamperFact     `json:"tamper"`
	Policy        PolicyDecision `json:"policy"`
	// Error is set when the install record could not be read (not
	// corrupt: unreadable, e.g. permission denied): every rule on this
	// extension is then an error result, never a pass or fail.
	Error string `json:"error,omitempty"`
}

// ManifestFact is the HandlerManifest.json verdict.
type ManifestFact struct {
	Present bool   `json:"present"`
	Valid   bool   `json:"valid"`
	Error   string `json:"error,omitempty"`
}

// SignatureFact is the signature verdict of an installed extension.
type SignatureFact struct {
	Present  bool   `json:"present"`  // an install record with an envelope exists
	Verified bool   `json:"verified"` // signed by a trusted key allowed for the publisher
	Signer   string `json:"signer,omitempty"`
	Reason   string `json:"reason"`
}

// TamperFact is the result of comparing installed files with the install
// record.
type TamperFact struct {
	Checked bool     `json:"checked"`
	Clean   bool     `json:"clean"`
	Changed []string `json:"changed"`
	Reason  string   `json:"reason,omitempty"`
}

// PolicyDecision is the local allow/block lists' verdict.
type PolicyDecision struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

// SecretsFacts lists onboarding credentials found on disk.
type SecretsFacts struct {
	Section
	Found   []SecretFact `json:"found"`
	Scanned int          `json:"scanned"`
	Places  []string     `json:"places"`
	// Skipped are files the scan refused to read (over the scan limit,
	// or swapped for a link or a special file), at most 100 of them;
	// SkippedCount counts them all.
	Skipped      []SkippedFile `json:"skipped"`
	SkippedCount int           `json:"skipped_count"`
}

// SkippedFile is a file the secret scan did not read, and why.
type SkippedFile struct {
	Path   string `json:"path"` // production path, relative
	Reason string `json:"reason"`
}

// SecretFact is one credential left on disk. The secret itself is never
// recorded: only where it is and what kind it is.
type SecretFact struct {
	Path string `json:"path"` // production path, relative
	Line int    `json:"line"`
	Kind string `json:"kind"` // onboarding-token, service-principal-secret, access-token, connect-config
}

// ReleasesFacts holds version currency, filled when a release source is
// configured.
type ReleasesFacts struct {
	Section
	Agent      *Currency  `json:"agent,omitempty"`
	Extensions []Currency `json:"extensions"`
}

// Currency is the version currency verdict for one product, as package
// releases computes it (audit/releasefacts fills it).
type Currency = releases.Currency

// CloudFacts holds what the control plane says about the machine's scope,
// filled when the agent is connected and the control plane is reachable
// (audit/cloudfacts asks GET /v1/machines/{id}/cloudFacts as the machine).
type CloudFacts struct {
	Section
	// Server is the control plane that was asked.
	Server        string `json:"server,omitempty"`
	Subscription  string `json:"subscription,omitempty"`
	ResourceGroup string `json:"resource_group,omitempty"`
	// DedicatedSubscription: no other machine is in the subscription.
	DedicatedSubscription bool `json:"dedicated_subscription"`
	// OtherMachines counts the other machines of the subscription.
	OtherMachines int `json:"other_machines"`
	// StandingAdmins are the principals holding an administrative role
	// (AdminRoles) at any scope over the machine.
	StandingAdmins []string `json:"standing_admins"`
	AdminRoles     []string `json:"admin_roles,omitempty"`
	// InheritedAssignments are the assignments made at the tenant or the
	// subscription, as "principal: Role at the tenant|subscription"; those
	// made at the resource group or on the machine are not counted.
	InheritedAssignments []string `json:"inherited_assignments"`
	// Assignments are every role assignment that applies to the machine.
	Assignments []CloudAssignment `json:"assignments,omitempty"`
}

// CloudAssignment is one role assignment that applies to the machine;
// InheritedFrom is tenant, subscription, resourceGroup or machine (made on
// the machine itself).
type CloudAssignment struct {
	Principal     string `json:"principal"`
	Role          string `json:"role"`
	Scope         string `json:"scope"`
	InheritedFrom string `json:"inherited_from"`
}
