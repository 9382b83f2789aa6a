package controlplane_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/sealed"
	"github.com/arcagent/arcagent/signing"
)

// publish publishes a fresh signed package of p.
func (e *env) publish(p signing.Package) apiv1.PackageInfo {
	e.t.Helper()
	zb, env := signedPackage(e.t, p, p.Name())
	info, err := e.owner.PublishPackage(context.Background(), apiv1.PublishPackageRequest{Package: zb, Envelope: env})
	if err != nil {
		e.t.Fatal(err)
	}
	return info
}

func TestExtensionAssignments(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "web", "db")
	tm := e.mustRegister(sub, "web", "web01")
	id := tm.reg.MachineID
	v1 := e.publish(statusReporter)
	v2 := e.publish(signing.Package{Publisher: statusReporter.Publisher, Type: statusReporter.Type, Version: "1.1.0"})
	etagNow := func() string {
		t.Helper()
		_, etag, err := tm.m.DesiredState(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		return etag
	}
	set := func(name string, req apiv1.SetExtensionRequest) apiv1.ExtensionSpec {
		t.Helper()
		spec, err := e.owner.SetExtension(ctx, id, name, req)
		if err != nil {
			t.Fatalf("set %s: %v", name, err)
		}
		return spec
	}
	etag0 := etagNow()
	req := apiv1.SetExtensionRequest{Publisher: statusReporter.Publisher, Type: statusReporter.Type, Version: "1.0.0", Settings: map[string]any{"interval": 30.0}}
	spec := set("monitor", req)
	if spec.PackageSHA256 != v1.SHA256 || spec.PackageSize != v1.Size || spec.Name != "monitor" {
		t.Fatalf("spec %+v does not pin %+v", spec, v1)
	}
	etag1 := etagNow()
	if etag1 == etag0 {
		t.Fatal("assigning an extension did not change the ETag")
	}

	// The same spec again changes nothing: the agent's poll gets 304 and
	// the heartbeat names the same ETag.
	set("monitor", req)
	if doc, etag, err := tm.m.DesiredState(ctx, etag1); err != nil || doc != nil || etag != etag1 {
		t.Fatalf("after a no-op set: %v %q %v, want 304", doc, etag, err)
	}
	if hb, err := tm.m.Heartbeat(ctx, apiv1.HeartbeatRequest{}); err != nil || hb.DesiredStateETag != etag1 {
		t.Fatalf("heartbeat etag %q %v, want %q", hb.DesiredStateETag, err, etag1)
	}

	// Every change gives a new ETag, and the heartbeat tells of it.
	seen := map[string]string{etag0: "empty", etag1: "v1"}
	step := func(what string, f func()) {
		t.Helper()
		f()
		etag := etagNow()
		if prev, dup := seen[etag]; dup {
			t.Fatalf("%s: ETag %s is the one of %q", what, etag, prev)
		}
		seen[etag] = what
		if hb, _ := tm.m.Heartbeat(ctx, apiv1.HeartbeatRequest{}); hb.DesiredStateETag != etag {
			t.Fatalf("%s: heartbeat etag %q, want %q", what, hb.DesiredStateETag, etag)
		}
	}
	step("settings", func() { req.Settings = map[string]any{"interval": 60.0}; set("monitor", req) })
	step("version", func() { req.Version = "1.1.0"; set("monitor", req) })
	other := e.publish(signing.Package{Publisher: statusReporter.Publisher, Type: "Other", Version: "1.0.0"})
	// One extension of a kind per machine: a second name for it is refused.
	if _, err := e.owner.SetExtension(ctx, id, "alpha", req); !errcode.Is(err, apiv1.CodeConflict) || !strings.Contains(err.Error(), `as "monitor"`) {
		t.Fatalf("a second assignment of the same publisher and type: %v", err)
	}
	alpha := apiv1.SetExtensionRequest{Publisher: other.Publisher, Type: other.Type, Version: other.Version}
	step("second extension", func() { set("alpha", alpha) })
	doc, _, err := tm.m.DesiredState(ctx, "")
	if err != nil || len(doc.Extensions) != 2 || doc.Extensions[0].Name != "alpha" || doc.Extensions[1].Name != "monitor" || doc.Extensions[1].PackageSHA256 != v2.SHA256 || doc.Extensions[0].PackageSHA256 != other.SHA256 {
		t.Fatalf("desired state (want alpha, monitor@1.1.0 sorted): %+v %v", doc, err)
	}
	if doc.Extensions[1].Settings["interval"] != json.Number("60") {
		t.Fatalf("settings %v", doc.Extensions[1].Settings)
	}

	t.Run("list", func(t *testing.T) {
		vs, err := e.owner.ListExtensions(ctx, id)
		if err != nil || len(vs) != 2 || vs[0].Name != "alpha" || vs[1].Name != "monitor" {
			t.Fatalf("list: %+v %v", vs, err)
		}
		for _, v := range vs {
			if v.State != apiv1.ExtensionPending || v.Desired == nil || v.Reported != nil || !strings.Contains(v.Reason, "not reported") {
				t.Errorf("before any report: %+v", v)
			}
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			ext      string
			req      apiv1.SetExtensionRequest
			status   int
			code     errcode.Code
			contains string
		}{
			{"unpublished version", "monitor", apiv1.SetExtensionRequest{Publisher: statusReporter.Publisher, Type: statusReporter.Type, Version: "9.9"}, 404, apiv1.CodeNotFound, "arcagent fleet packages publish Contoso.Monitoring.StatusReporter-9.9.zip"},
			{"unknown publisher", "x", apiv1.SetExtensionRequest{Publisher: "Nobody", Type: "T", Version: "1"}, 404, apiv1.CodeNotFound, "not published"},
			{"bad name", "bad name!", req, 400, apiv1.CodeBadRequest, "extension name"},
			{"bad version", "x", apiv1.SetExtensionRequest{Publisher: "P", Type: "T", Version: "latest"}, 400, apiv1.CodeBadRequest, "version"},
			{"no publisher", "x", apiv1.SetExtensionRequest{Type: "T", Version: "1"}, 400, apiv1.CodeBadRequest, "publisher is required"},
			{"protected settings not an object", "x", apiv1.SetExtensionRequest{Publisher: "P", Type: "T", Version: "1", ProtectedSettings: json.RawMessage(`"secret"`)}, 400, apiv1.CodeBadRequest, "JSON object"},
			{"protected settings too large", "x", apiv1.SetExtensionRequest{Publisher: "P", Type: "T", Version: "1", ProtectedSettings: json.RawMessage(`{"k":"` + strings.Repeat("a", sealed.MaxPlaintext) + `"}`)}, 413, apiv1.CodeTooLarge, "limit"},
			{"settings too large", "x", apiv1.SetExtensionRequest{Publisher: "P", Type: "T", Version: "1", Settings: map[string]any{"k": strings.Repeat("a", controlplane.MaxSettings)}}, 413, apiv1.CodeTooLarge, "limit"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.owner.SetExtension(ctx, id, tc.ext, tc.req)
				wantCode(t, err, tc.status, tc.code, tc.contains)
			})
		}
		if e2 := etagNow(); seen[e2] != "second extension" {
			t.Fatalf("a refused set changed the desired state (%q)", seen[e2])
		}
	})
	t.Run("RBAC", func(t *testing.T) {
		reader := e.operatorFor("rita", rbac.Reader, rbac.ResourceGroupScope(sub, "web"))
		if _, err := reader.ListExtensions(ctx, id); err != nil {
			t.Fatalf("reader list: %v", err)
		}
		_, err := reader.SetExtension(ctx, id, "monitor", req)
		wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, rbac.ExtensionsWrite)
		wantCode(t, reader.RemoveExtension(ctx, id, "monitor"), http.StatusForbidden, apiv1.CodeForbidden, rbac.ExtensionsWrite)
		elsewhere := e.operatorFor("dan", rbac.ResourceAdministrator, rbac.ResourceGroupScope(sub, "db"))
		_, err = elsewhere.SetExtension(ctx, id, "monitor", req)
		wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden)
		_, err = elsewhere.ListExtensions(ctx, id)
		wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden)
		admin := e.operatorFor("ada", rbac.ResourceAdministrator, rbac.ResourceGroupScope(sub, "web"))
		if _, err := admin.SetExtension(ctx, id, "alpha", alpha); err != nil {
			t.Fatalf("administrator of the group: %v", err)
		}
	})
	t.Run("remove", func(t *testing.T) {
		before := etagNow()
		if err := e.owner.RemoveExtension(ctx, id, "ALPHA"); err != nil {
			t.Fatal(err)
		}
		if etagNow() == before {
			t.Fatal("removal kept the ETag")
		}
		wantCode(t, e.owner.RemoveExtension(ctx, id, "alpha"), http.StatusNotFound, apiv1.CodeNotFound, "not assigned")
		vs, _ := e.owner.ListExtensions(ctx, id)
		if len(vs) != 1 || vs[0].Name != "monitor" {
			t.Fatalf("after removal: %+v", vs)
		}
	})
}

