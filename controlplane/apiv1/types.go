package apiv1

import (
	"encoding/json"
	"time"
)

// Error is the body of every error response.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Tags are free-form key/value labels on subscriptions, resource groups and
// machines.
type Tags map[string]string

// Subscription is the top scope below the tenant.
type Subscription struct {
	ID          string    `json:"id"` // scope: /subscriptions/{subscriptionId}
	SubID       string    `json:"subscriptionId"`
	DisplayName string    `json:"displayName"`
	Tags        Tags      `json:"tags"`
	CreatedAt   time.Time `json:"createdAt"`
}

// CreateSubscriptionRequest is the body of POST /v1/subscriptions.
type CreateSubscriptionRequest struct {
	DisplayName string `json:"displayName"`
	Tags        Tags   `json:"tags,omitempty"`
}

// ResourceGroup groups machines inside a subscription.
type ResourceGroup struct {
	ID             string    `json:"id"` // scope: /subscriptions/{sub}/resourceGroups/{name}
	SubscriptionID string    `json:"subscriptionId"`
	Name           string    `json:"name"`
	Location       string    `json:"location"`
	Tags           Tags      `json:"tags"`
	CreatedAt      time.Time `json:"createdAt"`
}

// CreateResourceGroupRequest is the body of
// POST /v1/subscriptions/{sub}/resourceGroups.
type CreateResourceGroupRequest struct {
	Name     string `json:"name"`
	Location string `json:"location,omitempty"`
	Tags     Tags   `json:"tags,omitempty"`
}

// RoleDefinition is a built-in role and the permissions it grants.
type RoleDefinition struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Actions     []string `json:"actions"`
}

// RoleAssignment grants a role to a principal at a scope and below.
type RoleAssignment struct {
	ID        string    `json:"id"`
	Principal string    `json:"principal"`
	Role      string    `json:"role"`
	Scope     string    `json:"scope"`
	CreatedAt time.Time `json:"createdAt"`
}

// CreateRoleAssignmentRequest is the body of POST /v1/roleAssignments.
type CreateRoleAssignmentRequest struct {
	Principal string `json:"principal"`
	Role      string `json:"role"`
	Scope     string `json:"scope"`
}

// CreateAPITokenRequest is the body of POST /v1/apiTokens.
type CreateAPITokenRequest struct {
	Principal   string `json:"principal"`
	ExpiresIn   string `json:"expiresIn,omitempty"` // Go duration, e.g. "720h"; empty: 90 days
	Description string `json:"description,omitempty"`
}

// APIToken describes an operator token. Token is set only in the response
// that created it; the server keeps only its hash.
type APIToken struct {
	ID          string     `json:"id"`
	Principal   string     `json:"principal"`
	Description string     `json:"description,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
	Token       string     `json:"token,omitempty"`
}

// Whoami answers GET /v1/whoami.
type Whoami struct {
	Principal   string           `json:"principal"`
	TenantID    string           `json:"tenantId"`
	Assignments []RoleAssignment `json:"roleAssignments"`
}

// CreateOnboardingRequest is the body of POST /v1/onboardingCredentials.
type CreateOnboardingRequest struct {
	SubscriptionID string `json:"subscriptionId"`
	ResourceGroup  string `json:"resourceGroup"`
	ExpiresIn      string `json:"expiresIn"` // Go duration, at most 30 days
	Uses           int    `json:"uses"`      // how many machines may register with it, 1..10000
	Description    string `json:"description,omitempty"`
}

// OnboardingCredential describes an onboarding credential. Secret is set
// only in the response that created it.
type OnboardingCredential struct {
	ID             string     `json:"id"`
	Scope          string     `json:"scope"`
	SubscriptionID string     `json:"subscriptionId"`
	ResourceGroup  string     `json:"resourceGroup"`
	Description    string     `json:"description,omitempty"`
	CreatedBy      string     `json:"createdBy"`
	CreatedAt      time.Time  `json:"createdAt"`
	ExpiresAt      time.Time  `json:"expiresAt"`
	UsesLeft       int        `json:"usesLeft"`
	UsesTotal      int        `json:"usesTotal"`
	RevokedAt      *time.Time `json:"revokedAt,omitempty"`
	State          string     `json:"state"` // Active, Expired, UsedUp, Revoked
	Secret         string     `json:"secret,omitempty"`
}

// Inventory is what a machine reports about itself at registration.
type Inventory struct {
	Hostname     string `json:"hostname"`
	OSType       string `json:"osType"` // linux, windows
	OSName       string `json:"osName,omitempty"`
	OSVersion    string `json:"osVersion,omitempty"`
	Kernel       string `json:"kernel,omitempty"`
	Arch         string `json:"arch,omitempty"`
	AgentVersion string `json:"agentVersion"`
	FQDN         string `json:"fqdn,omitempty"`
	CPUs         int    `json:"cpus,omitempty"`
	MemoryMB     int64  `json:"memoryMB,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Model        string `json:"model,omitempty"`
	VMID         string `json:"vmId,omitempty"` // hardware/SMBIOS UUID if known
}

