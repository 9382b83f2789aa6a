package controlplane_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane"
	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/controlplane/rbac"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/signing"
)

// sshBaseline is a guest configuration package; its Type is its name.
var sshBaseline = signing.Package{Publisher: "Contoso.Baseline", Type: "SSH", Version: "1.0"}

const testGuestConfigDoc = `apiVersion: guestconfig.arcagent.dev/v1
name: SSH
version: "1.0"
resources: []
`

// signedGuestConfig builds a guest configuration package of p (files at
// its root, guestconfig.yaml added when missing) and signs it as one.
func signedGuestConfig(t testing.TB, p signing.Package, files map[string]string) (zipBytes, envelope []byte) {
	t.Helper()
	if files == nil {
		files = map[string]string{}
	}
	if _, ok := files["guestconfig.yaml"]; !ok {
		files["guestconfig.yaml"] = testGuestConfigDoc
	}
	zb := zipOf(t, files)
	return zb, signZip(t, signing.KindGuestConfig, p, zb)
}

// signZip signs zip bytes as a package of kind k with a fresh key.
func signZip(t testing.TB, k signing.Kind, p signing.Package, zb []byte) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), p.FileName())
	if err := os.WriteFile(path, zb, 0o600); err != nil {
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
	env, _, err := signing.SignPackageKind(context.Background(), k, path, p, signer)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// publishGC publishes a fresh guest configuration package of p.
func (e *env) publishGC(p signing.Package) apiv1.PackageInfo {
	e.t.Helper()
	zb, env := signedGuestConfig(e.t, p, map[string]string{"README": p.Name()})
	info, err := e.owner.PublishPackage(context.Background(), apiv1.PublishPackageRequest{Package: zb, Envelope: env})
	if err != nil {
		e.t.Fatal(err)
	}
	return info
}

func TestPublishGuestConfigPackage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	zb, env := signedGuestConfig(t, sshBaseline, nil)
	info, err := e.owner.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: zb, Envelope: env})
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != apiv1.PackageKindGuestConfig || info.SHA256 != sha256Hex(zb) || info.FileName != "Contoso.Baseline.SSH-1.0.zip" {
		t.Fatalf("published %+v", info)
	}
	ext := e.publish(statusReporter)
	if ext.Kind != apiv1.PackageKindExtension {
		t.Fatalf("extension published as %+v", ext)
	}
	for _, tc := range []struct {
		kind string
		want []string
	}{
		{"", []string{ext.SHA256, info.SHA256}},
		{apiv1.PackageKindGuestConfig, []string{info.SHA256}},
		{apiv1.PackageKindExtension, []string{ext.SHA256}},
	} {
		ps, err := e.owner.ListPackages(ctx, "", "", tc.kind)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.SHA256)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("kind %q: %v, want %v", tc.kind, got, tc.want)
		}
		for _, w := range tc.want {
			found := false
			for _, g := range got {
				found = found || g == w
			}
			if !found {
				t.Fatalf("kind %q: %v, want %v", tc.kind, got, tc.want)
			}
		}
	}
	status, _, apiErr, _ := e.raw(http.MethodGet, "/v1/packages?kind=other", e.ownerT, "", nil)
	if status != http.StatusBadRequest || apiErr.Code != string(apiv1.CodeBadRequest) {
		t.Fatalf("unknown kind: %d %+v", status, apiErr)
	}

	extZip, _ := signedPackage(t, signing.Package{Publisher: "Contoso.Baseline", Type: "Wrong", Version: "1.0"}, "x")
	for _, tc := range []struct {
		name     string
		zip, env []byte
		want     string
	}{
		{"an extension zip signed as guest configuration", extZip, signZip(t, signing.KindGuestConfig, signing.Package{Publisher: "Contoso.Baseline", Type: "Wrong", Version: "1.0"}, extZip), "signed as a guest configuration package"},
		{"a guest configuration zip signed as an extension", zipOf(t, map[string]string{"guestconfig.yaml": testGuestConfigDoc}), nil, "signed as an extension package"},
		{"no guestconfig.yaml", zipOf(t, map[string]string{"other.yaml": "x"}), nil, "no guestconfig.yaml at its root"},
		{"guestconfig.yaml not at the root", zipOf(t, map[string]string{"sub/guestconfig.yaml": testGuestConfigDoc}), nil, "no guestconfig.yaml at its root"},
		{"empty guestconfig.yaml", zipOf(t, map[string]string{"guestconfig.yaml": " \n"}), nil, "is empty"},
		{"not a zip", []byte("not a zip at all"), nil, "not a zip archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := signing.Package{Publisher: "Contoso.Baseline", Type: "Refused", Version: "1.0"}
			env := tc.env
			if env == nil {
				k := signing.KindGuestConfig
				if tc.name == "a guest configuration zip signed as an extension" {
					k = signing.KindExtension
				}
				env = signZip(t, k, p, tc.zip)
			}
			_, err := e.owner.PublishPackage(ctx, apiv1.PublishPackageRequest{Package: tc.zip, Envelope: env})
			wantCode(t, err, http.StatusBadRequest, apiv1.CodeBadRequest, tc.want)
		})
	}
	if ps, _ := e.owner.ListPackages(ctx, "Contoso.Baseline", "", ""); len(ps) != 1 {
		t.Fatalf("refused packages were listed: %+v", ps)
	}
}

