package extd

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/extensions"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/signing"
)

func wantJournal(t *testing.T, e *env, want ...string) {
	t.Helper()
	if got := e.journalLines(); !slices.Equal(got, want) {
		t.Fatalf("handler commands ran:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func treeName(v string) string { return pub + "." + typ + "-" + v }

// TestLifecycle: install → enable, nothing to do, settings change (next
// sequence number), update (UpdateWithInstall), removal.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	v1 := e.publish("test", pub, typ, "1.0.0", e.signer)
	v1.Settings["message"] = "first"
	e.cp.assign(v1)
	e.pass()
	wantJournal(t, e, "install 0 1.0.0", "enable 0 1.0.0")
	// Every transition reaches the control plane, not only the end.
	var ops []string
	for _, r := range e.cp.statuses {
		for _, x := range r.Extensions {
			ops = append(ops, x.State+"/"+x.Operation)
		}
	}
	if !slices.Contains(ops, "Transitioning/Download") || !slices.Contains(ops, "Transitioning/Install") || !slices.Contains(ops, "Transitioning/Enable") || ops[len(ops)-1] != "Succeeded/enable" {
		t.Errorf("reported transitions: %v", ops)
	}
	st := e.cp.lastStatus(t, "test")
	if st.State != apiv1.ExtensionSucceeded || st.Version != "1.0.0" || st.Message != "enable first" || st.Sequence != 0 {
		t.Fatalf("status after install: %+v", st)
	}
	rec, _, err := extensions.ReadInstallRecord(e.l.ExtensionsDir(), treeName("1.0.0"))
	if err != nil || rec.Signer != "contoso" {
		t.Fatalf("install record: %+v %v", rec, err)
	}
	for _, p := range []string{"HandlerEnvironment.json", "config/0.settings", "status/0.status"} {
		if _, err := os.Stat(filepath.Join(e.l.ExtensionsDir(), treeName("1.0.0"), p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}

	// Nothing to do: no command runs, nothing is reported again.
	n := len(e.cp.statuses)
	if out := e.pass(); out.Changed {
		t.Error("a pass with nothing to do reported a change")
	}
	wantJournal(t, e)
	if len(e.cp.statuses) != n {
		t.Errorf("a pass with nothing to do sent status again")
	}

	// New settings: the next sequence number, enable only.
	v1.Settings = map[string]any{"journal": e.journal, "message": "second"}
	e.cp.assign(v1)
	e.pass()
	wantJournal(t, e, "enable 1 1.0.0")
	if st := e.cp.lastStatus(t, "test"); st.Sequence != 1 || st.Message != "enable second" {
		t.Fatalf("status after the settings change: %+v", st)
	}

	// A new version: the Azure agent's update sequence.
	v2 := e.publish("test", pub, typ, "1.1.0", e.signer)
	v2.Settings = v1.Settings
	e.cp.assign(v2)
	e.pass()
	wantJournal(t, e, "disable 1 1.0.0", "update 1 1.1.0", "uninstall 1 1.0.0", "install 1 1.1.0", "enable 1 1.1.0")
	if st := e.cp.lastStatus(t, "test"); st.Version != "1.1.0" || st.State != apiv1.ExtensionSucceeded {
		t.Fatalf("status after update: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(e.l.ExtensionsDir(), treeName("1.0.0"))); !os.IsNotExist(err) {
		t.Errorf("the old version's tree is still there: %v", err)
	}
	if _, _, err := extensions.ReadInstallRecord(e.l.ExtensionsDir(), treeName("1.0.0")); err == nil {
		t.Error("the old version's install record is still there")
	}

	// Removal: disable → uninstall → tree and record gone.
	e.cp.assign()
	e.pass()
	wantJournal(t, e, "disable 1 1.1.0", "uninstall 1 1.1.0")
	if got := e.extensionsDirEntries(); slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, pub) || strings.Contains(s, "/"+pub) }) {
		t.Errorf("left under the extensions directory after removal: %v", got)
	}
	if st := e.cp.statuses[len(e.cp.statuses)-1]; len(st.Extensions) != 0 {
		t.Errorf("removed extension still reported: %+v", st.Extensions)
	}
}

// TestRefusals: each refusal is reported Failed with its reason, and
// nothing is written under the extensions directory.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config map[string]any
		spec   func(e *env) apiv1.ExtensionSpec
		want   string
	}{
		{"blocklist beats allowlist", map[string]any{"extensions.allowlist": []string{pub + "/" + typ}, "extensions.blocklist": []string{pub + "/" + typ}}, nil,
			"blocked by extensions.blocklist; to change it, run on the machine: arcagent config set extensions.blocklist --remove " + pub + "/" + typ},
		{"not on the allowlist", map[string]any{"extensions.allowlist": []string{"Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"}}, nil,
			"arcagent config set extensions.allowlist --add " + pub + "/" + typ},
		{"Allow/None", map[string]any{"extensions.allowlist": []string{"Allow/None"}}, nil, "Allow/None"},
		{"extension manager off", map[string]any{"extensions.enabled": false}, nil, "arcagent config set extensions.enabled true"},
		{"monitor mode", map[string]any{"config.mode": "monitor"}, nil, "arcagent config set config.mode full"},
		{"unsigned", nil, func(e *env) apiv1.ExtensionSpec {
			s := e.publish("test", pub, typ, "1.0.0", e.signer)
			e.cp.sigs[s.PackageSHA256] = []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":[]}`)
			return s
		}, "ARC01"},
		{"untrusted key", nil, func(e *env) apiv1.ExtensionSpec {
			other, _ := signing.GenerateKey(signing.AlgECDSAP256, nil)
			return e.publish("test", pub, typ, "1.0.0", other)
		}, "trust"},
		{"signed for another publisher", nil, func(e *env) apiv1.ExtensionSpec {
			s := e.publish("test", "Fabrikam.Other", typ, "1.0.0", e.signer)
			s.Publisher = pub
			return s
		}, "Fabrikam.Other"},
		{"digest mismatch", nil, func(e *env) apiv1.ExtensionSpec {
			s := e.publish("test", pub, typ, "1.0.0", e.signer)
			b := e.cp.pkgs[s.PackageSHA256]
			b = append([]byte{}, b...)
			b[len(b)-1] ^= 1
			e.cp.pkgs[s.PackageSHA256] = b
			return s
		}, "sha256"},
		{"hostile archive", nil, func(e *env) apiv1.ExtensionSpec {
			p := signing.Package{Publisher: pub, Type: typ, Version: "1.0.0"}
			path := filepath.Join(t.TempDir(), p.FileName())
			data := hostileZip(t)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, _ := signing.ParseSigner(e.signer.PrivatePEM, nil)
			envl, _, err := signing.SignPackage(context.Background(), path, p, s)
			if err != nil {
				t.Fatal(err)
			}
			return e.serve("test", p, data, envl)
		}, "ARC0105"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.config != nil {
				e.config(tc.config)
			}
			var spec apiv1.ExtensionSpec
			if tc.spec != nil {
				spec = tc.spec(e)
			} else {
				spec = e.publish("test", pub, typ, "1.0.0", e.signer)
			}
			e.cp.assign(spec)
			e.pass()
			st := e.cp.lastStatus(t, "test")
			if st.State != apiv1.ExtensionFailed || !strings.Contains(st.Message, tc.want) {
				t.Fatalf("status %+v, want Failed naming %q", st, tc.want)
			}
			if got := e.extensionsDirEntries(); len(got) != 0 {
				t.Errorf("written under the extensions directory: %v", got)
			}
			wantJournal(t, e)
		})
	}
}