// RegisterRequest is the body of POST /v1/machines/register. The onboarding
// credential travels in the Authorization header: "Bearer <secret>".
type RegisterRequest struct {
	Name      string    `json:"name,omitempty"` // default: inventory.hostname
	PublicKey string    `json:"publicKey"`      // PEM "PUBLIC KEY" (PKIX), ECDSA P-256
	Inventory Inventory `json:"inventory"`
	Tags      Tags      `json:"tags,omitempty"`
}

// Registration answers a successful registration.
type Registration struct {
	MachineID        string `json:"machineId"`
	ResourceID       string `json:"resourceId"`
	Name             string `json:"name"`
	SubscriptionID   string `json:"subscriptionId"`
	ResourceGroup    string `json:"resourceGroup"`
	TenantID         string `json:"tenantId"`
	Location         string `json:"location"`
	Audience         string `json:"audience"` // the aud every machine assertion must carry
	Issuer           string `json:"issuer"`
	HeartbeatSeconds int    `json:"heartbeatIntervalSeconds"`
}

// Machine statuses, computed from the last heartbeat.
const (
	StatusConnected    = "Connected"
	StatusDisconnected = "Disconnected"
	StatusExpired      = "Expired"
)

// Status thresholds (docs/himds.md), shared by the control plane and HIMDS.
const (
	DisconnectedAfter = 15 * time.Minute
	ExpiredAfter      = 45 * 24 * time.Hour
)

// StatusAt is a machine's status given its last heartbeat: Connected
// within DisconnectedAfter, Disconnected after that, Expired after
// ExpiredAfter.
func StatusAt(last, now time.Time) string {
	switch age := now.Sub(last); {
	case age >= ExpiredAfter:
		return StatusExpired
	case age >= DisconnectedAfter:
		return StatusDisconnected
	}
	return StatusConnected
}

// Machine is a connected machine as operators see it.
type Machine struct {
	ID              string         `json:"id"`
	ResourceID      string         `json:"resourceId"`
	Name            string         `json:"name"`
	SubscriptionID  string         `json:"subscriptionId"`
	ResourceGroup   string         `json:"resourceGroup"`
	Location        string         `json:"location"`
	TenantID        string         `json:"tenantId,omitempty"` // set when a machine reads itself
	Status          string         `json:"status"`
	LastHeartbeat   time.Time      `json:"lastHeartbeat"`
	AgentVersion    string         `json:"agentVersion"`
	Inventory       Inventory      `json:"inventory"`
	Tags            Tags           `json:"tags"`
	KeyThumbprint   string         `json:"keyThumbprint"`
	CreatedAt       time.Time      `json:"createdAt"`
	ReportedStatus  *MachineStatus `json:"reportedStatus,omitempty"`
	DesiredStateTag string         `json:"desiredStateETag,omitempty"`
}