// desired reads a machine's desired state and its ETag.
func desired(t *testing.T, tm testMachine) (*apiv1.DesiredState, string) {
	t.Helper()
	doc, etag, err := tm.m.DesiredState(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return doc, etag
}

// gcNames lists "name@scope-level" of a desired state's assignments.
func gcNames(ds *apiv1.DesiredState) []string {
	var out []string
	for _, a := range ds.GuestConfigurationAssignments {
		level := "machine"
		if !strings.Contains(a.Scope, "/providers/") {
			level = "group"
		}
		out = append(out, a.Name+"@"+level)
	}
	return out
}

func TestGuestConfigAssignments(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "web", "db")
	pkg := e.publishGC(sshBaseline)
	ext := e.publish(statusReporter)
	m1 := e.mustRegister(sub, "web", "m1")
	dbm := e.mustRegister(sub, "db", "d1")
	req := apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.0", Mode: "Audit", Parameters: map[string]string{"maxAuthTries": "4"}}

	_, etag0 := desired(t, m1)
	a, err := e.owner.AssignGuestConfig(ctx, m1.reg.MachineID, "ssh", req)
	if err != nil {
		t.Fatal(err)
	}
	want := apiv1.GuestConfigurationAssignment{Name: "ssh", Policy: "Contoso.Baseline.SSH", Version: "1.0", Mode: "Audit", Parameters: req.Parameters, PackageSHA256: pkg.SHA256, PackageSize: pkg.Size, Scope: m1.reg.ResourceID}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("assigned %+v, want %+v", a, want)
	}
	ds, etag1 := desired(t, m1)
	if etag1 == etag0 || len(ds.GuestConfigurationAssignments) != 1 || !reflect.DeepEqual(ds.GuestConfigurationAssignments[0], want) {
		t.Fatalf("desired state %+v (etag %s, before %s)", ds, etag1, etag0)
	}

	t.Run("the same assignment again keeps the ETag", func(t *testing.T) {
		if _, err := e.owner.AssignGuestConfig(ctx, m1.reg.MachineID, "ssh", req); err != nil {
			t.Fatal(err)
		}
		if _, etag := desired(t, m1); etag != etag1 {
			t.Fatalf("etag %s after an identical PUT, want %s", etag, etag1)
		}
		if doc, etag, err := m1.m.DesiredState(ctx, etag1); err != nil || doc != nil || etag != etag1 {
			t.Fatalf("If-None-Match: %v %s %v, want 304", doc, etag, err)
		}
	})

	var etagG string
	t.Run("a group assignment reaches every machine of the group, later ones too", func(t *testing.T) {
		g, err := e.owner.AssignGroupGuestConfig(ctx, sub, "web", "baseline", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.0", Mode: "ApplyAndMonitor"})
		if err != nil {
			t.Fatal(err)
		}
		if g.Scope != rbac.ResourceGroupScope(sub, "web") || g.PackageSHA256 != pkg.SHA256 {
			t.Fatalf("group assignment %+v", g)
		}
		ds, etag := desired(t, m1)
		if got := gcNames(ds); !reflect.DeepEqual(got, []string{"baseline@group", "ssh@machine"}) || etag == etag1 {
			t.Fatalf("m1: %v (etag %s)", got, etag)
		}
		etagG = etag
		m2 := e.mustRegister(sub, "web", "m2")
		if ds, _ := desired(t, m2); !reflect.DeepEqual(gcNames(ds), []string{"baseline@group"}) {
			t.Fatalf("machine registered after the assignment: %v", gcNames(ds))
		}
		if ds, _ := desired(t, dbm); len(ds.GuestConfigurationAssignments) != 0 {
			t.Fatalf("a machine of another group got %v", gcNames(ds))
		}
		// The same group assignment again: no machine's ETag moves.
		if _, err := e.owner.AssignGroupGuestConfig(ctx, sub, "web", "baseline", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.0", Mode: "ApplyAndMonitor"}); err != nil {
			t.Fatal(err)
		}
		if _, etag := desired(t, m1); etag != etagG {
			t.Fatalf("etag moved on an identical group PUT: %s, want %s", etag, etagG)
		}
		// The heartbeat reports the new ETag.
		hb, err := m1.m.Heartbeat(ctx, apiv1.HeartbeatRequest{})
		if err != nil || hb.DesiredStateETag != etagG {
			t.Fatalf("heartbeat etag %q %v, want %s", hb.DesiredStateETag, err, etagG)
		}
		gs, err := e.owner.ListGroupGuestConfig(ctx, sub, "web")
		if err != nil || len(gs) != 1 || gs[0].Name != "baseline" {
			t.Fatalf("group list %+v %v", gs, err)
		}
	})

	t.Run("names clash across scopes: 409", func(t *testing.T) {
		_, err := e.owner.AssignGuestConfig(ctx, m1.reg.MachineID, "Baseline", req)
		wantCode(t, err, http.StatusConflict, apiv1.CodeConflict, "from "+rbac.ResourceGroupScope(sub, "web"))
		_, err = e.owner.AssignGroupGuestConfig(ctx, sub, "web", "SSH", req)
		wantCode(t, err, http.StatusConflict, apiv1.CodeConflict, "own guest configuration assignment")
		if gs, _ := e.owner.ListGroupGuestConfig(ctx, sub, "web"); len(gs) != 1 {
			t.Fatalf("a refused group assignment was kept: %+v", gs)
		}
		err = e.owner.RemoveGuestConfig(ctx, m1.reg.MachineID, "baseline")
		wantCode(t, err, http.StatusConflict, apiv1.CodeConflict, "remove it there")
		if _, etag := desired(t, m1); etag != etagG {
			t.Fatal("a refused change moved the ETag")
		}
	})

	t.Run("refusals", func(t *testing.T) {
		long := strings.Repeat("v", 4097)
		many := map[string]string{}
		for i := range 65 {
			many["p"+strconv.Itoa(i)] = "x"
		}
		for _, tc := range []struct {
			name string
			r    apiv1.GuestConfigurationAssignRequest
			code errcode.Code
			want string
		}{
			{"an extension package", apiv1.GuestConfigurationAssignRequest{Policy: ext.Publisher + "." + ext.Type, Version: ext.Version}, apiv1.CodeBadRequest, "is an extension package"},
			{"not published", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "9.0"}, apiv1.CodeNotFound, "not published"},
			{"policy without a name", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso", Version: "1.0"}, apiv1.CodeBadRequest, "<Publisher>.<Name>"},
			{"no version", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH"}, apiv1.CodeBadRequest, "required"},
			{"unknown mode", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.0", Mode: "Enforce"}, apiv1.CodeBadRequest, "mode"},
			{"bad parameter name", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.0", Parameters: map[string]string{"1x": "v"}}, apiv1.CodeBadRequest, "parameter name"},
			{"long value", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.0", Parameters: map[string]string{"x": long}}, apiv1.CodeBadRequest, "4096"},
			{"control character", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.0", Parameters: map[string]string{"x": "a\nb"}}, apiv1.CodeBadRequest, "control characters"},
			{"65 parameters", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.0", Parameters: many}, apiv1.CodeBadRequest, "at most 64"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.owner.AssignGuestConfig(ctx, m1.reg.MachineID, "x", tc.r)
				wantCode(t, err, apiv1.HTTPStatus(tc.code), tc.code, tc.want)
				_, err = e.owner.AssignGroupGuestConfig(ctx, sub, "web", "x", tc.r)
				wantCode(t, err, apiv1.HTTPStatus(tc.code), tc.code, tc.want)
			})
		}
		_, err := e.owner.SetExtension(ctx, m1.reg.MachineID, "gc", apiv1.SetExtensionRequest{Publisher: "Contoso.Baseline", Type: "SSH", Version: "1.0"})
		wantCode(t, err, http.StatusBadRequest, apiv1.CodeBadRequest, "guest configuration package, not an extension")
		_, err = e.owner.AssignGroupGuestConfig(ctx, sub, "nogroup", "x", req)
		wantCode(t, err, http.StatusNotFound, apiv1.CodeNotFound)
	})

	t.Run("RBAC", func(t *testing.T) {
		reader := e.operatorFor("rita", rbac.Reader, "/")
		_, err := reader.AssignGuestConfig(ctx, m1.reg.MachineID, "r", req)
		wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, rbac.GuestConfigWrite)
		_, err = reader.AssignGroupGuestConfig(ctx, sub, "web", "r", req)
		wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, rbac.GuestConfigWrite)
		if gs, err := reader.ListGroupGuestConfig(ctx, sub, "web"); err != nil || len(gs) != 1 {
			t.Fatalf("reader lists: %+v %v", gs, err)
		}
		dbAdmin := e.operatorFor("dora", rbac.ResourceAdministrator, rbac.ResourceGroupScope(sub, "db"))
		_, err = dbAdmin.AssignGuestConfig(ctx, m1.reg.MachineID, "r", req)
		wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, rbac.GuestConfigWrite)
		_, err = dbAdmin.AssignGroupGuestConfig(ctx, sub, "web", "r", req)
		wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, rbac.GuestConfigWrite)
		err = dbAdmin.RemoveGroupGuestConfig(ctx, sub, "web", "baseline")
		wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, rbac.GuestConfigWrite)
		if _, err := dbAdmin.AssignGuestConfig(ctx, dbm.reg.MachineID, "r", req); err != nil {
			t.Fatalf("an administrator of the machine's group assigns: %v", err)
		}
		if _, err := dbAdmin.AssignGroupGuestConfig(ctx, sub, "db", "g", req); err != nil {
			t.Fatalf("an administrator of the group assigns: %v", err)
		}
		if ds, _ := desired(t, dbm); !reflect.DeepEqual(gcNames(ds), []string{"g@group", "r@machine"}) {
			t.Fatalf("db machine: %v", gcNames(ds))
		}
	})

	t.Run("remove", func(t *testing.T) {
		if err := e.owner.RemoveGroupGuestConfig(ctx, sub, "web", "BASELINE"); err != nil {
			t.Fatal(err)
		}
		ds, etag := desired(t, m1)
		if !reflect.DeepEqual(gcNames(ds), []string{"ssh@machine"}) || etag != etag1 {
			t.Fatalf("after removing the group assignment: %v (etag %s, want back at %s)", gcNames(ds), etag, etag1)
		}
		if err := e.owner.RemoveGuestConfig(ctx, m1.reg.MachineID, "ssh"); err != nil {
			t.Fatal(err)
		}
		if ds, _ := desired(t, m1); len(ds.GuestConfigurationAssignments) != 0 {
			t.Fatalf("after removing: %v", gcNames(ds))
		}
		wantCode(t, e.owner.RemoveGuestConfig(ctx, m1.reg.MachineID, "ssh"), http.StatusNotFound, apiv1.CodeNotFound)
		wantCode(t, e.owner.RemoveGroupGuestConfig(ctx, sub, "web", "baseline"), http.StatusNotFound, apiv1.CodeNotFound)
	})
}

