package store

// migrations are applied in order at open; migration i brings the schema to
// version i+1. Never edit a released migration: append a new one. Types
// are kept portable between SQLite and PostgreSQL (TEXT, BIGINT, INTEGER).
var migrations = []string{
	// 1: initial schema.
	`CREATE TABLE tenant (
		id TEXT PRIMARY KEY,
		created_at BIGINT NOT NULL
	);
	CREATE TABLE api_tokens (
		id TEXT PRIMARY KEY,
		principal TEXT NOT NULL,
		hash TEXT NOT NULL UNIQUE,
		description TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL DEFAULT 0
	);
	CREATE TABLE subscriptions (
		id TEXT PRIMARY KEY,
		display_name TEXT NOT NULL,
		tags TEXT NOT NULL DEFAULT '{}',
		created_at BIGINT NOT NULL
	);
	CREATE TABLE resource_groups (
		subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
		name TEXT NOT NULL,
		name_key TEXT NOT NULL,
		location TEXT NOT NULL DEFAULT '',
		tags TEXT NOT NULL DEFAULT '{}',
		created_at BIGINT NOT NULL,
		PRIMARY KEY (subscription_id, name_key)
	);
	CREATE TABLE role_assignments (
		id TEXT PRIMARY KEY,
		principal TEXT NOT NULL,
		role TEXT NOT NULL,
		scope TEXT NOT NULL,
		scope_key TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		UNIQUE (principal, role, scope_key)
	);
	CREATE INDEX role_assignments_principal ON role_assignments (principal);
	CREATE TABLE onboarding_credentials (
		id TEXT PRIMARY KEY,
		hash TEXT NOT NULL UNIQUE,
		subscription_id TEXT NOT NULL,
		resource_group TEXT NOT NULL,
		description TEXT NOT NULL DEFAULT '',
		created_by TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		uses_total INTEGER NOT NULL,
		uses_left INTEGER NOT NULL,
		revoked_at BIGINT NOT NULL DEFAULT 0
	);
	CREATE TABLE machines (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		name_key TEXT NOT NULL,
		subscription_id TEXT NOT NULL,
		resource_group TEXT NOT NULL,
		rg_key TEXT NOT NULL,
		resource_id TEXT NOT NULL,
		public_key TEXT NOT NULL,
		key_thumbprint TEXT NOT NULL,
		inventory TEXT NOT NULL DEFAULT '{}',
		tags TEXT NOT NULL DEFAULT '{}',
		agent_version TEXT NOT NULL DEFAULT '',
		created_at BIGINT NOT NULL,
		last_heartbeat BIGINT NOT NULL,
		onboarding_id TEXT NOT NULL DEFAULT '',
		desired_state TEXT NOT NULL,
		desired_etag TEXT NOT NULL,
		status TEXT,
		status_at BIGINT NOT NULL DEFAULT 0,
		UNIQUE (subscription_id, rg_key, name_key)
	);
	CREATE TABLE signing_keys (
		kid TEXT PRIMARY KEY,
		private_pem TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		retired_at BIGINT NOT NULL DEFAULT 0
	);`,
	// 2: heartbeats move to a narrow table of their own, so that the hot
	// write path rewrites small rows packed many to a page instead of
	// whole machine records. machines.last_heartbeat and agent_version keep
	// the values from registration.
	`CREATE TABLE machine_heartbeats (
		machine_id TEXT PRIMARY KEY,
		last_heartbeat BIGINT NOT NULL,
		agent_version TEXT NOT NULL DEFAULT ''
	);
	INSERT INTO machine_heartbeats (machine_id, last_heartbeat, agent_version)
		SELECT id, last_heartbeat, agent_version FROM machines;`,
	// 3: the extension package repository. The files live in the data
	// directory, named by sha256; a row says which name they were
	// published under. One Publisher.Type-Version has one digest, and one
	// digest one name: neither is ever rebound. machines.desired_private
	// is server-side data about the desired state that the machine is
	// never sent (keyed fingerprints of protected settings).
	`ALTER TABLE machines ADD COLUMN desired_private TEXT NOT NULL DEFAULT '{}';
	CREATE TABLE packages (
		publisher TEXT NOT NULL,
		type TEXT NOT NULL,
		version TEXT NOT NULL,
		name_key TEXT NOT NULL UNIQUE,
		sha256 TEXT NOT NULL UNIQUE,
		size BIGINT NOT NULL,
		key_id TEXT NOT NULL DEFAULT '',
		published_at BIGINT NOT NULL,
		published_by TEXT NOT NULL DEFAULT ''
	);`,
	// 4: packages have a kind: "extension" (the rows of version 3) or
	// "guestconfig" (a guest configuration package, guestconfig.yaml at its
	// root), as its signature's predicate type says.
	`ALTER TABLE packages ADD COLUMN kind TEXT NOT NULL DEFAULT 'extension';`,
	// 5: guest configuration assignments made at a resource group. Each
	// row is one assignment (doc: its JSON as the control plane serves it);
	// the control plane copies a group's assignments into the desired state
	// of every machine of the group, in the transaction that changes them
	// and when a machine registers.
	`CREATE TABLE guestconfig_group_assignments (
		subscription_id TEXT NOT NULL,
		rg_key TEXT NOT NULL,
		name TEXT NOT NULL,
		name_key TEXT NOT NULL,
		doc TEXT NOT NULL,
		updated_at BIGINT NOT NULL,
		PRIMARY KEY (subscription_id, rg_key, name_key)
	);`,
	// 6: uploaded audit reports. audit_reports keeps each machine's
	// reports per profile (history bounded by the server); audit_findings
	// holds the failing rules of the latest report of each machine and
	// profile only, so that fleet reads never parse report documents.
	// sev_rank orders severities (critical 4 … info 0); rule_key is the
	// rule id in lower case.
	`CREATE TABLE audit_reports (
		id TEXT PRIMARY KEY,
		machine_id TEXT NOT NULL,
		profile TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		received_at BIGINT NOT NULL,
		failed INTEGER NOT NULL,
		doc TEXT NOT NULL
	);
	CREATE INDEX audit_reports_machine ON audit_reports (machine_id, profile, created_at);
	CREATE TABLE audit_findings (
		machine_id TEXT NOT NULL,
		profile TEXT NOT NULL,
		rule_key TEXT NOT NULL,
		rule_id TEXT NOT NULL,
		report_id TEXT NOT NULL,
		severity TEXT NOT NULL,
		sev_rank INTEGER NOT NULL,
		title TEXT NOT NULL,
		message TEXT NOT NULL,
		remediation TEXT NOT NULL,
		reported_at BIGINT NOT NULL,
		PRIMARY KEY (machine_id, profile, rule_key)
	);
	CREATE INDEX audit_findings_rule ON audit_findings (rule_key, sev_rank, machine_id);
	CREATE INDEX audit_findings_rank ON audit_findings (sev_rank, rule_key, machine_id);`,
	// Replica-shared state: state several arcserver processes over one
	// database must agree on. assertion_replay remembers each accepted
	// machine assertion (key: machine id and jti) until it expires, so an
	// assertion used on one replica is refused on every other; rows are
	// swept once expired. server_settings holds small server-wide values
	// (the protected-settings fingerprint key), created once and shared.
	`CREATE TABLE assertion_replay (
		replay_key TEXT PRIMARY KEY,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX assertion_replay_expires ON assertion_replay (expires_at);
	CREATE TABLE server_settings (
		name TEXT PRIMARY KEY,
		value TEXT NOT NULL,
		created_at BIGINT NOT NULL
	);`,
	// Published package bytes, shared by replicas: package_files holds
	// per digest the size, the chunk size and the signature envelope;
	// package_chunks the bytes in chunks (the last one shorter), each with
	// its own sha256, so that a download streams one chunk at a time and
	// verifies every chunk it serves. The binary columns are declared
	// BYTEA, PostgreSQL's binary type; in SQLite that declared type has
	// NUMERIC affinity, which stores a bound []byte as a BLOB unchanged,
	// so one statement serves both engines without base64's 33%.
	`CREATE TABLE package_files (
		sha256 TEXT PRIMARY KEY,
		size BIGINT NOT NULL,
		chunk_size INTEGER NOT NULL,
		envelope BYTEA NOT NULL
	);
	CREATE TABLE package_chunks (
		sha256 TEXT NOT NULL,
		seq INTEGER NOT NULL,
		chunk_sha256 TEXT NOT NULL,
		data BYTEA NOT NULL,
		PRIMARY KEY (sha256, seq)
	);`,
}
