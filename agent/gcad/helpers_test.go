package gcad

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/signing"
)

// memCP is an in-memory stand-in for the control plane's machine API, so
// that passes can be driven one at a time. The end-to-end test in
// cmd/arcagent runs the real arcserver.
type memCP struct {
	mu        sync.Mutex
	desired   apiv1.DesiredState
	etag      int
	pkgs      map[string][]byte
	sigs      map[string][]byte
	statuses  []apiv1.MachineStatus
	downloads int
	down      bool
}

func newMemCP() *memCP { return &memCP{pkgs: map[string][]byte{}, sigs: map[string][]byte{}} }

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
	d.GuestConfigurationAssignments = append([]apiv1.GuestConfigurationAssignment{}, c.desired.GuestConfigurationAssignments...)
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
	c.downloads++
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

func (c *memCP) assign(as ...apiv1.GuestConfigurationAssignment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.desired.GuestConfigurationAssignments = as
	c.etag++
}

func (c *memCP) setDown(v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = v
}

// last returns the last status report and the status of name in it.
func (c *memCP) last(t testing.TB, name string) (apiv1.MachineStatus, apiv1.GuestConfigurationStatus) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.statuses) == 0 {
		t.Fatal("no status was reported")
	}
	ms := c.statuses[len(c.statuses)-1]
	for _, s := range ms.GuestConfiguration {
		if s.Name == name {
			return ms, s
		}
	}
	t.Fatalf("the last status report does not list %s: %+v", name, ms)
	return ms, apiv1.GuestConfigurationStatus{}
}

const (
	pub  = "Contoso.Baseline"
	name = "SSH"
)

// world is a machine root with a trusted publisher key, a weak
// sshd_config and a world-readable /etc/shadow.
type world struct {
	t      testing.TB
	root   string
	l      layout.Layout
	cp     *memCP
	d      *Daemon
	signer *signing.KeyPair
}

func trustOpts() []signing.TrustOption {
	if os.Geteuid() == 0 {
		return nil
	}
	return []signing.TrustOption{signing.AllowNonRootOwner(nil)}
}

func newWorld(t testing.TB) *world {
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
	files := map[string]string{
		"etc/passwd":          "root:x:0:0:root:/root:/bin/bash\n",
		"etc/group":           "root:x:0:\nshadow:x:42:\n",
		"etc/shadow":          "root:*:19000:0:99999:7:::\n",
		"etc/ssh/sshd_config": "PermitRootLogin yes\nPasswordAuthentication yes\n",
		"etc/motd":            "welcome\n",
	}
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w := &world{t: t, root: root, l: l, cp: newMemCP(), signer: kp}
	w.d = New(Options{Layout: l, Trust: func() (*signing.TrustStore, error) { return signing.LoadTrustStore(l.TrustDir(), trustOpts()...) },
		CgroupRoot: filepath.Join(root, "no-cgroup")})
	return w
}

// baseline is the test document: /etc/shadow at most 0640, sshd_config
// pinned to a hardened content (parameter rootLogin).
const baseline = `apiVersion: arcagent.dev/guestconfig/v1
name: SSH
version: 1.0.0
parameters:
  - name: rootLogin
    default: "no"
resources:
  - id: shadow-mode
    title: /etc/shadow is not world-readable
    severity: high
    file:
      path: /etc/shadow
      maxMode: "0640"
  - id: sshd-config
    title: sshd is hardened
    file:
      path: /etc/ssh/sshd_config
      content: "PermitRootLogin ${rootLogin}\nPasswordAuthentication no\n"
`

// zipOf builds a package zip holding files.
func zipOf(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fw, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write([]byte(files[n]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// publish signs a package holding doc (as guest configuration, with
// signer) and serves it; it returns an assignment of it.
func (w *world) publish(assignment, publisher, version, doc string, mode string, signer *signing.KeyPair) apiv1.GuestConfigurationAssignment {
	w.t.Helper()
	data := zipOf(w.t, map[string]string{"guestconfig.yaml": doc})
	p := signing.Package{Publisher: publisher, Type: name, Version: version}
	path := filepath.Join(w.t.TempDir(), p.FileName())
	if err := os.WriteFile(path, data, 0o644); err != nil {
		w.t.Fatal(err)
	}
	var env []byte
	if signer != nil {
		s, err := signing.ParseSigner(signer.PrivatePEM, nil)
		if err != nil {
			w.t.Fatal(err)
		}
		env, _, err = signing.SignPackageKind(context.Background(), signing.KindGuestConfig, path, p, s)
		if err != nil {
			w.t.Fatal(err)
		}
	} else {
		env = []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`)
	}
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	w.cp.mu.Lock()
	w.cp.pkgs[sha], w.cp.sigs[sha] = data, env
	w.cp.mu.Unlock()
	return apiv1.GuestConfigurationAssignment{Name: assignment, Policy: publisher + "." + name, Version: version, Mode: mode,
		PackageSHA256: sha, PackageSize: int64(len(data))}
}

// pass polls the in-memory control plane and runs one pass.
func (w *world) pass(all bool) Outcome {
	w.t.Helper()
	d, tag, err := w.cp.DesiredState(context.Background(), "")
	if err != nil {
		d = nil
	}
	out, err := w.d.Pass(context.Background(), w.cp, d, tag, PassOptions{All: all})
	if err != nil {
		w.t.Fatalf("pass: %v", err)
	}
	return out
}

func (w *world) config(settings map[string]any) {
	w.t.Helper()
	b, _ := json.Marshal(settings)
	if err := os.MkdirAll(filepath.Dir(w.l.LocalConfig()), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(w.l.LocalConfig(), b, 0o640); err != nil {
		w.t.Fatal(err)
	}
}

// hashTree hashes every file, link and mode under dir.
func hashTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		v := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			v += " -> " + l
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			v += " " + hex.EncodeToString(s[:])
		}
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t testing.TB, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed: %q → %q", k, v, after[k])
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s appeared", k)
		}
	}
}

func (w *world) read(p string) string {
	w.t.Helper()
	b, err := os.ReadFile(filepath.Join(w.root, p))
	if err != nil {
		w.t.Fatal(err)
	}
	return string(b)
}

func (w *world) mode(p string) fs.FileMode {
	w.t.Helper()
	fi, err := os.Stat(filepath.Join(w.root, p))
	if err != nil {
		w.t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func resourceOf(t testing.TB, s apiv1.GuestConfigurationStatus, id string) apiv1.GuestConfigurationResourceStatus {
	t.Helper()
	for _, r := range s.Resources {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("status of %s has no resource %s: %+v", s.Name, id, s)
	return apiv1.GuestConfigurationResourceStatus{}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
