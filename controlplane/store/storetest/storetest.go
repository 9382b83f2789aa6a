// Package storetest gives tests a PostgreSQL database of their own: a
// fresh schema in the database that ARCSERVER_TEST_POSTGRES names, dropped
// when the test ends. Without that variable the test skips, except under
// CI=true, where a missing database is a failure rather than a silent
// skip.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// EnvVar names the PostgreSQL URL the tests use, e.g.
// postgres://arcagent:arcagent@127.0.0.1:5432/arcagent_test?sslmode=disable.
const EnvVar = "ARCSERVER_TEST_POSTGRES"

// Postgres returns the URL of an empty schema of its own for t (its
// search_path), dropped at the end of the test.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvVar)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must run the PostgreSQL tests (.ci/run starts PostgreSQL and sets it)", EnvVar)
		}
		t.Skipf("PostgreSQL tests skipped: set %s to a PostgreSQL URL (see README, Tests)", EnvVar)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s does not parse as a URL", EnvVar)
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("create a test schema in the database of %s: %v", EnvVar, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
