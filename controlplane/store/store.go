// Package store is the control plane's persistence: one Store interface
// and its database/sql implementation (DB) on embedded SQLite
// (modernc.org/sqlite, pure Go; the default) or PostgreSQL (pgx); Open
// picks the engine from its spec. The SQL is shared and kept portable
// (standard types, ON CONFLICT, no engine-only functions in queries, ?
// placeholders rewritten to $n for PostgreSQL); read-modify-writes lock
// what they read (DB.forUpdate, DB.lock), since PostgreSQL runs them at
// READ COMMITTED. Times are stored as Unix milliseconds.
package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Errors every implementation returns (wrapped) so callers can tell cases
// apart with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
	// ErrOnboardingExpired, ErrOnboardingUsedUp and ErrOnboardingRevoked
	// say why an onboarding credential was refused.
	ErrOnboardingExpired = errors.New("onboarding credential has expired")
	ErrOnboardingUsedUp  = errors.New("onboarding credential has no uses left")
	ErrOnboardingRevoked = errors.New("onboarding credential was revoked")
)

// Tenant is the single tenant a server holds.
type Tenant struct {
	ID        string
	CreatedAt time.Time
}

// APIToken is an operator bearer token, kept only as a hash.
type APIToken struct {
	ID          string
	Principal   string
	Hash        string // hex SHA-256 of the token
	Description string
	CreatedAt   time.Time
	ExpiresAt   time.Time // zero: never
}

// Subscription is a top-level scope.
type Subscription struct {
	ID          string // the subscription id (a UUID)
	DisplayName string
	Tags        map[string]string
	CreatedAt   time.Time
}

// ResourceGroup is a scope inside a subscription.
type ResourceGroup struct {
	SubscriptionID string
	Name           string
	Location       string
	Tags           map[string]string
	CreatedAt      time.Time
}

// RoleAssignment grants Role to Principal at Scope and below.
type RoleAssignment struct {
	ID        string
	Principal string
	Role      string
	Scope     string
	CreatedAt time.Time
}

// OnboardingCredential lets machines register in one resource group.
type OnboardingCredential struct {
	ID             string
	Hash           string
	SubscriptionID string
	ResourceGroup  string
	Description    string
	CreatedBy      string
	CreatedAt      time.Time
	ExpiresAt      time.Time
	UsesTotal      int
	UsesLeft       int
	RevokedAt      time.Time // zero: not revoked
}

// Machine is a registered machine.
type Machine struct {
	ID             string
	Name           string
	SubscriptionID string
	ResourceGroup  string
	ResourceID     string
	PublicKeyPEM   string
	KeyThumbprint  string
	Inventory      []byte // JSON
	Tags           map[string]string
	AgentVersion   string
	CreatedAt      time.Time
	LastHeartbeat  time.Time
	OnboardingID   string
	DesiredState   []byte // JSON
	DesiredETag    string
	Status         []byte // JSON, nil if never reported
	StatusAt       time.Time
}

// Heartbeat is one machine heartbeat to record.
type Heartbeat struct {
	MachineID    string
	At           time.Time
	AgentVersion string // empty: unchanged
}

// SigningKey is a token-signing key. A key with a zero RetiredAt is active
// (the newest one signs); a retired key is still published until its
// tokens have expired.
type SigningKey struct {
	KID        string
	PrivatePEM []byte
	CreatedAt  time.Time
	RetiredAt  time.Time
}

// DesiredState is a machine's desired-state document as served (Doc, with
// its ETag) and Private, JSON the server keeps about it and never serves.
type DesiredState struct {
	Doc     []byte
	ETag    string
	Private []byte
}

// Package kinds (Package.Kind).
const (
	KindExtension   = "extension"
	KindGuestConfig = "guestconfig"
)

// Package is one published package: an extension or a guest configuration
// package (Kind; "" is read as KindExtension). Its bytes live beside the
// database, named by SHA256 (lowercase hex).
type Package struct {
	Kind        string
	Publisher   string
	Type        string
	Version     string
	SHA256      string
	Size        int64
	KeyID       string
	PublishedAt time.Time
	PublishedBy string
}

// PackageKey is the case-insensitive identity of Publisher.Type-Version
// (publisher and type compare without case, as the signature check does).
func PackageKey(publisher, typ, version string) string {
	return strings.ToLower(publisher) + "." + strings.ToLower(typ) + "-" + version
}

