// Package config holds arcagent's local security controls: the property
// registry (README, "Local security controls"), value parsing and validation, localconfig.json
// load/store (locked, atomic) and the effective-value logic (monitor mode).
// Local controls override anything the control plane asks for.
package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/suggest"
)

// Type is the kind of value a property holds.
type Type string

// Property types.
const (
	TypeBool          Type = "bool"
	TypeInt           Type = "int"
	TypeEnum          Type = "enum"
	TypeURL           Type = "url"
	TypePortList      Type = "list of ports"
	TypeExtensionList Type = "list of Publisher/Type"
	TypeEnumList      Type = "list"
	TypeEndpointList  Type = "list of host[:port]"
)

// IsList reports whether values of t are lists.
func (t Type) IsList() bool {
	return t == TypePortList || t == TypeExtensionList || t == TypeEnumList || t == TypeEndpointList
}

// Property names.
const (
	IncomingEnabled   = "incomingconnections.enabled"
	IncomingPorts     = "incomingconnections.ports"
	ConnectionType    = "connection.type"
	ProxyURL          = "proxy.url"
	ProxyBypass       = "proxy.bypass"
	ProxyAllowed      = "proxy.allowed"
	ExtAllowlist      = "extensions.allowlist"
	ExtBlocklist      = "extensions.blocklist"
	ExtEnabled        = "extensions.enabled"
	GCEnabled         = "guestconfiguration.enabled"
	GCCPULimit        = "guestconfiguration.agent.cpulimit"
	ExtCPULimit       = "extensions.agent.cpulimit"
	ConfigMode        = "config.mode"
	AutoUpgradeEnable = "automaticupgrade.enabled"
	// AuditUploadEnabled and AuditUploadInterval drive extd's periodic
	// audit upload; the interval is in minutes.
	AuditUploadEnabled  = "audit.upload.enabled"
	AuditUploadInterval = "audit.upload.interval"
)

// AllowNone is the allowlist entry that means "nothing may install".
const AllowNone = "Allow/None"

// Mode values of config.mode.
const (
	ModeFull    = "full"
	ModeMonitor = "monitor"
)

// Property describes one local security control.
type Property struct {
	Name    string   `json:"name"`
	Type    Type     `json:"type"`
	Default any      `json:"default"`
	Allowed []string `json:"allowed,omitempty"` // enum and enum-list values
	Min     int      `json:"min,omitempty"`     // int range
	Max     int      `json:"max,omitempty"`
	Help    string   `json:"help"`
}

// AllowedText describes the values p accepts, for help and error messages.
func (p Property) AllowedText() string {
	switch p.Type {
	case TypeBool:
		return "true, false"
	case TypeInt:
		return fmt.Sprintf("an integer from %d to %d", p.Min, p.Max)
	case TypeEnum:
		return strings.Join(p.Allowed, ", ")
	case TypeURL:
		return "http://host:port or https://host:port, or empty to unset"
	case TypePortList:
		return "comma-separated port numbers from 1 to 65535"
	case TypeExtensionList:
		if p.Name == ExtAllowlist {
			return "comma-separated Publisher/Type names, or Allow/None to allow nothing"
		}
		return "comma-separated Publisher/Type names"
	case TypeEnumList:
		return "comma-separated values from: " + strings.Join(p.Allowed, ", ")
	case TypeEndpointList:
		return "comma-separated host[:port] (port 443 when left out), *.domain for every name under a domain, [IPv6]:port"
	}
	return ""
}

// DefaultText renders p's default for display.
func (p Property) DefaultText() string { return FormatValue(p.Default) }

