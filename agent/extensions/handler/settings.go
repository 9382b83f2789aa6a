package handler

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"sync"

	"github.com/arcagent/arcagent/internal/atomicfile"
	"github.com/smallstep/pkcs7"
)

// Settings is the content of config/<seq>.settings.
type Settings struct {
	RuntimeSettings []RuntimeSettings `json:"runtimeSettings"`
}

// RuntimeSettings is one element of runtimeSettings.
type RuntimeSettings struct {
	HandlerSettings HandlerSettings `json:"handlerSettings"`
}

// HandlerSettings holds the public settings and the protected settings
// encrypted to the certificate named by ProtectedSettingsCertThumbprint.
type HandlerSettings struct {
	ProtectedSettingsCertThumbprint string         `json:"protectedSettingsCertThumbprint,omitempty"`
	ProtectedSettings               string         `json:"protectedSettings,omitempty"`
	PublicSettings                  map[string]any `json:"publicSettings"`
}

// pkcs7Mu serialises use of pkcs7's package-level algorithm choices.
var pkcs7Mu sync.Mutex

// EncryptProtected returns protected as DER CMS EnvelopedData for cert:
// AES-256-CBC content encryption, RSA PKCS #1 v1.5 key transport (what
// both `openssl cms -decrypt` and the older `openssl smime -decrypt` that
// some handlers still call accept; the recipient decrypts locally, so
// there is no padding oracle to query).
func EncryptProtected(protected []byte, cert *Cert) ([]byte, error) {
	pkcs7Mu.Lock()
	defer pkcs7Mu.Unlock()
	pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES256CBC
	pkcs7.KeyEncryptionAlgorithm = pkcs7.OIDEncryptionAlgorithmRSA
	return pkcs7.Encrypt(protected, []*x509.Certificate{cert.Cert})
}

// WriteSettings writes Dir/config/<seq>.settings atomically (0600):
//
//	{"runtimeSettings":[{"handlerSettings":{"protectedSettingsCertThumbprint":T,
//	  "protectedSettings":"<base64 DER CMS EnvelopedData of protected>",
//	  "publicSettings":{...}}}]}
//
// protected == nil writes no protected fields (and cert may be nil);
// public == nil writes {}. The clear protected text is never written to
// disk.
func WriteSettings(ext Extension, seq int, public map[string]any, protected []byte, cert *Cert) error {
	if err := ext.check(); err != nil {
		return err
	}
	if seq < 0 {
		return fail(CodeHandlerFiles, nil, "extension %s: sequence number %d is negative", ext.FullName(), seq)
	}
	if public == nil {
		public = map[string]any{}
	}
	hs := HandlerSettings{PublicSettings: public}
	if protected != nil {
		if cert == nil {
			return fail(CodeSettingsCert, nil, "extension %s has protected settings but no settings certificate was given", ext.FullName())
		}
		der, err := EncryptProtected(protected, cert)
		if err != nil {
			return fail(CodeSettingsCert, err, "encrypt the protected settings of %s", ext.FullName())
		}
		hs.ProtectedSettingsCertThumbprint = cert.Thumbprint
		hs.ProtectedSettings = base64.StdEncoding.EncodeToString(der)
	}
	data, err := json.Marshal(Settings{RuntimeSettings: []RuntimeSettings{{HandlerSettings: hs}}})
	if err != nil {
		return fail(CodeHandlerFiles, err, "encode the public settings of %s", ext.FullName())
	}
	if err := privateDir(ext.ConfigDir()); err != nil {
		return fail(CodeHandlerFiles, err, "prepare %s", ext.ConfigDir())
	}
	path := ext.SettingsFile(seq)
	err = atomicfile.WriteFile(path, data, atomicfile.WriteOptions{
		Mode: 0o600, Owner: atomicfile.Owner{User: "root", Group: "root"}, Enforce: true})
	if err != nil {
		return fail(CodeHandlerFiles, err, "write %s", path)
	}
	return nil
}
