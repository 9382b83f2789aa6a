package controlplane_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/store/storetest"
)

// TestInitMakesSettingsKey: init writes the protected-settings key (0600),
// so that a replica's copy of the data directory taken right after init,
// before any server ran, holds the first server's key and both serve one
// PostgreSQL database.
func TestInitMakesSettingsKey(t *testing.T) {
	ctx := context.Background()
	db := storetest.Postgres(t)
	a := filepath.Join(t.TempDir(), "a")
	if _, err := controlplane.Init(ctx, controlplane.InitOptions{DataDir: a, Database: db}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(a, controlplane.SettingsKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Fatalf("%s after init: %v %v", controlplane.SettingsKeyFile, fi, err)
	}
	b := filepath.Join(t.TempDir(), "b")
	if err := os.CopyFS(b, os.DirFS(a)); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{b, a} {
		stop, err := serveOn(t, dir, db)
		if err != nil {
			t.Fatalf("serve %s: %v", dir, err)
		}
		defer stop()
	}
}
