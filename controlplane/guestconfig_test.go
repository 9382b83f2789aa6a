package controlplane_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/arcagent/arcagent/controlplane/apiv1"
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
