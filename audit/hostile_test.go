//go:build !windows

package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/audit/fixture"
	"github.com/arcagent/arcagent/reports"
)

// collectNoHang runs Collect and fails the test if it has not returned
// after 10s: a hang detector for FIFOs, not a performance assertion.
func collectNoHang(t *testing.T, opts Options) *Facts {
	t.Helper()
	type out struct {
		f   *Facts
		err error
	}
	done := make(chan out, 1)
	go func() {
		f, err := Collect(context.Background(), opts)
		done <- out{f, err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			t.Fatal(o.err)
		}
		return o.f
	case <-time.After(10 * time.Second):
		t.Fatal("Collect hung on the hostile tree")
		return nil
	}
}

func replace(t *testing.T, p string, make func(string) error) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
	if err := make(p); err != nil {
		t.Fatal(err)
	}
}

func symlinkTo(target string) func(string) error {
	return func(p string) error { return os.Symlink(target, p) }
}

func fifo(p string) error { return syscall.Mkfifo(p, 0o644) }

func collectorError(f *Facts, path, text string) bool {
	for _, e := range f.Errors {
		if e.Path == path && strings.Contains(e.Error, text) {
			return true
		}
	}
	return false
}

func TestHostileTree(t *testing.T) {
	hostDir := t.TempDir()
	hostID := filepath.Join(hostDir, "machine-id")
	if err := os.WriteFile(hostID, []byte("the-auditing-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostDir, "connect.json"), []byte(`{"onboarding-token": "ot_host_secret_123"}`), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root string)
		check func(t *testing.T, f *Facts)
	}{
		{"passwd is a link to /dev/zero", func(t *testing.T, root string) {
			replace(t, filepath.Join(root, "etc/passwd"), symlinkTo("/dev/zero"))
		}, func(t *testing.T, f *Facts) {
			if !collectorError(f, "etc/passwd", "etc/passwd is a symbolic link") {
				t.Errorf("errors = %+v", f.Errors)
			}
			// Not judged by this host's accounts: the owner rules error.
			if f.Files.Available || !f.Files.Error || !strings.Contains(f.Files.Reason, "etc/passwd is a symbolic link") {
				t.Errorf("files = %+v", f.Files.Section)
			}
			if f.Host.Available || !f.Host.Error {
				t.Errorf("host = %+v", f.Host.Section)
			}
		}},
		{"passwd is a FIFO", func(t *testing.T, root string) {
			replace(t, filepath.Join(root, "etc/passwd"), fifo)
		}, func(t *testing.T, f *Facts) {
			if !collectorError(f, "etc/passwd", "etc/passwd is a FIFO, not a regular file") {
				t.Errorf("errors = %+v", f.Errors)
			}
		}},
		{"localconfig is a FIFO", func(t *testing.T, root string) {
			replace(t, filepath.Join(root, layout.LocalConfig), fifo)
		}, func(t *testing.T, f *Facts) {
			if f.Config.Available || !f.Config.Error || !strings.Contains(f.Config.Reason, "var/opt/azcmagent/localconfig.json is a FIFO") {
				t.Errorf("config = %+v", f.Config.Section)
			}
		}},
		{"localconfig over the limit", func(t *testing.T, root string) {
			big := `{"config.mode": "full", "x.pad": "` + strings.Repeat("a", 2<<20) + `"}`
			replace(t, filepath.Join(root, layout.LocalConfig), func(p string) error { return os.WriteFile(p, []byte(big), 0o640) })
		}, func(t *testing.T, f *Facts) {
			if f.Config.Available || !strings.Contains(f.Config.Reason, "larger than the 1 MiB read limit") {
				t.Errorf("config = %+v", f.Config.Section)
			}
		}},
		{"absolute links leave the root", func(t *testing.T, root string) {
			replace(t, filepath.Join(root, "etc/machine-id"), symlinkTo(hostID))
			replace(t, filepath.Join(root, "etc/os-release"), symlinkTo("/etc/os-release"))
			replace(t, filepath.Join(root, "home"), symlinkTo(hostDir))
			replace(t, filepath.Join(root, "tmp"), symlinkTo(hostDir))
		}, func(t *testing.T, f *Facts) {
			if f.Host.MachineID != "" {
				t.Errorf("the host's machine-id was read: %q", f.Host.MachineID)
			}
			if f.Host.OS != "" {
				t.Errorf("the host's os-release was read: %q", f.Host.OS)
			}
			if len(f.Secrets.Found) != 0 {
				t.Errorf("secrets of the host were found: %+v", f.Secrets.Found)
			}
			if !collectorError(f, "etc/machine-id", "symbolic link") {
				t.Errorf("errors = %+v", f.Errors)
			}
		}},
		{"the agent's directory is an absolute link", func(t *testing.T, root string) {
			host := t.TempDir()
			fixture.New(t, host).DefaultInstall()
			replace(t, filepath.Join(root, "opt/azcmagent"), symlinkTo(filepath.Join(host, "opt/azcmagent")))
			replace(t, filepath.Join(root, "var/opt/azcmagent"), symlinkTo(filepath.Join(host, "var/opt/azcmagent")))
		}, func(t *testing.T, f *Facts) {
			if f.Agent.Installed {
				t.Error("the agent of the linked tree was audited")
			}
			if !collectorError(f, "opt/azcmagent/bin/arcagent", "leads outside the audited root") {
				t.Errorf("errors = %+v", f.Errors)
			}
		}},
		{"secret scan skips what it refuses", func(t *testing.T, root string) {
			big := "onboarding-token: " + strings.Repeat("a", 2<<20) + "\n"
			replace(t, filepath.Join(root, "root/big.txt"), func(p string) error { return os.WriteFile(p, []byte(big), 0o600) })
			replace(t, filepath.Join(root, "root/zero.txt"), symlinkTo("/dev/zero"))
			replace(t, filepath.Join(root, "root/pipe.json"), fifo)
			replace(t, filepath.Join(root, "root/connect.json"), func(p string) error {
				return os.WriteFile(p, []byte(`{"onboarding-token": "ot_3f9a8c7d6e5b4a39"}`), 0o600)
			})
		}, func(t *testing.T, f *Facts) {
			if len(f.Secrets.Found) != 1 || f.Secrets.Found[0].Path != "root/connect.json" {
				t.Errorf("found = %+v", f.Secrets.Found)
			}
			if f.Secrets.SkippedCount != 3 || f.Secrets.Skipped[0].Path != "root/big.txt" || !strings.Contains(f.Secrets.Skipped[0].Reason, "1 MiB read limit") {
				t.Errorf("skipped = %d %+v", f.Secrets.SkippedCount, f.Secrets.Skipped)
			}
			if !collectorError(f, "root/big.txt", "not scanned") {
				t.Errorf("errors = %+v", f.Errors)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			fixture.New(t, root).DefaultInstall()
			tc.setup(t, root)
			tc.check(t, collectNoHang(t, Options{Root: root, Now: testNow}))
		})
	}
}

// A refused localconfig.json makes the configuration rules error, naming
// the path, rather than pass on defaults or hang.
func TestHostileLocalConfigIsRuleError(t *testing.T) {
	root := t.TempDir()
	fixture.New(t, root).DefaultInstall()
	replace(t, filepath.Join(root, layout.LocalConfig), fifo)
	type out struct {
		res *Result
		err error
	}
	rs := builtinRules(t)
	done := make(chan out, 1)
	go func() {
		res, err := Run(context.Background(), RunOptions{Collect: Options{Root: root, Now: testNow}, Rules: rs, Select: Selection{Rules: []string{"ARC-T0-001"}}})
		done <- out{res, err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			t.Fatal(o.err)
		}
		r := o.res.Report
		if len(r.Results) != 1 || r.Results[0].Status != reports.StatusError || !strings.Contains(r.Results[0].Reason, "localconfig.json is a FIFO") {
			t.Errorf("results = %+v", r.Results)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the audit hung on a FIFO")
	}
}

// A planned file that is a FIFO is refused at once.
func TestPlannedConfigFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "planned.json")
	if err := fifo(p); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Collect(context.Background(), Options{Root: t.TempDir(), PlannedConfig: p})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "FIFO") {
			t.Errorf("err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the audit hung on a FIFO")
	}
}

