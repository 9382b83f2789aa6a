package extd

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/signing"
)

// memCP is an in-memory stand-in for the control plane's machine API, so
// that reconcile steps can be driven one pass at a time. The end-to-end
// test in cmd/arcagent runs the real arcserver.
type memCP struct {
	mu       sync.Mutex
	desired  apiv1.DesiredState
	etag     int
	pkgs     map[string][]byte // sha256 → bytes served
	sigs     map[string][]byte
	statuses []apiv1.MachineStatus
	down     bool
}

func newMemCP() *memCP {
	return &memCP{pkgs: map[string][]byte{}, sigs: map[string][]byte{}}
}

var errDown = errors.New("control plane unreachable")

func (c *memCP) DesiredState(_ context.Context, etag string) (*apiv1.DesiredState, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return nil, "", errDown
	}
	tag := string(rune('a' + c.etag))
	if etag == tag {
		return nil, etag, nil
	}
	d := c.desired
	d.Extensions = append([]apiv1.ExtensionSpec{}, c.desired.Extensions...)
	return &d, tag, nil
}

func (c *memCP) PutStatus(_ context.Context, st apiv1.MachineStatus) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return errDown
	}
	// What the server would answer 400 to fails here too.
	if err := controlplane.ValidateStatus(&st); err != nil {
		return err
	}
	c.statuses = append(c.statuses, st)
	return nil
}

func (c *memCP) DownloadPackage(_ context.Context, sha string, w io.Writer, max int64) (int64, error) {
	c.mu.Lock()
	b, ok := c.pkgs[sha]
	down := c.down
	c.mu.Unlock()
	if down {
		return 0, errDown
	}
	if !ok {
		return 0, errors.New("404")
	}
	if int64(len(b)) > max {
		return 0, errors.New("too large")
	}
	n, err := w.Write(b)
	return int64(n), err
}

func (c *memCP) PackageSignature(_ context.Context, sha string, _ int64) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return nil, errDown
	}
	s, ok := c.sigs[sha]
	if !ok {
		return nil, errors.New("404")
	}
	return s, nil
}

// assign sets the desired extensions (a new ETag).
func (c *memCP) assign(specs ...apiv1.ExtensionSpec) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.desired.Extensions = specs
	c.etag++
}

func (c *memCP) lastStatus(t testing.TB, name string) apiv1.ExtensionStatus {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.statuses) == 0 {
		t.Fatal("no status was reported")
	}
	for _, e := range c.statuses[len(c.statuses)-1].Extensions {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("the last status report does not list %s: %+v", name, c.statuses[len(c.statuses)-1])
	return apiv1.ExtensionStatus{}
}

// env is a scratch root with a trusted publisher key.
type env struct {
	t       testing.TB
	l       layout.Layout
	cp      *memCP
	m       *Manager
	signer  *signing.KeyPair
	journal string
}

const (
	pub = "Contoso.Test"
	typ = "Handler"
)

func trustOpts() []signing.TrustOption {
	if os.Geteuid() == 0 {
		return nil
	}
	return []signing.TrustOption{signing.AllowNonRootOwner(nil)}
}

func newEnv(t *testing.T) *env { return newEnvB(t) }

func newEnvB(t testing.TB) *env {
	t.Helper()
	root := t.TempDir()
	l := layout.New(root)
	kp, err := signing.GenerateKey(signing.AlgECDSAP256, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(l.TrustDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := signing.AddTrustedKey(context.Background(), l.TrustDir(), signing.AddKeyOptions{Name: "contoso", PublicKeyPEM: kp.PublicPEM, Publishers: []string{pub}}, trustOpts()...); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, l: l, cp: newMemCP(), signer: kp, journal: filepath.Join(root, "journal")}
	e.m = New(Options{Layout: l, Trust: func() (*signing.TrustStore, error) { return signing.LoadTrustStore(l.TrustDir(), trustOpts()...) },
		CgroupRoot: filepath.Join(root, "no-cgroup")})
	return e
}

// publish builds and signs the test handler as publisher/type/version with
// signer and serves it; it returns the spec that assigns it.
func (e *env) publish(name, publisher, typ, version string, signer *signing.KeyPair) apiv1.ExtensionSpec {
	e.t.Helper()
	ctx := context.Background()
	out := e.t.TempDir()
	p := signing.Package{Publisher: publisher, Type: typ, Version: version}
	built, err := extensions.BuildPackage(ctx, extensions.BuildOptions{Dir: "testdata/handler", Package: p, OutDir: out})
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := signing.ParseSigner(signer.PrivatePEM, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	env, _, err := extensions.SignPackage(ctx, built.Path, p, s)
	if err != nil {
		e.t.Fatal(err)
	}
	data, err := os.ReadFile(built.Path)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.serve(name, p, data, env)
}

func (e *env) serve(name string, p signing.Package, data, envelope []byte) apiv1.ExtensionSpec {
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	e.cp.mu.Lock()
	e.cp.pkgs[sha], e.cp.sigs[sha] = data, envelope
	e.cp.mu.Unlock()
	return apiv1.ExtensionSpec{Name: name, Publisher: p.Publisher, Type: p.Type, Version: p.Version, PackageSHA256: sha,
		PackageSize: int64(len(data)), Settings: map[string]any{"journal": e.journal}}
}

// pass runs one reconcile pass against the in-memory control plane.
func (e *env) pass() Outcome {
	e.t.Helper()
	d, tag, err := e.cp.DesiredState(context.Background(), "")
	if err != nil {
		d = nil
	}
	out, err := e.m.Reconcile(context.Background(), e.cp, d, tag)
	if err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
	return out
}

// journalLines returns and clears the handler's journal.
func (e *env) journalLines() []string {
	e.t.Helper()
	b, err := os.ReadFile(e.journal)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	_ = os.Remove(e.journal)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func (e *env) config(settings map[string]any) {
	e.t.Helper()
	b, _ := json.Marshal(settings)
	if err := os.MkdirAll(filepath.Dir(e.l.LocalConfig()), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(e.l.LocalConfig(), b, 0o640); err != nil {
		e.t.Fatal(err)
	}
}

// extensionsDirEntries lists what is under the extensions directory.
func (e *env) extensionsDirEntries() []string {
	var out []string
	_ = filepath.Walk(e.l.ExtensionsDir(), func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != e.l.ExtensionsDir() {
			rel, _ := filepath.Rel(e.l.ExtensionsDir(), p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// hostileZip is a package whose archive has an entry leaving the tree.
func hostileZip(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range map[string]string{"HandlerManifest.json": mustRead(t, "testdata/handler/HandlerManifest.json"), "../../escape.sh": "#!/bin/sh\n"} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustRead(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func expectation() signing.Expectation {
	return signing.Expectation{Publisher: pub, Type: typ, Version: "1.0.0"}
}

func errorsIs(err error, target error) bool { return errors.Is(err, target) }