func TestGuestConfigDownload(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "web", "db")
	pkg := e.publishGC(sshBaseline)
	other := e.publishGC(signing.Package{Publisher: "Contoso.Baseline", Type: "Audit", Version: "2.0"})
	m1 := e.mustRegister(sub, "web", "m1")
	d1 := e.mustRegister(sub, "db", "d1")
	path := func(tm testMachine, sha string) string {
		return "/v1/machines/" + tm.reg.MachineID + "/packages/" + sha
	}
	for _, tm := range []testMachine{m1, d1} {
		if status, _, _ := e.download(tm, path(tm, pkg.SHA256)); status != http.StatusNotFound {
			t.Fatalf("unassigned download: %d", status)
		}
	}
	if _, err := e.owner.AssignGroupGuestConfig(ctx, sub, "web", "ssh", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.0"}); err != nil {
		t.Fatal(err)
	}
	status, h, body := e.download(m1, path(m1, pkg.SHA256))
	if status != http.StatusOK || sha256Hex(body) != pkg.SHA256 || h.Get("Content-Type") != "application/zip" {
		t.Fatalf("download by group assignment: %d %s", status, h)
	}
	if status, _, body := e.download(m1, path(m1, pkg.SHA256)+"/signature"); status != http.StatusOK || !strings.Contains(string(body), "payload") {
		t.Fatalf("signature: %d", status)
	}
	for name, tc := range map[string]struct {
		tm  testMachine
		sha string
	}{"a machine of another group": {d1, pkg.SHA256}, "a package not assigned": {m1, other.SHA256}} {
		if status, _, _ := e.download(tc.tm, path(tc.tm, tc.sha)); status != http.StatusNotFound {
			t.Fatalf("%s: %d, want 404", name, status)
		}
	}
	if _, err := e.owner.AssignGuestConfig(ctx, d1.reg.MachineID, "audit", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.Audit", Version: "2.0"}); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := e.download(d1, path(d1, other.SHA256)); status != http.StatusOK {
		t.Fatalf("download by machine assignment: %d", status)
	}
	if err := e.owner.RemoveGroupGuestConfig(ctx, sub, "web", "ssh"); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := e.download(m1, path(m1, pkg.SHA256)); status != http.StatusNotFound {
		t.Fatalf("download after removal: %d, want 404", status)
	}
}