// GroupAssignment is a guest configuration assignment made at a resource
// group; Doc is its JSON as the control plane serves it. SubscriptionID
// and ResourceGroup are read back in lower case (the keys).
type GroupAssignment struct {
	SubscriptionID string
	ResourceGroup  string
	Name           string
	Doc            []byte
	UpdatedAt      time.Time
}

// MachineRef names the machine a desired-state sync is for.
type MachineRef struct {
	ID         string
	ResourceID string
}

// SyncFunc computes a machine's next desired state from its current one
// and its resource group's assignments (nil: unchanged).
type SyncFunc func(m MachineRef, cur DesiredState, group []GroupAssignment) (*DesiredState, error)

// MachineFilter narrows ListMachines. Empty fields match everything.
type MachineFilter struct {
	SubscriptionID string
	ResourceGroup  string
}

// Store is everything the control plane persists. Implementations must be
// safe for concurrent use.
type Store interface {
	Close() error

	// Shared is the state replicas share (replay rows, settings, the
	// narrow machine read); PackageBlobs the published package bytes.
	Shared
	PackageBlobs

	// CountOtherMachines counts the machines of a subscription other than
	// exceptID, without reading them.
	CountOtherMachines(ctx context.Context, subscriptionID, exceptID string) (int, error)
	// MachineSummaries lists machines without their documents.
	MachineSummaries(ctx context.Context, f MachineFilter) ([]MachineSummary, error)
	// FleetCounts counts the machines of scopes by status and agent
	// version; FleetPage reads one page of them, optionally of one status.
	FleetCounts(ctx context.Context, scopes []MachineFilter, b HeartbeatBounds) ([]FleetCount, error)
	FleetPage(ctx context.Context, scopes []MachineFilter, status string, b HeartbeatBounds, offset, limit int) ([]MachineSummary, error)
	// PruneSettings deletes the settings whose name starts with prefix
	// created before createdBefore, and returns how many.
	PruneSettings(ctx context.Context, prefix string, createdBefore time.Time) (int64, error)

	Tenant(ctx context.Context) (Tenant, error)
	CreateTenant(ctx context.Context, t Tenant) error

	CreateAPIToken(ctx context.Context, t APIToken) error
	APITokenByHash(ctx context.Context, hash string) (APIToken, error)
	ListAPITokens(ctx context.Context) ([]APIToken, error)
	DeleteAPIToken(ctx context.Context, id string) error

	CreateSubscription(ctx context.Context, s Subscription) error
	Subscription(ctx context.Context, id string) (Subscription, error)
	ListSubscriptions(ctx context.Context) ([]Subscription, error)

	CreateResourceGroup(ctx context.Context, g ResourceGroup) error
	ResourceGroup(ctx context.Context, subscriptionID, name string) (ResourceGroup, error)
	ListResourceGroups(ctx context.Context, subscriptionID string) ([]ResourceGroup, error)

	CreateRoleAssignment(ctx context.Context, a RoleAssignment) error
	RoleAssignment(ctx context.Context, id string) (RoleAssignment, error)
	ListRoleAssignments(ctx context.Context) ([]RoleAssignment, error)
	RoleAssignmentsFor(ctx context.Context, principal string) ([]RoleAssignment, error)
	DeleteRoleAssignment(ctx context.Context, id string) error
	// DeleteRoleAssignmentKeepOne deletes an assignment unless it is the
	// last of role at scope (ErrLastAssignment), atomically across
	// replicas.
	DeleteRoleAssignmentKeepOne(ctx context.Context, id, role, scope string) error

	CreateOnboarding(ctx context.Context, c OnboardingCredential) error
	Onboarding(ctx context.Context, id string) (OnboardingCredential, error)
	ListOnboarding(ctx context.Context) ([]OnboardingCredential, error)
	RevokeOnboarding(ctx context.Context, id string, at time.Time) error

	// RegisterMachine consumes one use of the onboarding credential whose
	// hash is given and creates m in that credential's resource group, in
	// one transaction. It fills m's scope fields from the credential.
	RegisterMachine(ctx context.Context, credentialHash string, now time.Time, m *Machine) error
	Machine(ctx context.Context, id string) (Machine, error)
	ListMachines(ctx context.Context, f MachineFilter) ([]Machine, error)
	UpdateMachineTags(ctx context.Context, id string, tags map[string]string) error
	DeleteMachine(ctx context.Context, id string) error
	RecordHeartbeats(ctx context.Context, hbs []Heartbeat) error
	// ListInventory lists the inventory of the machines matching f
	// (ordered by scope and name), without their desired states.
	ListInventory(ctx context.Context, f MachineFilter) ([]InventoryRow, error)
	// EachInventory streams what ListInventory returns to fn, row by row
	// (the row and its bytes are reused: fn copies what it keeps).
	EachInventory(ctx context.Context, f MachineFilter, fn func(*InventoryRow) error) error
	// UpdateMachineInventory replaces the inventory (JSON) a machine reported.
	UpdateMachineInventory(ctx context.Context, id string, inventory []byte) error
	SetMachineStatus(ctx context.Context, id string, status []byte, at time.Time) error
	// UpdateMachineStatus reads a machine's stored status (nil if none),
	// calls fn and stores what it returns with at, in one transaction, so
	// that two services reporting at once cannot erase each other.
	UpdateMachineStatus(ctx context.Context, id string, at time.Time, fn func(cur []byte) ([]byte, error)) error
	SetDesiredState(ctx context.Context, id string, doc []byte, etag string) error
	// UpdateDesiredState reads a machine's desired state, calls fn and
	// stores what it returns, in one transaction, so that two concurrent
	// changes to one machine cannot lose either. fn returning nil leaves
	// the row as it was.
	UpdateDesiredState(ctx context.Context, id string, fn func(cur DesiredState) (*DesiredState, error)) error

	// ListGroupAssignments lists the guest configuration assignments made
	// at a resource group, ordered by name (case-insensitively).
	ListGroupAssignments(ctx context.Context, subscriptionID, resourceGroup string) ([]GroupAssignment, error)
	// UpdateGroupAssignments changes a resource group's assignments and
	// every machine of the group in one transaction: fn gets the current
	// assignments and returns the next ones (nil: no change, nothing is
	// written); then sync runs for each machine of the group and what it
	// returns is stored. Any error leaves everything as it was.
	UpdateGroupAssignments(ctx context.Context, subscriptionID, resourceGroup string, fn func(cur []GroupAssignment) ([]GroupAssignment, error), sync SyncFunc) error
	// SyncGroupAssignments runs sync for one machine with its resource
	// group's assignments, in one transaction (a machine registered after
	// an assignment gets it).
	SyncGroupAssignments(ctx context.Context, machineID string, sync SyncFunc) error

	// CreatePackage records a published package. It fails with
	// ErrConflict when the name (PackageKey) or the digest is taken.
	CreatePackage(ctx context.Context, p Package) error
	// PackageByName finds a package by publisher, type and version
	// (publisher and type case-insensitively).
	PackageByName(ctx context.Context, publisher, typ, version string) (Package, error)
	// PackageBySHA256 finds a package by its digest.
	PackageBySHA256(ctx context.Context, sha256 string) (Package, error)
	// ListPackages lists packages, optionally of one publisher and type
	// (case-insensitively) and of one kind, ordered by publisher, type and
	// publication.
	ListPackages(ctx context.Context, publisher, typ, kind string) ([]Package, error)

	// AddAuditReport stores r as the latest report of (r.MachineID,
	// r.Profile), replaces that pair's findings with findings, and keeps at
	// most keep reports of the pair (oldest deleted), in one transaction.
	AddAuditReport(ctx context.Context, r AuditReport, findings []AuditFinding, keep int) error
	// AuditReports lists a machine's reports of one profile ("" = every
	// profile), newest first, at most limit (0 = all).
	AuditReports(ctx context.Context, machineID, profile string, limit int) ([]AuditReport, error)
	// AuditReport returns one report by id.
	AuditReport(ctx context.Context, id string) (AuditReport, error)
	// LatestAuditFindings lists the failing findings of every machine's
	// latest report per profile, ordered by severity (critical first), rule
	// id, machine name.
	LatestAuditFindings(ctx context.Context, f AuditFindingFilter) ([]AuditFinding, error)
	// TopFailingRules counts machines failing each rule in their latest
	// reports, most first, at most limit.
	TopFailingRules(ctx context.Context, f AuditFindingFilter, limit int) ([]RuleCount, error)

	AddSigningKey(ctx context.Context, k SigningKey) error
	RetireSigningKeys(ctx context.Context, exceptKID string, at time.Time) error
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	DeleteSigningKey(ctx context.Context, kid string) error

	// Backup writes a consistent copy of the whole store to path, which
	// must not exist, while the store stays in use.
	Backup(ctx context.Context, path string) error
}
