package controlplane_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/controlplane/store"
	"github.com/arcagent/arcagent/signing"
)

const testManifest = `[{
  "version": 1.0,
  "handlerManifest": {
    "installCommand": "bin/handler.sh install",
    "uninstallCommand": "bin/handler.sh uninstall",
    "updateCommand": "bin/handler.sh update",
    "enableCommand": "bin/handler.sh enable",
    "disableCommand": "bin/handler.sh disable",
    "updateMode": "UpdateWithInstall"
  }
}]`

var statusReporter = signing.Package{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0"}

// signedPackage builds a real package of p whose handler prints marker
// (so that two builds of one version differ) and signs it with a fresh
// key, the way `arcagent package build` and `package sign` do.
func signedPackage(t testing.TB, p signing.Package, marker string) (zipBytes, envelope []byte) {
	t.Helper()
	ctx := context.Background()
	src := t.TempDir()
	for name, body := range map[string]string{"HandlerManifest.json": testManifest, "bin/handler.sh": "#!/bin/sh\necho " + marker + " \"$1\"\n"} {
		path := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	res, err := extensions.BuildPackage(ctx, extensions.BuildOptions{Dir: src, Package: p, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := signing.GenerateKey(signing.AlgECDSAP256, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signing.ParseSigner(kp.PrivatePEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := extensions.SignPackage(ctx, res.Path, p, signer)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	return b, env
}

// envelopeFor is a well-formed DSSE envelope (with a signature nobody
// checks here) around a statement: the server checks form, never trust.
func envelopeFor(t testing.TB, st any) []byte {
	t.Helper()
	payload, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := json.Marshal(signing.Envelope{PayloadType: signing.PayloadType, Payload: base64.StdEncoding.EncodeToString(payload), Signatures: []signing.EnvelopeSignature{{KeyID: "k", Sig: "c2ln"}}})
	return env
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func zipOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for n, body := range files {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPublishPackage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	zb, env := signedPackage(t, statusReporter, "v1")

	info, err := e.owner.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: zb, Envelope: env})
	if err != nil {
		t.Fatal(err)
	}
	want := apiv1.PackageInfo{Kind: apiv1.PackageKindExtension, Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0", FileName: "Contoso.Monitoring.StatusReporter-1.0.0.zip", SHA256: sha256Hex(zb), Size: int64(len(zb)), PublishedBy: "owner"}
	got := info
	got.PublishedAt, got.KeyID = want.PublishedAt, ""
	if got != want || info.PublishedAt.IsZero() {
		t.Fatalf("published %+v, want %+v", info, want)
	}
	// Stored in the database, byte for byte; nothing in the data directory.
	if got := storedBlob(t, e, info.SHA256); !bytes.Equal(got, zb) {
		t.Fatalf("stored bytes differ (%d bytes, want %d)", len(got), len(zb))
	}
	if got, err := e.st.(store.PackageBlobs).PackageEnvelope(ctx, info.SHA256); err != nil || !bytes.Equal(got, env) {
		t.Fatalf("stored envelope: %v (equal %v)", err, bytes.Equal(got, env))
	}
	if _, err := os.Stat(filepath.Join(e.dir, controlplane.PackagesDir)); !os.IsNotExist(err) {
		t.Fatalf("publish wrote %s: %v", controlplane.PackagesDir, err)
	}

	t.Run("same bytes again is idempotent", func(t *testing.T) {
		again, err := e.owner.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: zb, Envelope: env})
		if err != nil || again != info {
			t.Fatalf("republish: %+v %v, want %+v", again, err, info)
		}
		status, _, _, _ := e.raw(http.MethodPost, "/v1/packages", e.ownerT, "application/json", publishBody(t, zb, env))
		if status != http.StatusOK {
			t.Fatalf("republish status %d, want 200", status)
		}
	})
	t.Run("same bytes, another signature: refused", func(t *testing.T) {
		other := envelopeFor(t, signing.NewStatement(statusReporter, info.SHA256, info.Size))
		_, err := e.owner.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: zb, Envelope: other})
		wantCode(t, err, http.StatusConflict, apiv1.CodeConflict, "another signature")
	})
	t.Run("other bytes, same version: refused, nothing replaced", func(t *testing.T) {
		zb2, env2 := signedPackage(t, statusReporter, "v1-rebuilt")
		_, err := e.owner.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: zb2, Envelope: env2})
		wantCode(t, err, http.StatusConflict, apiv1.CodeConflict, "already published with sha256 "+info.SHA256, "new version")
		if _, err := e.st.(store.PackageBlobs).OpenPackageBlob(ctx, sha256Hex(zb2)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("refused bytes were stored: %v", err)
		}
		if b, _ := e.st.(store.PackageBlobs).PackageEnvelope(ctx, info.SHA256); !bytes.Equal(b, env) {
			t.Fatal("the envelope of the published package changed")
		}
	})
	t.Run("list and filters", func(t *testing.T) {
		zb3, env3 := signedPackage(t, signing.Package{Publisher: "Fabrikam", Type: "Agent", Version: "2.1"}, "f")
		if _, err := e.owner.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: zb3, Envelope: env3}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			pub, typ string
			want     int
		}{{"", "", 2}, {"contoso.monitoring", "", 1}, {"", "Agent", 1}, {"Nobody", "", 0}} {
			ps, err := e.owner.ListPackages(ctx, tc.pub, tc.typ, "")
			if err != nil || len(ps) != tc.want {
				t.Errorf("list %q %q: %d %v, want %d", tc.pub, tc.typ, len(ps), err, tc.want)
			}
		}
	})
	t.Run("RBAC", func(t *testing.T) {
		reader := e.operatorFor("rita", rbac.Reader, "/")
		if ps, err := reader.ListPackages(ctx, "", "", ""); err != nil || len(ps) == 0 {
			t.Fatalf("reader list: %d %v", len(ps), err)
		}
		zb4, env4 := signedPackage(t, signing.Package{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.1.0"}, "r")
		_, err := reader.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: zb4, Envelope: env4})
		wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, rbac.PackagesWrite)
		sub := e.scope("rbac-sub", "g")
		subAdmin := e.operatorFor("sam", rbac.ResourceAdministrator, rbac.SubscriptionScope(sub))
		_, err = subAdmin.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: zb4, Envelope: env4})
		wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, rbac.PackagesWrite)
		_, err = subAdmin.ListPackages(ctx, "", "", "")
		wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, rbac.PackagesRead)
		admin := e.operatorFor("ada", rbac.ResourceAdministrator, "/")
		if _, err := admin.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: zb4, Envelope: env4}); err != nil {
			t.Fatalf("administrator at / publishes: %v", err)
		}
	})
}