// UpdateMachineRequest is the body of PATCH /v1/machines/{id}.
type UpdateMachineRequest struct {
	Tags Tags `json:"tags"`
}

// HeartbeatRequest is the (optional) body of POST /v1/machines/{id}/heartbeat.
type HeartbeatRequest struct {
	AgentVersion string `json:"agentVersion,omitempty"`
	AgentStatus  string `json:"agentStatus,omitempty"` // e.g. "Ready", "Degraded"
	// Inventory, when set, replaces the machine's stored inventory. The
	// agent sends it on its first heartbeat after start and whenever it
	// changed; a server that refuses it (an older one) is sent the
	// heartbeat again without it.
	Inventory *Inventory `json:"inventory,omitempty"`
}

// MachineInventory is one machine of GET /v1/inventory: what the machine
// last reported about itself (agent, OS) and the extensions of its last
// status report.
type MachineInventory struct {
	ID             string               `json:"id"`
	Name           string               `json:"name"`
	ResourceID     string               `json:"resourceId"`
	SubscriptionID string               `json:"subscriptionId"`
	ResourceGroup  string               `json:"resourceGroup"`
	Status         string               `json:"status"`
	LastHeartbeat  time.Time            `json:"lastHeartbeat"`
	AgentVersion   string               `json:"agentVersion"`
	OSType         string               `json:"osType"`
	OSName         string               `json:"osName,omitempty"`
	OSVersion      string               `json:"osVersion,omitempty"`
	Kernel         string               `json:"kernel,omitempty"`
	Arch           string               `json:"arch,omitempty"`
	Extensions     []InventoryExtension `json:"extensions"` // from the last status report
}

// InventoryExtension is one installed extension in a MachineInventory, as
// the machine last reported it.
type InventoryExtension struct {
	Name      string `json:"name,omitempty"`
	Publisher string `json:"publisher,omitempty"`
	Type      string `json:"type,omitempty"`
	Version   string `json:"version,omitempty"`
	State     string `json:"state,omitempty"`
}

// HeartbeatResponse answers a heartbeat.
type HeartbeatResponse struct {
	Status           string `json:"status"`
	HeartbeatSeconds int    `json:"heartbeatIntervalSeconds"`
	DesiredStateETag string `json:"desiredStateETag"`
}

// ExtensionSpec is one extension the machine should have. The control
// plane pins the package by digest when the assignment is written, so the
// machine downloads exactly the published bytes
// (GET /v1/machines/{id}/packages/{sha256} and .../{sha256}/signature).
type ExtensionSpec struct {
	Name          string         `json:"name"`
	Publisher     string         `json:"publisher"`
	Type          string         `json:"type"`
	Version       string         `json:"version"`
	PackageSHA256 string         `json:"packageSha256,omitempty"`
	PackageSize   int64          `json:"packageSize,omitempty"`
	Settings      map[string]any `json:"settings,omitempty"`
	// ProtectedSettings is a JSON object sealed to the machine key with
	// HPKE (package internal/sealed, "hpke1:BASE64", bound to the machine
	// id and the extension name). Only the machine can open it.
	ProtectedSettings string `json:"protectedSettings,omitempty"`
}

// Package kinds (PackageInfo.Kind), from the predicate type of the
// package's signed statement.
const (
	PackageKindExtension   = "extension"
	PackageKindGuestConfig = "guestconfig"
)

// PackageInfo describes one package in the control plane's package
// repository (content-addressed by SHA-256, never overwritten): an
// extension, or a guest configuration package whose Type is its name.
type PackageInfo struct {
	Kind        string    `json:"kind"` // extension or guestconfig
	Publisher   string    `json:"publisher"`
	Type        string    `json:"type"`
	Version     string    `json:"version"`
	FileName    string    `json:"fileName"` // <Publisher>.<Type>-<Version>.zip
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	KeyID       string    `json:"keyId,omitempty"` // key id of the envelope's first signature (informational; trust is decided on the machine)
	PublishedAt time.Time `json:"publishedAt"`
	PublishedBy string    `json:"publishedBy,omitempty"`
}

