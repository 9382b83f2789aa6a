package controlplane_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/controlplane/store/storetest"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/signing"
)

// blobBackend is one engine the package tests run on: database is ""
// for the data directory's SQLite file.
type blobBackend struct {
	name     string
	database func(t *testing.T) string
}

var blobBackends = []blobBackend{
	{"sqlite", func(*testing.T) string { return "" }},
	{"postgres", func(t *testing.T) string { return storetest.Postgres(t) }},
}

// copyDataDir copies the files of data directory src (not its database
// or packages) into a new directory: what a replica on another host is
// given.
func copyDataDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), controlplane.DBFile) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// rawExec runs one statement on the test's database (written with ?).
func rawExec(t *testing.T, dir, database, q string, args ...any) {
	t.Helper()
	driver, dsn := "sqlite", filepath.Join(dir, controlplane.DBFile)
	if database != "" {
		driver, dsn = "pgx", database
		for i := 1; strings.Contains(q, "?"); i++ {
			q = strings.Replace(q, "?", "$"+string(rune('0'+i)), 1)
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}

// A package published through replica A downloads through replica B,
// which has a data directory of its own (no shared packages/), on both
// engines; a corrupted blob is refused, not served.
func TestReplicasSharePublishedPackages(t *testing.T) {
	for _, be := range blobBackends {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			database := be.database(t)
			dirA := t.TempDir()
			res, err := controlplane.Init(ctx, controlplane.InitOptions{DataDir: dirA, Database: database})
			if err != nil {
				t.Fatal(err)
			}
			st, err := controlplane.OpenStoreAt(ctx, dirA, database)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			a := startReplicas(t, st, dirA, res.OwnerToken, 1)[0]
			// After A's start, which creates the protected-settings key.
			dirB := copyDataDir(t, dirA)
			b := startReplicas(t, st, dirB, res.OwnerToken, 1)[0]

			sub := a.scope("prod", "web")
			tm := a.mustRegister(sub, "web", "m1")
			zb, sig := signedPackage(t, statusReporter, "shared")
			// Two publishes of the same package at once, through A and B:
			// one creates it, the other finds it (idempotent).
			var wg sync.WaitGroup
			infos := make([]apiv1.PackageInfo, 2)
			errs := make([]error, 2)
			for i, e := range []*env{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					infos[i], errs[i] = e.owner.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: zb, Envelope: sig})
				}()
			}
			wg.Wait()
			if errs[0] != nil || errs[1] != nil || infos[0] != infos[1] {
				t.Fatalf("concurrent publishes: %+v %v / %+v %v", infos[0], errs[0], infos[1], errs[1])
			}
			info := infos[0]
			if _, err := a.owner.SetExtension(ctx, tm.reg.MachineID, "monitor", apiv1.SetExtensionRequest{Publisher: statusReporter.Publisher, Type: statusReporter.Type, Version: statusReporter.Version}); err != nil {
				t.Fatal(err)
			}
			path := "/v1/machines/" + tm.reg.MachineID + "/packages/" + info.SHA256
			for _, e := range []*env{b, a} {
				status, h, body := e.download(tm, path)
				if status != http.StatusOK || !bytes.Equal(body, zb) || h.Get("ETag") != `"`+info.SHA256+`"` {
					t.Fatalf("download through %s: %d, %d bytes (equal %v)", e.url, status, len(body), bytes.Equal(body, zb))
				}
				status, _, body = e.download(tm, path+"/signature")
				if status != http.StatusOK || !bytes.Equal(body, sig) {
					t.Fatalf("signature through %s: %d %q", e.url, status, body)
				}
			}
			for _, d := range []string{dirA, dirB} {
				if _, err := os.Stat(filepath.Join(d, controlplane.PackagesDir)); !os.IsNotExist(err) {
					t.Fatalf("%s has a %s directory: %v", d, controlplane.PackagesDir, err)
				}
			}

			// One bit of the stored bytes flips: refused with a 500,
			// never served.
			bad := append([]byte{}, zb...)
			bad[len(bad)/2] ^= 1
			rawExec(t, dirA, database, `UPDATE package_chunks SET data = ? WHERE sha256 = ?`, bad, info.SHA256)
			status, _, body := b.download(tm, path)
			if status != http.StatusInternalServerError || bytes.Contains(body, bad[:len(bad)/2+1]) {
				t.Fatalf("corrupted blob: %d, %d bytes", status, len(body))
			}
			if !strings.Contains(b.logs.String(), "do not match") && !strings.Contains(b.logs.String(), "digest") {
				t.Errorf("the refusal is not logged: %s", b.logs.String())
			}
		})
	}
}

