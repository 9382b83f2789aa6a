package signing

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcagent/arcagent/errcode"
)

func TestVerifyPackage(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		mutate   func(t *testing.T, f *fixture) VerifyOptions
		wantErr  error
		wantCode errcode.Code
	}{
		{
			name: "valid package",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				return VerifyOptions{Package: f.pkgPath, Trust: f.store, Expect: Expectation{Publisher: "contoso.monitoring", Type: "StatusReporter", Version: "1.0.0"}}
			},
		},
		{
			name: "valid with no expectation",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				return VerifyOptions{Package: f.pkgPath, Trust: f.store}
			},
		},
		{
			name: "valid with a key given directly",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				pub, _, err := ParsePublicKey(f.key.pubPEM)
				if err != nil {
					t.Fatal(err)
				}
				return VerifyOptions{Package: f.pkgPath, Key: pub}
			},
		},
		{
			name: "one byte changed in the zip",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				data, err := os.ReadFile(f.pkgPath)
				if err != nil {
					t.Fatal(err)
				}
				data[len(data)/2] ^= 0x01
				if err := os.WriteFile(f.pkgPath, data, 0o644); err != nil {
					t.Fatal(err)
				}
				return VerifyOptions{Package: f.pkgPath, Trust: f.store}
			},
			wantErr: CodeDigestMismatch, wantCode: CodeDigestMismatch,
		},
		{
			name: "truncated package",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				if err := os.Truncate(f.pkgPath, 10); err != nil {
					t.Fatal(err)
				}
				return VerifyOptions{Package: f.pkgPath, Trust: f.store}
			},
			wantErr: CodeDigestMismatch, wantCode: CodeDigestMismatch,
		},
		{
			name: "a guest configuration signature presented for an extension",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				env, _, err := SignPackageKind(ctx, KindGuestConfig, f.pkgPath, testPkg, f.key.signer)
				if err != nil {
					t.Fatal(err)
				}
				return VerifyOptions{Package: f.pkgPath, Envelope: env, Trust: f.store}
			},
			wantErr: CodeStatementMismatch, wantCode: CodeStatementMismatch,
		},
		{
			name: "an extension signature presented for a guest configuration package",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				return VerifyOptions{Package: f.pkgPath, Trust: f.store, Expect: Expectation{Kind: KindGuestConfig}}
			},
			wantErr: CodeStatementMismatch, wantCode: CodeStatementMismatch,
		},
		{
			name: "a guest configuration package verified as one",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				env, _, err := SignPackageKind(ctx, KindGuestConfig, f.pkgPath, testPkg, f.key.signer)
				if err != nil {
					t.Fatal(err)
				}
				return VerifyOptions{Package: f.pkgPath, Envelope: env, Trust: f.store, Expect: Expectation{Kind: KindGuestConfig, Publisher: "contoso.monitoring"}}
			},
		},
		{
			name: "signature by an untrusted key",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				other := newTestKey(t, AlgEd25519)
				env, _, err := SignPackage(ctx, f.pkgPath, testPkg, other.signer)
				if err != nil {
					t.Fatal(err)
				}
				return VerifyOptions{Package: f.pkgPath, Envelope: env, Trust: f.store}
			},
			wantErr: CodeBadSignature, wantCode: CodeBadSignature,
		},
		{
			name: "trusted key signing for a publisher it is not allowed",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				p := Package{Publisher: "Fabrikam", Type: "StatusReporter", Version: "1.0.0"}
				env, _, err := SignPackage(ctx, f.pkgPath, p, f.key.signer)
				if err != nil {
					t.Fatal(err)
				}
				return VerifyOptions{Package: f.pkgPath, Envelope: env, Trust: f.store}
			},
			wantErr: CodePublisherNotAllowed, wantCode: CodePublisherNotAllowed,
		},
		{
			name: "statement for another version than requested",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				return VerifyOptions{Package: f.pkgPath, Trust: f.store, Expect: Expectation{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "1.0.1"}}
			},
			wantErr: CodeStatementMismatch, wantCode: CodeStatementMismatch,
		},
		{
			name: "statement for another type than requested",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				return VerifyOptions{Package: f.pkgPath, Trust: f.store, Expect: Expectation{Type: "CustomScript"}}
			},
			wantErr: CodeStatementMismatch, wantCode: CodeStatementMismatch,
		},
		{
			name: "truncated envelope",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				return VerifyOptions{Package: f.pkgPath, Envelope: f.envelope[:len(f.envelope)/2], Trust: f.store}
			},
			wantErr: CodeMalformedEnvelope, wantCode: CodeMalformedEnvelope,
		},
		{
			name: "payload swapped under a valid signature",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				var env Envelope
				if err := json.Unmarshal(f.envelope, &env); err != nil {
					t.Fatal(err)
				}
				st := NewStatement(Package{Publisher: "Contoso.Monitoring", Type: "StatusReporter", Version: "9.9.9"}, strings.Repeat("0", 64), 1)
				b, _ := json.Marshal(st)
				env.Payload = base64.StdEncoding.EncodeToString(b)
				data, _ := json.Marshal(env)
				return VerifyOptions{Package: f.pkgPath, Envelope: data, Trust: f.store}
			},
			wantErr: CodeBadSignature, wantCode: CodeBadSignature,
		},
		{
			name: "wrong payload type",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				var env Envelope
				_ = json.Unmarshal(f.envelope, &env)
				env.PayloadType = "text/plain"
				data, _ := json.Marshal(env)
				return VerifyOptions{Package: f.pkgPath, Envelope: data, Trust: f.store}
			},
			wantErr: CodeMalformedEnvelope, wantCode: CodeMalformedEnvelope,
		},
		{
			name: "empty trust store",
			mutate: func(t *testing.T, f *fixture) VerifyOptions {
				return VerifyOptions{Package: f.pkgPath, Trust: &TrustStore{}}
			},
			wantErr: CodeNoTrustedKeys, wantCode: CodeNoTrustedKeys,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			opts := tc.mutate(t, f)
			res, err := VerifyPackage(ctx, opts)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("VerifyPackage: %v", err)
				}
				if res.Package != testPkg || res.Size == 0 || len(res.SHA256) != 64 {
					t.Fatalf("unexpected result %+v", res)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			var ce *errcode.Error
			if !errors.As(err, &ce) || ce.Code != tc.wantCode {
				t.Fatalf("code = %v, want %s", err, tc.wantCode)
			}
			if ce.Exit() != errcode.ExitFindings {
				t.Fatalf("exit = %d, want 1", ce.Exit())
			}
		})
	}
}