// storedBlob reads a package's bytes from the env's store.
func storedBlob(t testing.TB, e *env, sha string) []byte {
	t.Helper()
	b, err := e.st.(store.PackageBlobs).OpenPackageBlob(context.Background(), sha)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func publishBody(t testing.TB, zb, env []byte) io.Reader {
	b, err := json.Marshal(apiv1.PublishPackageRequest{Package: zb, Envelope: env})
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

func TestPublishRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	zb, env := signedPackage(t, statusReporter, "x")
	good := signing.NewStatement(statusReporter, sha256Hex(zb), int64(len(zb)))
	otherBytes := signing.NewStatement(statusReporter, sha256Hex([]byte("other")), int64(len(zb)))
	otherSize := signing.NewStatement(statusReporter, sha256Hex(zb), int64(len(zb))+1)
	otherPublisher := signing.NewStatement(statusReporter, sha256Hex(zb), int64(len(zb)))
	otherPublisher.Predicate.Publisher = "Evil.Corp"
	notZip := []byte("this is not a zip archive")
	noManifest := zipOf(t, map[string]string{"bin/handler.sh": "#!/bin/sh\n"})
	badManifest := zipOf(t, map[string]string{"HandlerManifest.json": `{"not": "an array"}`})
	nested := zipOf(t, map[string]string{"pkg/HandlerManifest.json": testManifest})

	for _, tc := range []struct {
		name     string
		pkg, env []byte
		status   int
		code     string
		contains string
	}{
		{"statement digest mismatch", zb, envelopeFor(t, otherBytes), 400, "ARC0200", "signature is for other bytes"},
		{"statement size mismatch", zb, envelopeFor(t, otherSize), 400, "ARC0200", "signature is for other bytes"},
		{"other publisher in the predicate", zb, envelopeFor(t, otherPublisher), 400, "ARC0200", "does not match the predicate"},
		{"not a DSSE envelope", zb, []byte(`{"hello":"world"}`), 400, "ARC0200", "not a DSSE envelope"},
		{"envelope is a statement, unwrapped", zb, mustJSON(t, good), 400, "ARC0200", "not a DSSE envelope"},
		{"no envelope", zb, nil, 400, "ARC0200", "envelope is required"},
		{"no package", nil, env, 400, "ARC0200", "package is required"},
		{"not a zip", notZip, envelopeFor(t, signing.NewStatement(statusReporter, sha256Hex(notZip), int64(len(notZip)))), 400, "ARC0200", "not a zip archive"},
		{"no manifest", noManifest, envelopeFor(t, signing.NewStatement(statusReporter, sha256Hex(noManifest), int64(len(noManifest)))), 400, "ARC0200", "no HandlerManifest.json at its root"},
		{"manifest not nested", nested, envelopeFor(t, signing.NewStatement(statusReporter, sha256Hex(nested), int64(len(nested)))), 400, "ARC0200", "at its root"},
		{"bad manifest", badManifest, envelopeFor(t, signing.NewStatement(statusReporter, sha256Hex(badManifest), int64(len(badManifest)))), 400, "ARC0200", "JSON array holding one handler object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, ae, _ := e.raw(http.MethodPost, "/v1/packages", e.ownerT, "application/json", publishBody(t, tc.pkg, tc.env))
			if status != tc.status || ae.Code != tc.code || !strings.Contains(ae.Message, tc.contains) {
				t.Fatalf("HTTP %d %s %q, want %d %s containing %q", status, ae.Code, ae.Message, tc.status, tc.code, tc.contains)
			}
		})
	}
	t.Run("oversized", func(t *testing.T) {
		// 85 MB of JSON is slow to encode and decode under the race
		// detector: this call gets a client with a longer timeout.
		hc := *e.hc
		hc.Timeout = 3 * time.Minute
		c, err := cloud.New(e.url, cloud.Options{HTTPClient: &hc})
		if err != nil {
			t.Fatal(err)
		}
		big := make([]byte, controlplane.MaxPackageSize+1)
		_, err = c.Operator(e.ownerT).PublishPackage(ctx, apiv1.PublishPackageRequest{Package: big, Envelope: env})
		wantCode(t, err, http.StatusRequestEntityTooLarge, apiv1.CodeTooLarge, "limit")
	})
	if ps, err := e.owner.ListPackages(ctx, "", "", ""); err != nil || len(ps) != 0 {
		t.Fatalf("refused uploads were recorded: %+v %v", ps, err)
	}
	if ps, err := e.st.(store.PackageBlobs).PackagesWithoutBlob(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("refused uploads left rows: %+v %v", ps, err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, controlplane.PackagesDir)); !os.IsNotExist(err) {
		t.Fatalf("refused uploads left %s: %v", controlplane.PackagesDir, err)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// download GETs a machine path with tm's assertion.
func (e *env) download(tm testMachine, path string) (int, http.Header, []byte) {
	e.t.Helper()
	a, err := cloud.SignAssertion(tm.key, tm.reg.MachineID, tm.reg.Audience, e.clock.Now(), cloud.DefaultAssertionLifetime)
	if err != nil {
		e.t.Fatal(err)
	}
	status, h, _, body := e.raw(http.MethodGet, path, a, "", nil)
	return status, h, body
}

func TestMachineDownload(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "web")
	m1 := e.mustRegister(sub, "web", "m1")
	m2 := e.mustRegister(sub, "web", "m2")
	zb, env := signedPackage(t, statusReporter, "dl")
	info, err := e.owner.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: zb, Envelope: env})
	if err != nil {
		t.Fatal(err)
	}
	other := signing.Package{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "2.0.0"}
	zb2, env2 := signedPackage(t, other, "dl2")
	info2, err := e.owner.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: zb2, Envelope: env2})
	if err != nil {
		t.Fatal(err)
	}
	pkgPath := func(tm testMachine, sha string) string {
		return "/v1/machines/" + tm.reg.MachineID + "/packages/" + sha
	}

	// Nothing assigned yet: 404 even for a published digest.
	if status, _, _ := e.download(m1, pkgPath(m1, info.SHA256)); status != http.StatusNotFound {
		t.Fatalf("unassigned download: %d", status)
	}
	spec, err := e.owner.SetExtension(ctx, m1.reg.MachineID, "monitor", apiv1.SetExtensionRequest{Publisher: "contoso.monitoring", Type: "statusreporter", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if spec.PackageSHA256 != info.SHA256 || spec.PackageSize != info.Size || spec.Publisher != "Contoso.Monitoring" || spec.Type != "StatusReporter" {
		t.Fatalf("spec does not pin the package: %+v", spec)
	}
	status, h, body := e.download(m1, pkgPath(m1, info.SHA256))
	if status != http.StatusOK || !bytes.Equal(body, zb) {
		t.Fatalf("download: %d, %d bytes (equal %v)", status, len(body), bytes.Equal(body, zb))
	}
	if h.Get("Content-Type") != "application/zip" || h.Get("Content-Length") != strconv.Itoa(len(zb)) || h.Get("ETag") != `"`+info.SHA256+`"` {
		t.Fatalf("download headers: %v", h)
	}
	status, h, body = e.download(m1, pkgPath(m1, info.SHA256)+"/signature")
	if status != http.StatusOK || !bytes.Equal(body, env) || h.Get("Content-Type") != "application/json" {
		t.Fatalf("signature: %d %q %v", status, body, h)
	}
	for name, tc := range map[string]struct {
		tm   testMachine
		path string
		want int
	}{
		"published but not assigned":        {m1, pkgPath(m1, info2.SHA256), http.StatusNotFound},
		"its signature neither":             {m1, pkgPath(m1, info2.SHA256) + "/signature", http.StatusNotFound},
		"unknown digest":                    {m1, pkgPath(m1, strings.Repeat("0", 64)), http.StatusNotFound},
		"not a digest":                      {m1, pkgPath(m1, "..%2f..%2farcserver.db"), http.StatusNotFound},
		"upper-case digest":                 {m1, pkgPath(m1, strings.ToUpper(info.SHA256)), http.StatusNotFound},
		"another machine's package":         {m2, pkgPath(m2, info.SHA256), http.StatusNotFound},
		"another machine's path, own token": {m2, pkgPath(m1, info.SHA256), http.StatusForbidden},
	} {
		t.Run(name, func(t *testing.T) {
			if status, _, _ := e.download(tc.tm, tc.path); status != tc.want {
				t.Fatalf("HTTP %d, want %d", status, tc.want)
			}
		})
	}
	// An operator token is no machine identity.
	if status, _, _, _ := e.raw(http.MethodGet, pkgPath(m1, info.SHA256), e.ownerT, "", nil); status != http.StatusUnauthorized {
		t.Fatalf("operator token downloads: %d", status)
	}
	// Once the assignment is gone, so is the download.
	if err := e.owner.RemoveExtension(ctx, m1.reg.MachineID, "monitor"); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := e.download(m1, pkgPath(m1, info.SHA256)); status != http.StatusNotFound {
		t.Fatalf("download after removal: %d", status)
	}
}