// oldDataDir makes a data directory the way servers before the package
// bytes moved into the database did: package rows in the database, the
// bytes and signature in packages/. Each of files is published with its
// files; each of lost has its row only (its files were lost).
func oldDataDir(t *testing.T, files, lost []signing.Package) (dir, ownerToken string, zips, envs [][]byte) {
	t.Helper()
	ctx := context.Background()
	dir = t.TempDir()
	res, err := controlplane.Init(ctx, controlplane.InitOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	st, err := controlplane.OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := os.MkdirAll(filepath.Join(dir, controlplane.PackagesDir), 0o700); err != nil {
		t.Fatal(err)
	}
	for i, p := range append(append([]signing.Package{}, files...), lost...) {
		zb, env := signedPackage(t, p, p.Version)
		sha := sha256Hex(zb)
		if err := st.CreatePackage(ctx, store.Package{Publisher: p.Publisher, Type: p.Type, Version: p.Version, SHA256: sha, Size: int64(len(zb)), PublishedBy: "owner", PublishedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		zips, envs = append(zips, zb), append(envs, env)
		if i >= len(files) {
			continue
		}
		for name, b := range map[string][]byte{sha + ".zip": zb, sha + ".sig.json": env} {
			if err := os.WriteFile(filepath.Join(dir, controlplane.PackagesDir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir, res.OwnerToken, zips, envs
}

// A data directory made the old way keeps working: the server copies the
// files into the database at start (and logs the package it cannot
// copy), machines download them, and they survive the loss of packages/.
func TestPackageFilesOfOldDataDirectory(t *testing.T) {
	ctx := context.Background()
	missing := signing.Package{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "0.9"}
	dir, owner, zips, envs := oldDataDir(t, []signing.Package{statusReporter}, []signing.Package{missing})
	zb, env, sha := zips[0], envs[0], sha256Hex(zips[0])
	st, err := controlplane.OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := startReplicas(t, st, dir, owner, 1)[0]
	if !strings.Contains(e.logs.String(), sha256Hex(zips[1])) {
		t.Errorf("the package without files is not logged: %s", e.logs.String())
	}
	if got := storedBlob(t, e, sha); !bytes.Equal(got, zb) {
		t.Fatal("the package file was not copied into the database")
	}
	if err := os.RemoveAll(filepath.Join(dir, controlplane.PackagesDir)); err != nil {
		t.Fatal(err)
	}
	sub := e.scope("prod", "web")
	tm := e.mustRegister(sub, "web", "m1")
	if _, err := e.owner.SetExtension(ctx, tm.reg.MachineID, "monitor", apiv1.SetExtensionRequest{Publisher: statusReporter.Publisher, Type: statusReporter.Type, Version: statusReporter.Version}); err != nil {
		t.Fatal(err)
	}
	path := "/v1/machines/" + tm.reg.MachineID + "/packages/" + sha
	if status, _, body := e.download(tm, path); status != http.StatusOK || !bytes.Equal(body, zb) {
		t.Fatalf("download: %d, %d bytes", status, len(body))
	}
	if status, _, body := e.download(tm, path+"/signature"); status != http.StatusOK || !bytes.Equal(body, env) {
		t.Fatalf("signature: %d %q", status, body)
	}
	// Publishing it again with its signature is still idempotent.
	if _, err := e.owner.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: zb, Envelope: env}); err != nil {
		t.Fatalf("republish: %v", err)
	}
}

// `arcserver migrate` of a data directory made the old way carries the
// package files into PostgreSQL, and refuses (changing nothing in the
// target) when a package's files are missing.
func TestMigrateCarriesPackageFiles(t *testing.T) {
	ctx := context.Background()
	other := signing.Package{Publisher: "Fabrikam", Type: "Agent", Version: "2.0"}
	t.Run("refused without the files", func(t *testing.T) {
		dir, _, zips, _ := oldDataDir(t, []signing.Package{statusReporter}, []signing.Package{other})
		_, err := controlplane.Migrate(ctx, controlplane.MigrateOptions{DataDir: dir, Database: storetest.Postgres(t)})
		if c, _ := errcode.CodeOf(err); c != controlplane.CodePackageFiles || !strings.Contains(err.Error(), sha256Hex(zips[1])) {
			t.Fatalf("migrate: %v", err)
		}
	})
	dir, _, zips, envs := oldDataDir(t, []signing.Package{statusReporter, other}, nil)
	database := storetest.Postgres(t)
	if _, err := controlplane.Migrate(ctx, controlplane.MigrateOptions{DataDir: dir, Database: database}); err != nil {
		t.Fatal(err)
	}
	pg, err := store.Open(ctx, database)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	for i, zb := range zips {
		b, err := pg.OpenPackageBlob(ctx, sha256Hex(zb))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(b)
		if err != nil || !bytes.Equal(got, zb) {
			t.Fatalf("package %d in PostgreSQL: %d bytes, %v", i, len(got), err)
		}
		if e, err := pg.PackageEnvelope(ctx, sha256Hex(zb)); err != nil || !bytes.Equal(e, envs[i]) {
			t.Fatalf("envelope %d in PostgreSQL: %v", i, err)
		}
	}
}

// get fetches path from e with tm's assertion and extra headers, and
// returns the status, the body and the error reading it.
func get(t *testing.T, e *env, tm testMachine, path string, hdr map[string]string) (int, []byte, error) {
	t.Helper()
	a, err := cloud.SignAssertion(tm.key, tm.reg.MachineID, tm.reg.Audience, e.clock.Now(), cloud.DefaultAssertionLifetime)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, e.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+a)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// A package of several chunks streams whole and by ranges across chunk
// boundaries, through a replica that did not take the publish; when a
// chunk after the first is damaged, the download breaks instead of
// completing.
func TestLargePackageStreams(t *testing.T) {
	for _, be := range blobBackends {
		t.Run(be.name, func(t *testing.T) {
			ctx := context.Background()
			database := be.database(t)
			dirA := t.TempDir()
			res, err := controlplane.Init(ctx, controlplane.InitOptions{DataDir: dirA, Database: database})
			if err != nil {
				t.Fatal(err)
			}
			st, err := controlplane.OpenStoreAt(ctx, dirA, database)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			a := startReplicas(t, st, dirA, res.OwnerToken, 1)[0]
			b := startReplicas(t, st, copyDataDir(t, dirA), res.OwnerToken, 1)[0]
			noise := make([]byte, 3<<20)
			rand.Read(noise)
			zb, sig := signedPackage(t, statusReporter, hex.EncodeToString(noise))
			if len(zb) < 2*store.PackageChunkSize+1 {
				t.Fatalf("the package is only %d bytes", len(zb))
			}
			info, err := a.owner.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: zb, Envelope: sig})
			if err != nil {
				t.Fatal(err)
			}
			tm := a.mustRegister(a.scope("prod", "web"), "web", "m1")
			if _, err := a.owner.SetExtension(ctx, tm.reg.MachineID, "monitor", apiv1.SetExtensionRequest{Publisher: statusReporter.Publisher, Type: statusReporter.Type, Version: statusReporter.Version}); err != nil {
				t.Fatal(err)
			}
			path := "/v1/machines/" + tm.reg.MachineID + "/packages/" + info.SHA256
			if status, body, err := get(t, b, tm, path, nil); status != http.StatusOK || err != nil || !bytes.Equal(body, zb) {
				t.Fatalf("download: %d, %d bytes, %v", status, len(body), err)
			}
			from := store.PackageChunkSize - 10
			status, body, err := get(t, b, tm, path, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", from, from+store.PackageChunkSize+19)})
			if status != http.StatusPartialContent || err != nil || !bytes.Equal(body, zb[from:from+store.PackageChunkSize+20]) {
				t.Fatalf("range: %d, %d bytes, %v", status, len(body), err)
			}
			if status, _, _ := get(t, b, tm, path, map[string]string{"If-None-Match": `"` + info.SHA256 + `"`}); status != http.StatusNotModified {
				t.Fatalf("If-None-Match: %d", status)
			}
			// The second chunk's bytes change: the first chunk may be
			// sent, the response then breaks; never a whole package.
			bad := append([]byte{}, zb[store.PackageChunkSize:2*store.PackageChunkSize]...)
			bad[0] ^= 1
			rawExec(t, dirA, database, `UPDATE package_chunks SET data = ? WHERE sha256 = ? AND seq = 1`, bad, info.SHA256)
			status, body, err = get(t, b, tm, path, nil)
			if err == nil || len(body) >= len(zb) {
				t.Fatalf("download of a damaged package: %d, %d bytes of %d, %v", status, len(body), len(zb), err)
			}
		})
	}
}