// putStatus PUTs a raw status body with tm's assertion.
func (e *env) putStatus(tm testMachine, body string) (int, apiv1.Error) {
	e.t.Helper()
	a, err := cloud.SignAssertion(tm.key, tm.reg.MachineID, tm.reg.Audience, e.clock.Now(), cloud.DefaultAssertionLifetime)
	if err != nil {
		e.t.Fatal(err)
	}
	status, _, apiErr, _ := e.raw(http.MethodPut, "/v1/machines/"+tm.reg.MachineID+"/status", a, "application/json", strings.NewReader(body))
	return status, apiErr
}

func TestStatusMergesSections(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "web")
	m := e.mustRegister(sub, "web", "m1")
	reported := func() *apiv1.MachineStatus {
		t.Helper()
		got, err := e.owner.GetMachine(ctx, m.reg.MachineID)
		if err != nil || got.ReportedStatus == nil {
			t.Fatalf("%+v %v", got, err)
		}
		return got.ReportedStatus
	}
	extd := apiv1.MachineStatus{DesiredStateETag: "e1", Extensions: []apiv1.ExtensionStatus{{Name: "mon", State: "Succeeded"}}, Services: []apiv1.ServiceStatus{{Name: "extd", State: "Running"}}}
	gcad := apiv1.MachineStatus{GuestConfiguration: []apiv1.GuestConfigurationStatus{{Name: "ssh", Compliance: "NonCompliant", Resources: []apiv1.GuestConfigurationResourceStatus{{ID: "r1", Type: "file", Compliance: "NonCompliant", Reason: "mode 0644, want 0600", Evidence: map[string]string{"mode": "0644"}}}}}, Services: []apiv1.ServiceStatus{{Name: "gcad", State: "Running"}}}
	if err := m.m.PutStatus(ctx, extd); err != nil {
		t.Fatal(err)
	}
	if err := m.m.PutStatus(ctx, gcad); err != nil {
		t.Fatal(err)
	}
	st := reported()
	if len(st.Extensions) != 1 || len(st.GuestConfiguration) != 1 || len(st.Services) != 2 || st.GuestConfiguration[0].Resources[0].Evidence["mode"] != "0644" {
		t.Fatalf("gcad's report erased extd's (or the reverse): %+v", st)
	}
	extd.Extensions[0].State = "Failed"
	extd.Services[0].State = "Degraded"
	if err := m.m.PutStatus(ctx, extd); err != nil {
		t.Fatal(err)
	}
	st = reported()
	if st.Extensions[0].State != "Failed" || len(st.GuestConfiguration) != 1 || len(st.Services) != 2 || st.Services[0].State != "Degraded" || st.DesiredStateETag != "e1" {
		t.Fatalf("extd's second report: %+v", st)
	}
	for _, tc := range []struct {
		name, body string
		ext, gc    int
	}{
		{"absent sections keep", `{}`, 1, 1},
		{"null sections keep", `{"extensions": null, "guestConfiguration": null}`, 1, 1},
		{"an empty list clears", `{"guestConfiguration": []}`, 1, 0},
		{"both cleared", `{"extensions": []}`, 0, 0},
	} {
		if status, apiErr := e.putStatus(m, tc.body); status != http.StatusNoContent {
			t.Fatalf("%s: %d %+v", tc.name, status, apiErr)
		}
		if st := reported(); len(st.Extensions) != tc.ext || len(st.GuestConfiguration) != tc.gc || st.Extensions == nil || st.GuestConfiguration == nil {
			t.Fatalf("%s: %d extensions, %d assignments, want %d and %d", tc.name, len(st.Extensions), len(st.GuestConfiguration), tc.ext, tc.gc)
		}
	}
}