func TestSignerAlgorithmsAndPasswords(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		alg      Algorithm
		password string
		load     string
		wantErr  error
	}{
		{"ecdsa plain", AlgECDSAP256, "", "", nil},
		{"ed25519 plain", AlgEd25519, "", "", nil},
		{"ecdsa encrypted", AlgECDSAP256, "s3cret", "s3cret", nil},
		{"ed25519 encrypted", AlgEd25519, "s3cret", "s3cret", nil},
		{"encrypted without passphrase", AlgECDSAP256, "s3cret", "", CodeKeyPassword},
		{"encrypted with wrong passphrase", AlgEd25519, "s3cret", "wrong", CodeKeyPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kp, err := GenerateKey(tc.alg, []byte(tc.password))
			if err != nil {
				t.Fatal(err)
			}
			if kp.Encrypted != (tc.password != "") || strings.Contains(string(kp.PrivatePEM), tc.password+"\n") && tc.password != "" {
				t.Fatalf("encryption state wrong")
			}
			var pw []byte
			if tc.load != "" {
				pw = []byte(tc.load)
			}
			s, err := ParseSigner(kp.PrivatePEM, pw)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), tc.password) {
					t.Fatal("error message leaks the passphrase")
				}
				return
			}
			f := newFixture(t)
			env, _, err := SignPackage(ctx, f.pkgPath, testPkg, s)
			if err != nil {
				t.Fatal(err)
			}
			pub, alg, err := ParsePublicKey(kp.PublicPEM)
			if err != nil || alg != tc.alg {
				t.Fatalf("alg %s err %v", alg, err)
			}
			if _, err := VerifyPackage(ctx, VerifyOptions{Package: f.pkgPath, Envelope: env, Key: pub}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParsePackageFileName(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Package
		ok   bool
	}{
		{"Contoso.Monitoring.StatusReporter-1.0.0.zip", Package{"Contoso.Monitoring", "StatusReporter", "1.0.0"}, true},
		{"/x/y/Contoso.Script-2.1.6.0.zip", Package{"Contoso", "Script", "2.1.6.0"}, true},
		{"noversion.zip", Package{}, false},
		{"Contoso-1.0.zip", Package{}, false},
		{"Contoso.Type-1.0-rc1.zip", Package{}, false},
		{"Con toso.Type-1.0.zip", Package{}, false},
	} {
		got, err := ParsePackageFileName(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParsePackageFileName(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestEnvelopeIsStandardDSSE(t *testing.T) {
	f := newFixture(t)
	var env map[string]any
	if err := json.Unmarshal(f.envelope, &env); err != nil {
		t.Fatal(err)
	}
	if env["payloadType"] != PayloadType {
		t.Fatalf("payloadType %v", env["payloadType"])
	}
	payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
	var st map[string]any
	if err := json.Unmarshal(payload, &st); err != nil {
		t.Fatal(err)
	}
	if st["_type"] != StatementType || st["predicateType"] != PredicateType {
		t.Fatalf("statement %v", st)
	}
	subj := st["subject"].([]any)[0].(map[string]any)
	if subj["name"] != filepath.Base(f.pkgPath) {
		t.Fatalf("subject name %v", subj["name"])
	}
	sum, _, _ := HashFile(context.Background(), f.pkgPath)
	if subj["digest"].(map[string]any)["sha256"] != sum {
		t.Fatal("subject digest differs from the file's sha256")
	}
}

// TestVerifyOrder checks that the first failing step of the verification order (docs/signing.md) is the
// one reported, and that the package bytes are not read before the
// envelope, signer and statement have passed.
func TestVerifyOrder(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	other := newTestKey(t, AlgEd25519)
	untrusted, _, err := SignPackage(ctx, f.pkgPath, testPkg, other.signer)
	if err != nil {
		t.Fatal(err)
	}
	wrongPublisher, _, err := SignPackage(ctx, f.pkgPath, Package{Publisher: "Fabrikam", Type: testPkg.Type, Version: testPkg.Version}, f.key.signer)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "absent.zip") // reading it would fail with another error
	wrongVersion := Expectation{Version: "2.0.0"}
	for _, tc := range []struct {
		name   string
		env    []byte
		pkg    string
		expect Expectation
		want   error
	}{
		{"bad envelope first", f.envelope[:10], missing, wrongVersion, CodeMalformedEnvelope},
		{"untrusted signer before statement and bytes", untrusted, missing, wrongVersion, CodeBadSignature},
		{"publisher before statement and bytes", wrongPublisher, missing, wrongVersion, CodePublisherNotAllowed},
		{"statement before bytes", f.envelope, missing, wrongVersion, CodeStatementMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyPackage(ctx, VerifyOptions{Package: tc.pkg, Envelope: tc.env, Trust: f.store, Expect: tc.expect})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyHonoursContext(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := VerifyPackage(ctx, VerifyOptions{Package: f.pkgPath, Trust: f.store}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}