// PublishPackageRequest is the body of POST /v1/packages: the zip and its
// DSSE envelope (the <package>.sig.json file, verbatim).
type PublishPackageRequest struct {
	Package  []byte          `json:"package"` // base64 in JSON
	Envelope json.RawMessage `json:"envelope"`
}

// SetExtensionRequest is the body of PUT /v1/machines/{id}/extensions/{name}.
// ProtectedSettings travels in clear over TLS only to this call; the
// server seals it to the machine key before it stores anything.
type SetExtensionRequest struct {
	Publisher         string          `json:"publisher"`
	Type              string          `json:"type"`
	Version           string          `json:"version"`
	Settings          map[string]any  `json:"settings,omitempty"`
	ProtectedSettings json.RawMessage `json:"protectedSettings,omitempty"` // a JSON object
}

// ExtensionView is one row of GET /v1/machines/{id}/extensions: what the
// control plane wants next to what the machine last reported.
type ExtensionView struct {
	Name                 string           `json:"name"`
	Desired              *ExtensionSpec   `json:"desired,omitempty"` // ProtectedSettings blanked
	HasProtectedSettings bool             `json:"hasProtectedSettings,omitempty"`
	Reported             *ExtensionStatus `json:"reported,omitempty"`
	// State summarises the two: the reported state when the machine
	// reports the desired version, else Pending (or Removing when the
	// extension is no longer desired but still reported).
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// GuestConfigurationAssignment is one guest configuration assignment in a
// machine's desired state: a signed configuration package pinned by
// digest, the mode and the parameter values. Policy is the package's
// "<Publisher>.<Name>" (its file is "<Publisher>.<Name>-<Version>.zip").
type GuestConfigurationAssignment struct {
	Name       string            `json:"name"`
	Policy     string            `json:"policy"`
	Version    string            `json:"version,omitempty"`
	Mode       string            `json:"mode"` // Audit, ApplyAndMonitor, ApplyAndAutoCorrect
	Parameters map[string]string `json:"parameters,omitempty"`
	// PackageSHA256 and PackageSize pin the package: the machine downloads
	// GET /v1/machines/{id}/packages/{sha256} (and …/signature) and refuses
	// other bytes.
	PackageSHA256 string `json:"packageSha256,omitempty"`
	PackageSize   int64  `json:"packageSize,omitempty"`
	// Scope is where the assignment was made: the machine's resource id,
	// or its resource group's when assigned with --resource-group (it then
	// applies to every machine of the group, including later ones).
	Scope string `json:"scope,omitempty"`
}

// GuestConfigurationAssignRequest is the body of
// PUT /v1/machines/{id}/guestconfiguration/{name} and
// PUT /v1/subscriptions/{sub}/resourceGroups/{rg}/guestconfiguration/{name}.
type GuestConfigurationAssignRequest struct {
	Policy     string            `json:"policy"` // <Publisher>.<Name> of a published guestconfig package
	Version    string            `json:"version"`
	Mode       string            `json:"mode"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

// Guest configuration compliance values, of a resource and of an
// assignment, as machines report them. agent/guestconfig's engine uses the
// same names.
const (
	GuestConfigCompliant    = "Compliant"
	GuestConfigNonCompliant = "NonCompliant"
	GuestConfigError        = "Error"
	// GuestConfigSkipped: a resource not evaluated because an earlier one
	// failed to set, or the pass was cancelled.
	GuestConfigSkipped = "Skipped"
	// GuestConfigNotApplicable: a resource whose onlyIfExists path is
	// missing on the machine; it counts as compliant.
	GuestConfigNotApplicable = "NotApplicable"
	// GuestConfigNotApplied: an assignment refused before evaluation
	// (disabled by local configuration, untrusted package).
	GuestConfigNotApplied = "NotApplied"
)

// GuestConfigResourceCompliant reports whether a resource's compliance
// counts as compliant (Compliant or NotApplicable): the one rule every
// count of non-compliant resources uses.
func GuestConfigResourceCompliant(compliance string) bool {
	return compliance == GuestConfigCompliant || compliance == GuestConfigNotApplicable
}

// Guest configuration states only the control plane shows in a view.
const (
	GuestConfigPending  = "Pending"  // assigned; the machine has not reported this version and mode yet
	GuestConfigRemoving = "Removing" // no longer assigned; the machine still reports it
)

// GuestConfigurationView is one row of GET
// /v1/machines/{id}/guestconfiguration: an assignment (with its scope) next
// to what the machine last reported about it.
type GuestConfigurationView struct {
	Name     string                        `json:"name"`
	Desired  *GuestConfigurationAssignment `json:"desired,omitempty"`
	Reported *GuestConfigurationStatus     `json:"reported,omitempty"`
	// State is the reported compliance (Compliant, NonCompliant, Error,
	// NotApplied) once the machine reports the desired version and mode,
	// else Pending (or Removing).
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Resources and NonCompliantResources count the reported resources
	// and those not Compliant (NonCompliant or Error).
	Resources             int `json:"resources"`
	NonCompliantResources int `json:"nonCompliantResources"`
}

// MachineGuestConfiguration is one machine of GET /v1/guestconfiguration:
// its assignments' views, without the per-resource detail.
type MachineGuestConfiguration struct {
	MachineID   string                   `json:"machineId"`
	Name        string                   `json:"name"`
	ResourceID  string                   `json:"resourceId"`
	Assignments []GuestConfigurationView `json:"assignments"`
}

// DesiredState is what the control plane wants the machine to run. It is
// served with an ETag; agents poll with If-None-Match.
type DesiredState struct {
	Extensions                    []ExtensionSpec                `json:"extensions"`
	GuestConfigurationAssignments []GuestConfigurationAssignment `json:"guestConfigurationAssignments"`
}

// Extension states reported by the extension manager.
const (
	ExtensionTransitioning = "Transitioning"
	ExtensionSucceeded     = "Succeeded"
	ExtensionFailed        = "Failed"
	ExtensionRemoving      = "Removing"
	ExtensionPending       = "Pending" // control plane only: not yet reported
)

// ExtensionStatus is the reported state of one extension.
type ExtensionStatus struct {
	Name      string `json:"name"`
	Publisher string `json:"publisher,omitempty"`
	Type      string `json:"type,omitempty"`
	Version   string `json:"version,omitempty"`
	State     string `json:"state"` // Transitioning, Succeeded, Failed, Removing
	Message   string `json:"message,omitempty"`
	// Operation is the last handler operation (Download, Install, Enable,
	// Update, Disable, Uninstall) and Sequence the settings sequence number.
	Operation string `json:"operation,omitempty"`
	Sequence  int    `json:"sequence,omitempty"`
	Code      int    `json:"code,omitempty"` // status code from the handler's status file
	// Degraded says why a local control could not be applied (e.g. no
	// writable cgroup for the CPU limit); the extension still runs.
	Degraded  string    `json:"degraded,omitempty"`
	UpdatedAt time.Time `json:"updatedAt,omitempty"`
}

// ServiceStatus is the reported state of one agent service.
type ServiceStatus struct {
	Name    string `json:"name"`
	State   string `json:"state"` // Running, Degraded, Disabled
	Message string `json:"message,omitempty"`
}

// GuestConfigurationStatus is the reported compliance of one assignment.
// Compliance is Compliant, NonCompliant, Error, Pending (control plane:
// not reported yet) or NotApplied (refused before evaluation: disabled by
// local configuration, untrusted package; Message says why).
type GuestConfigurationStatus struct {
	Name       string `json:"name"`
	Compliance string `json:"complianceStatus"`
	Message    string `json:"message,omitempty"`
	Policy     string `json:"policy,omitempty"`
	Version    string `json:"version,omitempty"`
	Mode       string `json:"mode,omitempty"`
	// Applied is true when sets were allowed in the last pass.
	Applied     bool                               `json:"applied,omitempty"`
	EvaluatedAt time.Time                          `json:"evaluatedAt,omitempty"`
	DurationMs  float64                            `json:"durationMs,omitempty"`
	Resources   []GuestConfigurationResourceStatus `json:"resources,omitempty"`
}

// GuestConfigurationResourceStatus is the outcome of one resource of an
// assignment in the last pass.
type GuestConfigurationResourceStatus struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Compliance string            `json:"complianceStatus"` // Compliant, NonCompliant, Error, Skipped, NotApplicable
	Reason     string            `json:"reason,omitempty"`
	Changed    bool              `json:"changed,omitempty"` // a set ran and succeeded
	Evidence   map[string]string `json:"evidence,omitempty"`
	DurationMs float64           `json:"durationMs,omitempty"`
}

// MachineStatus is the body of PUT /v1/machines/{id}/status. Each service
// reports its own section: a section that is null or absent keeps what was
// stored (the extension manager sends extensions, guest configuration
// sends guestConfiguration), an empty list clears it; services are merged
// by name.
type MachineStatus struct {
	DesiredStateETag   string                     `json:"desiredStateETag,omitempty"`
	Extensions         []ExtensionStatus          `json:"extensions"`
	GuestConfiguration []GuestConfigurationStatus `json:"guestConfiguration"`
	Services           []ServiceStatus            `json:"services,omitempty"`
	ReportedAt         time.Time                  `json:"reportedAt,omitempty"`
}

// TokenResponse answers POST /v1/machines/{id}/token?resource=R. The fields
// follow what Azure SDK managed-identity clients expect.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresOn   string `json:"expires_on"` // unix seconds, as a string
	ExpiresIn   string `json:"expires_in"` // seconds, as a string
	NotBefore   string `json:"not_before"`
	TokenType   string `json:"token_type"`
	Resource    string `json:"resource"`
}

// OpenIDConfiguration is the subset of OIDC discovery that arcserver
// publishes at /.well-known/openid-configuration.
type OpenIDConfiguration struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	TokenEndpoint                    string   `json:"token_endpoint"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                  []string `json:"claims_supported"`
}

// List wraps every list response.
type List[T any] struct {
	Value []T `json:"value"`
}

// Assertion rules shared by agent and server.
const (
	// MaxAssertionLifetime is the longest exp-iat a machine assertion may have.
	MaxAssertionLifetime = 5 * time.Minute
	// AssertionType is the typ header of machine assertions.
	AssertionType = "JWT"
)

// AuditReportInfo describes one uploaded audit report: the answer to POST
// /v1/machines/{id}/audits and one row of GET /v1/machines/{id}/audits.
// GET /v1/machines/{id}/audits/{reportId} serves the report itself (the
// JSON report of `arcagent audit -o json`).
type AuditReportInfo struct {
	ID         string    `json:"id"`
	MachineID  string    `json:"machineId"`
	Profile    string    `json:"profile"`    // the report's profiles, sorted and joined with ","
	CreatedAt  time.Time `json:"createdAt"`  // the report's startedAt
	ReceivedAt time.Time `json:"receivedAt"` // when the server stored it
	Failed     int       `json:"failed"`     // failing rules (status fail)
}

// AuditFinding is one failing rule of a machine's latest report of a
// profile: a row of GET /v1/audits/findings.
type AuditFinding struct {
	MachineID      string    `json:"machineId"`
	ResourceID     string    `json:"resourceId"`
	MachineName    string    `json:"machineName"`
	SubscriptionID string    `json:"subscriptionId"`
	ResourceGroup  string    `json:"resourceGroup"`
	Profile        string    `json:"profile"`
	RuleID         string    `json:"ruleId"`
	Severity       string    `json:"severity"`
	Title          string    `json:"title,omitempty"`
	Message        string    `json:"message,omitempty"`
	Remediation    string    `json:"remediation,omitempty"`
	ReportedAt     time.Time `json:"reportedAt"`
}