type ctxKey struct{}

// ctxReleases records the context it is called with.
type ctxReleases struct{ got context.Context }

func (r *ctxReleases) CollectReleases(ctx context.Context, f *Facts) (ReleasesFacts, error) {
	r.got = ctx
	return ReleasesFacts{Section: Section{Available: true}, Extensions: []Currency{}}, nil
}

// The optional collectors run under the caller's context on every path
// (installed agent, no agent, planned configuration), so that a cancelled
// audit stops asking the release source.
func TestOptionalCollectorsGetCallersContext(t *testing.T) {
	planned := filepath.Join(t.TempDir(), "planned.json")
	if err := os.WriteFile(planned, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	installed := t.TempDir()
	fixture.New(t, installed).DefaultInstall()
	for name, o := range map[string]Options{
		"installed": {Root: installed},
		"no agent":  {Root: t.TempDir()},
		"planned":   {Root: t.TempDir(), PlannedConfig: planned},
	} {
		t.Run(name, func(t *testing.T) {
			rel := &ctxReleases{}
			o.Releases, o.Now = rel, testNow
			ctx := context.WithValue(context.Background(), ctxKey{}, name)
			if _, err := Collect(ctx, o); err != nil {
				t.Fatal(err)
			}
			if rel.got == nil || rel.got.Value(ctxKey{}) != name {
				t.Errorf("the release source got %v, not the caller's context", rel.got)
			}
		})
	}
}

// extensionNamed returns the fact of the installed extension dir name.
func extensionNamed(t *testing.T, f *Facts, name string) ExtensionFact {
	t.Helper()
	for _, x := range f.Extensions.Installed {
		if x.Path == layout.Rel(layout.ExtensionsDir+"/"+name) {
			return x
		}
	}
	t.Fatalf("extension %s not listed: %+v", name, f.Extensions.Installed)
	return ExtensionFact{}
}

func hasChange(x ExtensionFact, change string) bool {
	for _, c := range x.Tamper.Changed {
		if c == change {
			return true
		}
	}
	return false
}

// Hostile installed extensions and trust stores: links to the host, FIFOs
// and /dev/zero under var/lib/waagent and var/opt/azcmagent/trust. The
// audit finishes, reports tampering or an error naming the path, and never
// reads outside the root.
func TestHostileExtensionsAndTrust(t *testing.T) {
	const ext = "Contoso.Monitoring.StatusReporter-1.0.0"
	extDir := func(root string) string { return filepath.Join(root, layout.ExtensionsDir, ext) }
	record := func(root, file string) string {
		return filepath.Join(root, layout.ExtensionsDir, ".arcagent", ext, file)
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root string)
		check func(t *testing.T, root string, f *Facts)
	}{
		{"a directory of the extension links to a copy on the host", func(t *testing.T, root string) {
			// The host copy is byte for byte the installed file: only a
			// read outside the root could find it unchanged.
			host := filepath.Join(t.TempDir(), "bin")
			if err := os.MkdirAll(host, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(extDir(root), "bin/handler.sh"), filepath.Join(host, "handler.sh")); err != nil {
				t.Fatal(err)
			}
			replace(t, filepath.Join(extDir(root), "bin"), symlinkTo(host))
		}, func(t *testing.T, root string, f *Facts) {
			x := extensionNamed(t, f, ext)
			if !x.Tamper.Checked || x.Tamper.Clean || !hasChange(x, "changed: bin") || !hasChange(x, "changed: bin/handler.sh") {
				t.Errorf("tamper = %+v", x.Tamper)
			}
		}},
		{"an installed file is an absolute link to a host file", func(t *testing.T, root string) {
			replace(t, filepath.Join(extDir(root), "HandlerManifest.json"), symlinkTo("/etc/hostname"))
		}, func(t *testing.T, root string, f *Facts) {
			x := extensionNamed(t, f, ext)
			if !hasChange(x, "changed: HandlerManifest.json") {
				t.Errorf("tamper = %+v", x.Tamper)
			}
			if x.Manifest.Valid || !strings.Contains(x.Manifest.Error, "HandlerManifest.json is a symbolic link") {
				t.Errorf("manifest = %+v", x.Manifest)
			}
		}},
		{"FIFOs in the extension tree", func(t *testing.T, root string) {
			replace(t, filepath.Join(extDir(root), "bin/handler.sh"), fifo)
			replace(t, filepath.Join(extDir(root), "added.pipe"), fifo)
		}, func(t *testing.T, root string, f *Facts) {
			x := extensionNamed(t, f, ext)
			if !hasChange(x, "changed: bin/handler.sh") || !hasChange(x, "added: added.pipe") {
				t.Errorf("tamper = %+v", x.Tamper)
			}
		}},
		{"the install record is a FIFO", func(t *testing.T, root string) {
			replace(t, record(root, "manifest.json"), fifo)
		}, func(t *testing.T, root string, f *Facts) {
			x := extensionNamed(t, f, ext)
			if x.Signature.Verified || x.Tamper.Checked || !strings.Contains(x.Signature.Reason, ".arcagent/"+ext+"/manifest.json is a FIFO") {
				t.Errorf("signature = %+v, tamper = %+v", x.Signature, x.Tamper)
			}
			// A planted record is tampering, not a tree this agent did
			// not install (which would be only a medium finding).
			if !x.Managed {
				t.Errorf("a FIFO as the record made the tree unmanaged: %q", x.ManagedReason)
			}
		}},
		{"the record directory links to a valid record on the host", func(t *testing.T, root string) {
			hostRec := filepath.Join(t.TempDir(), ext)
			if err := os.Rename(filepath.Dir(record(root, "manifest.json")), hostRec); err != nil {
				t.Fatal(err)
			}
			replace(t, filepath.Dir(record(root, "manifest.json")), symlinkTo(hostRec))
		}, func(t *testing.T, root string, f *Facts) {
			x := extensionNamed(t, f, ext)
			if x.Signature.Verified || x.Tamper.Checked || !x.Managed {
				t.Errorf("record read through a link out of the root: managed %v, signature %+v, tamper %+v", x.Managed, x.Signature, x.Tamper)
			}
		}},
		{"the recorded envelope links to /dev/zero", func(t *testing.T, root string) {
			replace(t, record(root, "envelope.sig.json"), symlinkTo("/dev/zero"))
		}, func(t *testing.T, root string, f *Facts) {
			x := extensionNamed(t, f, ext)
			if x.Signature.Verified || !strings.Contains(x.Signature.Reason, "envelope.sig.json is a symbolic link") {
				t.Errorf("signature = %+v", x.Signature)
			}
		}},
		{"a trust store file is a FIFO", func(t *testing.T, root string) {
			replace(t, filepath.Join(root, layout.TrustDir, "evil.key.json"), fifo)
		}, func(t *testing.T, root string, f *Facts) {
			if !collectorError(f, "var/opt/azcmagent/trust", "evil.key.json: is not a regular file") {
				t.Errorf("errors = %+v", f.Errors)
			}
			if x := extensionNamed(t, f, ext); x.Signature.Verified || !strings.Contains(x.Signature.Reason, "trust store was refused") {
				t.Errorf("signature = %+v", x.Signature)
			}
		}},
		{"a trust entry links to /dev/zero", func(t *testing.T, root string) {
			replace(t, filepath.Join(root, layout.TrustDir, "contoso.key.json"), symlinkTo("/dev/zero"))
		}, func(t *testing.T, root string, f *Facts) {
			if !collectorError(f, "var/opt/azcmagent/trust", "contoso.key.json: is a symbolic link") {
				t.Errorf("errors = %+v", f.Errors)
			}
		}},
		{"the trust store is reached through an absolute link", func(t *testing.T, root string) {
			// A host trust store trusting the same key: following the link
			// would verify the extension with keys outside the image.
			hostVar := filepath.Join(t.TempDir(), "azcmagent")
			if err := os.Rename(filepath.Join(root, "var/opt/azcmagent"), hostVar); err != nil {
				t.Fatal(err)
			}
			replace(t, filepath.Join(root, "var/opt/azcmagent"), symlinkTo(hostVar))
		}, func(t *testing.T, root string, f *Facts) {
			if !collectorError(f, "var/opt/azcmagent/trust", "leads outside the audited root") {
				t.Errorf("errors = %+v", f.Errors)
			}
			if x := extensionNamed(t, f, ext); x.Signature.Verified {
				t.Errorf("verified with a trust store outside the root: %+v", x.Signature)
			}
		}},
		{"the extensions directory is an absolute link", func(t *testing.T, root string) {
			hostExt := filepath.Join(t.TempDir(), "waagent")
			if err := os.Rename(filepath.Join(root, layout.ExtensionsDir), hostExt); err != nil {
				t.Fatal(err)
			}
			replace(t, filepath.Join(root, layout.ExtensionsDir), symlinkTo(hostExt))
		}, func(t *testing.T, root string, f *Facts) {
			if len(f.Extensions.Installed) != 0 || !f.Extensions.Error {
				t.Errorf("extensions of the host were audited: %+v", f.Extensions)
			}
			if !collectorError(f, "var/lib/waagent", "leads outside the audited root") {
				t.Errorf("errors = %+v", f.Errors)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tr := fixture.New(t, root)
			tr.DefaultInstall()
			pub := tr.TrustPublisher("contoso", "Contoso.Monitoring")
			if got := tr.InstallExtension(pub, "Contoso.Monitoring", "StatusReporter", "1.0.0"); got != ext {
				t.Fatalf("installed %s", got)
			}
			tc.setup(t, root)
			tc.check(t, root, collectNoHang(t, Options{Root: root, Now: testNow}))
		})
	}
}