func TestExtensionViews(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "web")
	tm := e.mustRegister(sub, "web", "web01")
	id := tm.reg.MachineID
	// One extension of a kind per machine: three kinds.
	for name, typ := range map[string]string{"ok": "StatusReporter", "old": "Old", "unreported": "Unreported"} {
		for _, v := range []string{"1.0.0", "2.0.0"} {
			e.publish(signing.Package{Publisher: "Contoso.Monitoring", Type: typ, Version: v})
		}
		v := map[string]string{"old": "2.0.0"}[name]
		if v == "" {
			v = "1.0.0"
		}
		if _, err := e.owner.SetExtension(ctx, id, name, apiv1.SetExtensionRequest{Publisher: "Contoso.Monitoring", Type: typ, Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	st := apiv1.MachineStatus{
		Extensions: []apiv1.ExtensionStatus{
			{Name: "OK", Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.0", State: apiv1.ExtensionSucceeded, Message: "enabled\nall good", Operation: "Enable", Sequence: 1},
			{Name: "old", Publisher: "Contoso.Monitoring", Type: "Old", Version: "1.0.0", State: apiv1.ExtensionSucceeded},
			{Name: "gone", Version: "1.0.0", State: apiv1.ExtensionSucceeded},
		},
		Services: []apiv1.ServiceStatus{{Name: "extd", State: "Running"}},
	}
	if err := tm.m.PutStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	vs, err := e.owner.ListExtensions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ state, reason string }{
		"gone":       {apiv1.ExtensionRemoving, "no longer assigned"},
		"ok":         {apiv1.ExtensionSucceeded, "all good"},
		"old":        {apiv1.ExtensionPending, "has not reported version 2.0.0 yet (it reports 1.0.0)"},
		"unreported": {apiv1.ExtensionPending, "not reported this extension"},
	}
	if len(vs) != len(want) {
		t.Fatalf("%d views: %+v", len(vs), vs)
	}
	for i, v := range vs {
		w := want[v.Name]
		if v.State != w.state || !strings.Contains(v.Reason, w.reason) {
			t.Errorf("%s: %s %q, want %s %q", v.Name, v.State, v.Reason, w.state, w.reason)
		}
		if i > 0 && strings.ToLower(vs[i-1].Name) > strings.ToLower(v.Name) {
			t.Errorf("not sorted: %s before %s", vs[i-1].Name, v.Name)
		}
	}
	// Bounds on the new status fields.
	for name, bad := range map[string]apiv1.MachineStatus{
		"long message":        {Extensions: []apiv1.ExtensionStatus{{Name: "a", State: "Failed", Message: strings.Repeat("x", 5000)}}},
		"control in message":  {Extensions: []apiv1.ExtensionStatus{{Name: "a", State: "Failed", Message: "a\x1b[2Jb"}}},
		"negative sequence":   {Extensions: []apiv1.ExtensionStatus{{Name: "a", State: "Failed", Sequence: -1}}},
		"service needs state": {Services: []apiv1.ServiceStatus{{Name: "extd"}}},
		"too many services":   {Services: make([]apiv1.ServiceStatus, 33)},
	} {
		t.Run(name, func(t *testing.T) { wantCode(t, tm.m.PutStatus(ctx, bad), http.StatusBadRequest, apiv1.CodeBadRequest) })
	}
}

// TestProtectedSettingsNeverInClear: the clear text of protected settings
// reaches neither the database (and its WAL), nor a backup, nor the
// server log, nor any response; the machine's key opens what the desired
// state carries.
func TestProtectedSettingsNeverInClear(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "web")
	tm := e.mustRegister(sub, "web", "web01")
	other := e.mustRegister(sub, "web", "web02")
	id := tm.reg.MachineID
	e.publish(statusReporter)
	var rnd [12]byte
	rand.Read(rnd[:])
	secret := "s3cret-" + hex.EncodeToString(rnd[:])
	protected := json.RawMessage(`{"password": "` + secret + `", "storageKey": "` + secret + `-key"}`)
	var compact bytes.Buffer
	json.Compact(&compact, protected)

	req := apiv1.SetExtensionRequest{Publisher: statusReporter.Publisher, Type: statusReporter.Type, Version: "1.0.0", ProtectedSettings: protected}
	spec, err := e.owner.SetExtension(ctx, id, "monitor", req)
	if err != nil {
		t.Fatal(err)
	}
	if spec.ProtectedSettings != "" {
		t.Fatalf("the response carries protected settings: %q", spec.ProtectedSettings)
	}
	doc, etag, err := tm.m.DesiredState(ctx, "")
	if err != nil || len(doc.Extensions) != 1 {
		t.Fatalf("%+v %v", doc, err)
	}
	sv := doc.Extensions[0].ProtectedSettings
	if !strings.HasPrefix(sv, sealed.Prefix) {
		t.Fatalf("desired state protected settings %q are not sealed", sv)
	}
	plain, err := sealed.Open(tm.key, id, "monitor", sv)
	if err != nil || !bytes.Equal(plain, compact.Bytes()) {
		t.Fatalf("the machine opens %q (%v), want %q", plain, err, compact.Bytes())
	}
	if _, err := sealed.Open(other.key, other.reg.MachineID, "monitor", sv); err == nil {
		t.Fatal("another machine's key opens the sealed value")
	}

	// The same protected settings again: no new ETag, same sealed value.
	if _, err := e.owner.SetExtension(ctx, id, "monitor", req); err != nil {
		t.Fatal(err)
	}
	if doc2, etag2, err := tm.m.DesiredState(ctx, etag); err != nil || doc2 != nil || etag2 != etag {
		t.Fatalf("re-setting the same protected settings: %v %q %v, want 304", doc2, etag2, err)
	}
	// Other protected settings: new ETag, a value that opens to the new text.
	req.ProtectedSettings = json.RawMessage(`{"password":"` + secret + `-2"}`)
	if _, err := e.owner.SetExtension(ctx, id, "monitor", req); err != nil {
		t.Fatal(err)
	}
	doc3, etag3, err := tm.m.DesiredState(ctx, etag)
	if err != nil || doc3 == nil || etag3 == etag {
		t.Fatalf("changed protected settings kept the ETag: %v %v", etag3, err)
	}
	if plain, err := sealed.Open(tm.key, id, "monitor", doc3.Extensions[0].ProtectedSettings); err != nil || !strings.Contains(string(plain), secret+"-2") {
		t.Fatalf("after change: %q %v", plain, err)
	}
	vs, err := e.owner.ListExtensions(ctx, id)
	if err != nil || len(vs) != 1 || !vs[0].HasProtectedSettings || vs[0].Desired.ProtectedSettings != "" {
		t.Fatalf("list: %+v %v", vs, err)
	}
	m, err := e.owner.GetMachine(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := json.Marshal(m)
	lb, _ := json.Marshal(vs)

	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := controlplane.Backup(ctx, e.dir, backup); err != nil {
		t.Fatal(err)
	}
	needles := [][]byte{[]byte(secret), []byte(base64.StdEncoding.EncodeToString(compact.Bytes())), []byte(base64.StdEncoding.EncodeToString([]byte(secret)))}
	haystacks := map[string][]byte{"server log": []byte(e.logs.String()), "machine response": mb, "list response": lb}
	for _, p := range []string{filepath.Join(e.dir, controlplane.DBFile), filepath.Join(e.dir, controlplane.DBFile+"-wal"), backup} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		haystacks[filepath.Base(p)] = b
	}
	if len(haystacks[controlplane.DBFile+"-wal"])+len(haystacks[controlplane.DBFile]) == 0 || len(haystacks["backup.db"]) == 0 {
		t.Fatal("nothing to search: the database files are empty")
	}
	// The check finds what it looks for: the sealed value is in the database.
	if !bytes.Contains(haystacks[controlplane.DBFile+"-wal"], []byte(doc3.Extensions[0].ProtectedSettings)) && !bytes.Contains(haystacks[controlplane.DBFile], []byte(doc3.Extensions[0].ProtectedSettings)) {
		t.Fatal("the sealed value is not in the database: the search below proves nothing")
	}
	for where, b := range haystacks {
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("the %s holds the protected settings in clear (%q)", where, n)
			}
		}
	}
	// The fingerprint key lives in the data directory, private, and not
	// in the database.
	if fi, err := os.Stat(filepath.Join(e.dir, controlplane.SettingsKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("settings key: %v %v", fi, err)
	}
}
