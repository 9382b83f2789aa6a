//go:build !windows

package handler

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

func readSettings(t *testing.T, ext Extension, seq int) HandlerSettings {
	t.Helper()
	data, err := os.ReadFile(ext.SettingsFile(seq))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string][]map[string]map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("settings file: %v\n%s", err, data)
	}
	var s Settings
	if err := json.Unmarshal(data, &s); err != nil || len(s.RuntimeSettings) != 1 {
		t.Fatalf("settings file: %v\n%s", err, data)
	}
	if _, ok := raw["runtimeSettings"][0]["handlerSettings"]["publicSettings"]; !ok {
		t.Errorf("publicSettings missing: %s", data)
	}
	if got := mode(t, ext.SettingsFile(seq)); got != 0o600 {
		t.Errorf("settings mode %v, want 0600", got)
	}
	return s.RuntimeSettings[0].HandlerSettings
}

func TestWriteSettingsPublicOnly(t *testing.T) {
	ext := newExt(t, nil, nil)
	if err := Prepare(ext); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		seq    int
		public map[string]any
		want   string
	}{
		{0, nil, `{}`},
		{1, map[string]any{"interval": 30.0, "name": "x"}, `{"interval":30,"name":"x"}`},
	}
	for _, tt := range tests {
		if err := WriteSettings(ext, tt.seq, tt.public, nil, nil); err != nil {
			t.Fatal(err)
		}
		hs := readSettings(t, ext, tt.seq)
		if hs.ProtectedSettings != "" || hs.ProtectedSettingsCertThumbprint != "" {
			t.Errorf("seq %d: protected fields written without protected settings: %+v", tt.seq, hs)
		}
		got, _ := json.Marshal(hs.PublicSettings)
		if string(got) != tt.want {
			t.Errorf("seq %d: publicSettings = %s, want %s", tt.seq, got, tt.want)
		}
		data, _ := os.ReadFile(ext.SettingsFile(tt.seq))
		if bytes.Contains(data, []byte("protected")) {
			t.Errorf("seq %d: %s", tt.seq, data)
		}
	}
	if err := WriteSettings(ext, 2, nil, []byte(`{"a":1}`), nil); err == nil {
		t.Error("protected settings without a certificate were accepted")
	}
	if err := WriteSettings(ext, -1, nil, nil, nil); err == nil {
		t.Error("negative sequence number accepted")
	}
}

// assertAbsent fails when secret's bytes occur in any file under dirs.
func assertAbsent(t *testing.T, secret []byte, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if bytes.Contains(data, secret) {
				t.Errorf("%s holds the protected settings in clear", p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestProtectedSettingsDecryptWithOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	ext := newExt(t, nil, nil)
	certDir := filepath.Dir(ext.Dir)
	if err := Prepare(ext); err != nil {
		t.Fatal(err)
	}
	cert, err := EnsureCert(certDir)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte(`{"storageAccountKey":"s3cr3t-` + time.Now().Format("150405.000000") + `"}`)
	if err := WriteSettings(ext, 3, map[string]any{"fileUris": []any{"https://example.invalid/a"}}, secret, cert); err != nil {
		t.Fatal(err)
	}
	hs := readSettings(t, ext, 3)
	if hs.ProtectedSettingsCertThumbprint != cert.Thumbprint {
		t.Errorf("thumbprint %q, want %q", hs.ProtectedSettingsCertThumbprint, cert.Thumbprint)
	}
	assertAbsent(t, secret, certDir, ext.LogDir)
	assertAbsent(t, []byte("s3cr3t"), certDir)

	der, err := base64.StdEncoding.DecodeString(hs.ProtectedSettings)
	if err != nil {
		t.Fatalf("protectedSettings is not base64: %v", err)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		t.Fatalf("protectedSettings is not CMS: %v", err)
	}
	if got, err := p7.Decrypt(cert.Cert, cert.Key); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("pkcs7 decrypt = %q, %v", got, err)
	}
	in := filepath.Join(t.TempDir(), "p.der")
	if err := os.WriteFile(in, der, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"cms", "smime"} {
		out, err := exec.Command("openssl", verb, "-decrypt", "-inform", "DER", "-in", in,
			"-inkey", cert.KeyFile(certDir), "-recip", cert.CertFile(certDir)).Output()
		if err != nil {
			t.Errorf("openssl %s -decrypt: %v", verb, err)
			continue
		}
		if !bytes.Equal(out, secret) {
			t.Errorf("openssl %s -decrypt = %q, want %q", verb, out, secret)
		}
	}
}

// TestHandlerReadsProtectedSettings runs a shell handler that does what
// Azure's handlers do (testdata/decrypt-handler.sh) through Runner.Run.
func TestHandlerReadsProtectedSettings(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	script, err := os.ReadFile("testdata/decrypt-handler.sh")
	if err != nil {
		t.Fatal(err)
	}
	ext := newExt(t, map[string]string{"bin/handler.sh": string(script)}, map[Op]string{OpEnable: "bin/handler.sh enable"})
	certDir := filepath.Dir(ext.Dir)
	if err := Prepare(ext); err != nil {
		t.Fatal(err)
	}
	cert, err := EnsureCert(certDir)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte(`{"commandToExecute":"echo hunter2-` + time.Now().Format("150405.000000") + `"}`)
	if err := WriteSettings(ext, 7, nil, secret, cert); err != nil {
		t.Fatal(err)
	}
	var r Runner
	res, err := r.Run(t.Context(), ext, OpEnable, 7)
	if err != nil {
		t.Fatalf("enable: %v (tail %q)", err, res.Tail)
	}
	st, err := ReadStatus(ext, 7)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(secret)
	if st.Status != StatusSuccess || st.Message != hex.EncodeToString(sum[:]) {
		t.Errorf("status %+v, want success with the secret's sha256", st)
	}
	assertAbsent(t, secret, certDir, ext.LogDir)
}