func TestStatusValidation(t *testing.T) {
	res := func(n int) []apiv1.GuestConfigurationResourceStatus {
		out := make([]apiv1.GuestConfigurationResourceStatus, n)
		for i := range out {
			out[i] = apiv1.GuestConfigurationResourceStatus{ID: "r" + strconv.Itoa(i), Type: "file", Compliance: "Compliant"}
		}
		return out
	}
	ev := map[string]string{}
	for i := range 33 {
		ev["k"+strconv.Itoa(i)] = "v"
	}
	gc := func(mut func(*apiv1.GuestConfigurationStatus)) []apiv1.GuestConfigurationStatus {
		g := apiv1.GuestConfigurationStatus{Name: "ssh", Compliance: "Compliant", Resources: res(1)}
		mut(&g)
		return []apiv1.GuestConfigurationStatus{g}
	}
	for _, tc := range []struct {
		name string
		gs   []apiv1.GuestConfigurationStatus
		want string // "" valid
	}{
		{"valid", gc(func(*apiv1.GuestConfigurationStatus) {}), ""},
		{"NotApplied", gc(func(g *apiv1.GuestConfigurationStatus) { g.Compliance = "NotApplied"; g.Resources = nil }), ""},
		{"2000 resources", gc(func(g *apiv1.GuestConfigurationStatus) { g.Resources = res(2000) }), ""},
		{"2001 resources", gc(func(g *apiv1.GuestConfigurationStatus) { g.Resources = res(2001) }), "at most 2000"},
		{"5001 in one report", append(append(gc(func(g *apiv1.GuestConfigurationStatus) { g.Resources = res(2000) }), gc(func(g *apiv1.GuestConfigurationStatus) { g.Name = "b"; g.Resources = res(2000) })...), gc(func(g *apiv1.GuestConfigurationStatus) { g.Name = "c"; g.Resources = res(1001) })...), "more than 5000"},
		{"Pending is the control plane's", gc(func(g *apiv1.GuestConfigurationStatus) { g.Compliance = "Pending" }), "complianceStatus"},
		{"resource NotApplied", gc(func(g *apiv1.GuestConfigurationStatus) { g.Resources[0].Compliance = "NotApplied" }), "resources[0].complianceStatus"},
		{"resource Skipped", gc(func(g *apiv1.GuestConfigurationStatus) { g.Resources[0].Compliance = "Skipped" }), ""},
		// gcad reports a resource whose onlyIfExists path is missing as
		// NotApplicable (the built-in baseline has many): refusing it would
		// leave every such report pending for ever.
		{"resource NotApplicable", gc(func(g *apiv1.GuestConfigurationStatus) { g.Resources[0].Compliance = "NotApplicable" }), ""},
		{"long id", gc(func(g *apiv1.GuestConfigurationStatus) { g.Resources[0].ID = strings.Repeat("i", 129) }), "resources[0].id"},
		{"no id", gc(func(g *apiv1.GuestConfigurationStatus) { g.Resources[0].ID = "" }), "resources[0].id"},
		{"long reason", gc(func(g *apiv1.GuestConfigurationStatus) { g.Resources[0].Reason = strings.Repeat("r", 4097) }), "reason"},
		{"33 evidence entries", gc(func(g *apiv1.GuestConfigurationStatus) { g.Resources[0].Evidence = ev }), "at most 32"},
		{"long evidence key", gc(func(g *apiv1.GuestConfigurationStatus) {
			g.Resources[0].Evidence = map[string]string{strings.Repeat("k", 65): "v"}
		}), "evidence key"},
		{"long evidence value", gc(func(g *apiv1.GuestConfigurationStatus) {
			g.Resources[0].Evidence = map[string]string{"k": strings.Repeat("v", 1025)}
		}), "evidence[k]"},
		{"multi-line evidence", gc(func(g *apiv1.GuestConfigurationStatus) { g.Resources[0].Evidence = map[string]string{"k": "a\nb"} }), ""},
		{"escape in a reason", gc(func(g *apiv1.GuestConfigurationStatus) { g.Resources[0].Reason = "\x1b[31m" }), "printable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := controlplane.ValidateStatus(&apiv1.MachineStatus{GuestConfiguration: tc.gs})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestGuestConfigViews(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sub := e.scope("prod", "web", "db")
	e.publishGC(sshBaseline)
	e.publishGC(signing.Package{Publisher: "Contoso.Baseline", Type: "SSH", Version: "1.1"})
	m := e.mustRegister(sub, "web", "m1")
	d := e.mustRegister(sub, "db", "d1")
	if _, err := e.owner.AssignGroupGuestConfig(ctx, sub, "web", "ssh", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.0", Mode: "ApplyAndMonitor"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.owner.AssignGuestConfig(ctx, d.reg.MachineID, "db-ssh", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.0"}); err != nil {
		t.Fatal(err)
	}
	state := func() apiv1.GuestConfigurationView {
		t.Helper()
		vs, err := e.owner.GuestConfig(ctx, m.reg.MachineID)
		if err != nil || len(vs) != 1 {
			t.Fatalf("%+v %v", vs, err)
		}
		return vs[0]
	}
	if v := state(); v.State != apiv1.GuestConfigPending || v.Desired == nil || v.Desired.Scope != rbac.ResourceGroupScope(sub, "web") || v.Reported != nil {
		t.Fatalf("before any report: %+v", v)
	}
	rep := apiv1.GuestConfigurationStatus{Name: "ssh", Compliance: "NonCompliant", Policy: "Contoso.Baseline.SSH", Version: "1.0", Mode: "ApplyAndMonitor", Resources: []apiv1.GuestConfigurationResourceStatus{
		{ID: "sshd-root-login", Type: "file", Compliance: "NonCompliant", Reason: "PermitRootLogin yes"},
		{ID: "shadow-mode", Type: "file", Compliance: "Compliant"},
		{ID: "broken", Type: "exec", Compliance: "Error", Reason: "timed out"},
	}}
	for _, tc := range []struct {
		name  string
		mut   func(*apiv1.GuestConfigurationStatus)
		state string
	}{
		{"another version", func(r *apiv1.GuestConfigurationStatus) { r.Version = "0.9" }, apiv1.GuestConfigPending},
		{"another mode", func(r *apiv1.GuestConfigurationStatus) { r.Mode = "Audit" }, apiv1.GuestConfigPending},
		{"this version and mode", func(*apiv1.GuestConfigurationStatus) {}, "NonCompliant"},
	} {
		r := rep
		tc.mut(&r)
		if err := m.m.PutStatus(ctx, apiv1.MachineStatus{GuestConfiguration: []apiv1.GuestConfigurationStatus{r}}); err != nil {
			t.Fatal(err)
		}
		if v := state(); v.State != tc.state || v.Reported == nil || v.Resources != 3 || v.NonCompliantResources != 2 {
			t.Fatalf("%s: %+v", tc.name, v)
		}
	}
	// A new version: Pending until the machine reports it.
	if _, err := e.owner.AssignGroupGuestConfig(ctx, sub, "web", "ssh", apiv1.GuestConfigurationAssignRequest{Policy: "Contoso.Baseline.SSH", Version: "1.1", Mode: "ApplyAndMonitor"}); err != nil {
		t.Fatal(err)
	}
	if v := state(); v.State != apiv1.GuestConfigPending || !strings.Contains(v.Reason, "1.1") {
		t.Fatalf("after a version change: %+v", v)
	}

	t.Run("fleet-wide, RBAC-scoped, without resource detail", func(t *testing.T) {
		all, err := e.owner.FleetGuestConfig(ctx, "", "")
		if err != nil || len(all) != 2 {
			t.Fatalf("%+v %v", all, err)
		}
		for _, mg := range all {
			if len(mg.Assignments) != 1 {
				t.Fatalf("%s: %+v", mg.Name, mg.Assignments)
			}
			if a := mg.Assignments[0]; a.Reported != nil && a.Reported.Resources != nil {
				t.Fatalf("resource detail in the fleet list: %+v", a.Reported)
			}
		}
		webReader := e.operatorFor("wendy", rbac.Reader, rbac.ResourceGroupScope(sub, "web"))
		mine, err := webReader.FleetGuestConfig(ctx, "", "")
		if err != nil || len(mine) != 1 || mine[0].MachineID != m.reg.MachineID || mine[0].Assignments[0].NonCompliantResources != 2 {
			t.Fatalf("reader of web: %+v %v", mine, err)
		}
		_, err = webReader.FleetGuestConfig(ctx, sub, "db")
		wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, rbac.GuestConfigRead)
		_, err = webReader.GuestConfig(ctx, d.reg.MachineID)
		wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, rbac.GuestConfigRead)
		nobody := e.operatorFor("nobody", "", "")
		_, err = nobody.FleetGuestConfig(ctx, "", "")
		wantCode(t, err, http.StatusForbidden, apiv1.CodeForbidden, rbac.GuestConfigRead)
	})

	t.Run("removed but still reported: Removing", func(t *testing.T) {
		if err := e.owner.RemoveGroupGuestConfig(ctx, sub, "web", "ssh"); err != nil {
			t.Fatal(err)
		}
		if v := state(); v.State != apiv1.GuestConfigRemoving || v.Desired != nil {
			t.Fatalf("%+v", v)
		}
		if err := m.m.PutStatus(ctx, apiv1.MachineStatus{GuestConfiguration: []apiv1.GuestConfigurationStatus{}}); err != nil {
			t.Fatal(err)
		}
		if vs, err := e.owner.GuestConfig(ctx, m.reg.MachineID); err != nil || len(vs) != 0 {
			t.Fatalf("after the machine reports nothing: %+v %v", vs, err)
		}
	})
}