var properties = []Property{
	{Name: IncomingEnabled, Type: TypeBool, Default: true,
		Help: "Allow remote-access sessions (SSH/RDP over the control plane). false refuses every remote-access session, whatever the control plane says."},
	{Name: IncomingPorts, Type: TypePortList, Default: []string{},
		Help: "Local ports that remote access may reach. Empty means none beyond the defaults of the remote-access feature."},
	{Name: ConnectionType, Type: TypeEnum, Default: "default", Allowed: []string{"default", "direct", "gateway"},
		Help: "How the agent reaches the control plane: default (proxy if configured), direct, or through a gateway."},
	{Name: ProxyURL, Type: TypeURL, Default: "",
		Help: "http(s)://host:port of an enterprise proxy for agent and extension traffic; setting it turns the arc proxy (arcproxyd) on. Wins over HTTPS_PROXY. Do not put credentials in it (the file is readable by group himds, and a URL with credentials is refused): write user:password to /var/opt/azcmagent/proxy-credentials (root:arcproxy 0640)."},
	{Name: ProxyBypass, Type: TypeEnumList, Default: []string{}, Allowed: []string{"AAD", "ARM", "Arc", "AMA", "ArcData"},
		Help: "Endpoint classes whose traffic skips the proxy."},
	{Name: ProxyAllowed, Type: TypeEndpointList, Default: []string{},
		Help: "Extra destinations the arc proxy (arcproxyd) may connect to, as host[:port]: extension and package endpoints outside the control plane. The control plane's own host is always allowed; anything else is refused with 403."},
	{Name: ExtAllowlist, Type: TypeExtensionList, Default: []string{},
		Help: "Extensions that may be installed or updated, as Publisher/Type. Empty allows all; Allow/None allows nothing. Changing the list never removes installed extensions."},
	{Name: ExtBlocklist, Type: TypeExtensionList, Default: []string{},
		Help: "Extensions that may not be installed or updated, as Publisher/Type. A name on both lists is blocked."},
	{Name: ExtEnabled, Type: TypeBool, Default: true,
		Help: "Run the extension manager. false stops it; installed extensions stay on disk."},
	{Name: GCEnabled, Type: TypeBool, Default: true,
		Help: "Run guest configuration (policy audit and enforcement). false stops it."},
	{Name: GCCPULimit, Type: TypeInt, Default: 5, Min: 1, Max: 100,
		Help: "CPU percent the guest configuration service may use."},
	{Name: ExtCPULimit, Type: TypeInt, Default: 5, Min: 1, Max: 100,
		Help: "CPU percent the extension manager may use."},
	{Name: ConfigMode, Type: TypeEnum, Default: ModeFull, Allowed: []string{ModeFull, ModeMonitor},
		Help: "full: every feature as configured. monitor: only the built-in monitoring extensions may install, remote access and guest configuration are off, and the extension lists are locked (but kept for a return to full)."},
	{Name: AutoUpgradeEnable, Type: TypeBool, Default: false,
		Help: "Let the agent upgrade itself from a signed release catalog."},
	{Name: AuditUploadEnabled, Type: TypeBool, Default: false,
		Help: "Let the extension manager (extd) audit this machine every audit.upload.interval minutes and upload the JSON report to the control plane (as `arcagent audit --upload` does)."},
	{Name: AuditUploadInterval, Type: TypeInt, Default: 1440, Min: 15, Max: 10080,
		Help: "Minutes between periodic audit uploads (15 to 10080, a week); 1440 is a day."},
}

// MonitorAllowlist is the built-in allowlist that monitor mode enforces.
var MonitorAllowlist = []string{
	"Microsoft.Azure.Monitor/AzureMonitorLinuxAgent",
	"Microsoft.Azure.Monitor/AzureMonitorWindowsAgent",
	"Microsoft.Azure.Monitoring.DependencyAgent/DependencyAgentLinux",
	"Microsoft.Azure.Monitoring.DependencyAgent/DependencyAgentWindows",
	"Microsoft.Azure.AzureDefenderForServers/MDE.Linux",
	"Microsoft.Azure.AzureDefenderForServers/MDE.Windows",
	"Microsoft.Azure.ChangeTrackingAndInventory/ChangeTracking-Linux",
	"Microsoft.Azure.ChangeTrackingAndInventory/ChangeTracking-Windows",
}

// Properties returns the registry, sorted by name.
func Properties() []Property {
	out := make([]Property, len(properties))
	copy(out, properties)
	slices.SortFunc(out, func(a, b Property) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Lookup finds a property by name, case-insensitively.
func Lookup(name string) (Property, bool) {
	for _, p := range properties {
		if strings.EqualFold(p.Name, strings.TrimSpace(name)) {
			return p, true
		}
	}
	return Property{}, false
}

// Names returns every property name, sorted.
func Names() []string {
	var out []string
	for _, p := range Properties() {
		out = append(out, p.Name)
	}
	return out
}

// Find is Lookup with the error the CLI shows for an unknown name.
func Find(name string) (Property, error) {
	if p, ok := Lookup(name); ok {
		return p, nil
	}
	if c, ok := suggest.Closest(strings.TrimSpace(name), Names()); ok {
		return Property{}, errcode.New(errcode.UnknownProperty, "unknown property %q: did you mean %s? (known: %s)", name, c, strings.Join(Names(), ", "))
	}
	return Property{}, errcode.New(errcode.UnknownProperty, "unknown property %q (known: %s)", name, strings.Join(Names(), ", "))
}
