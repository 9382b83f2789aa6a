package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/arcagent/arcagent/agent/cloud"
	"github.com/arcagent/arcagent/controlplane/apiv1"
)

// decodeTargets are the request decoders and validators the API runs on
// untrusted bodies.
var decodeTargets = []func([]byte) error{
	func(b []byte) error {
		var v apiv1.RegisterRequest
		if err := DecodeStrict(bytes.NewReader(b), maxBody, &v); err != nil {
			return err
		}
		_, _, err := validateRegister(&v)
		return err
	},
	func(b []byte) error {
		var v apiv1.HeartbeatRequest
		if err := DecodeStrict(bytes.NewReader(b), maxHeartbeatBody, &v); err != nil {
			return err
		}
		return validateHeartbeat(&v)
	},
	func(b []byte) error {
		var v apiv1.MachineStatus
		if err := DecodeStrict(bytes.NewReader(b), maxStatusBody, &v); err != nil {
			return err
		}
		return validateStatus(&v)
	},
	func(b []byte) error {
		var v apiv1.CreateOnboardingRequest
		if err := DecodeStrict(bytes.NewReader(b), maxBody, &v); err != nil {
			return err
		}
		_, err := parseDuration("expiresIn", v.ExpiresIn, time.Minute, 30*24*time.Hour)
		return err
	},
	func(b []byte) error {
		var v apiv1.CreateSubscriptionRequest
		if err := DecodeStrict(bytes.NewReader(b), maxBody, &v); err != nil {
			return err
		}
		if err := checkText("displayName", v.DisplayName, 128, true); err != nil {
			return err
		}
		return checkTags(v.Tags)
	},
	func(b []byte) error {
		var v apiv1.CreateResourceGroupRequest
		if err := DecodeStrict(bytes.NewReader(b), maxBody, &v); err != nil {
			return err
		}
		return checkName("name", v.Name, 90)
	},
	func(b []byte) error {
		var v apiv1.CreateRoleAssignmentRequest
		if err := DecodeStrict(bytes.NewReader(b), maxBody, &v); err != nil {
			return err
		}
		return checkPrincipal(v.Principal)
	},
	func(b []byte) error {
		var v apiv1.CreateAPITokenRequest
		if err := DecodeStrict(bytes.NewReader(b), maxBody, &v); err != nil {
			return err
		}
		_, err := parseDuration("expiresIn", v.ExpiresIn, time.Minute, 2*365*24*time.Hour)
		return err
	},
	func(b []byte) error {
		var v apiv1.UpdateMachineRequest
		if err := DecodeStrict(bytes.NewReader(b), maxBody, &v); err != nil {
			return err
		}
		return checkTags(v.Tags)
	},
}

// FuzzDecodeRequests feeds arbitrary bytes to every request decoder and
// validator: they must not panic and must fail only with API errors.
func FuzzDecodeRequests(f *testing.F) {
	for i, s := range []string{
		`{"publicKey":"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n","inventory":{"hostname":"web1","osType":"linux","agentVersion":"0.1.0"},"tags":{"a":"b"}}`,
		`{"agentVersion":"0.1.0","agentStatus":"Ready"}`,
		`{"extensions":[{"name":"a","state":"Succeeded"}],"guestConfiguration":[{"name":"p","complianceStatus":"Compliant"}]}`,
		`{"subscriptionId":"6f1c1f3e-1111-4222-8333-944444444444","resourceGroup":"rg","expiresIn":"7d","uses":3}`,
		`{"displayName":"prod","tags":{"env":"prod"}}`,
		`{"name":"rg1","location":"local"}`,
		`{"principal":"alice","role":"Reader","scope":"/subscriptions/x"}`,
		`{"principal":"bob","expiresIn":"720h"}`,
		`{"tags":{"k":"v"}}`,
	} {
		f.Add(uint8(i), []byte(s))
	}
	f.Add(uint8(0), []byte(`{"inventory":{"hostname":"`+strings.Repeat("a", 300)+`"}}`))
	f.Add(uint8(3), []byte(`{"expiresIn":"99999999999999d"}`))
	f.Add(uint8(2), []byte(`{} []`))
	f.Add(uint8(1), []byte("\xff\xfe"))
	f.Add(uint8(4), []byte(`{"displayName":"a","displayName":"b"}`))
	f.Add(uint8(6), []byte(`{"principal":"a","role":"Reader","Scope":"/"}`))
	f.Add(uint8(0), []byte(`{"publicKey":"x","inventory":{"hostname":"h","HOSTNAME":"i"}}`))
	f.Add(uint8(1), []byte(`{"agentVersion":"1.2.0","inventory":{"hostname":"web1","osType":"linux","osName":"Debian GNU/Linux","osVersion":"13","kernel":"6.12.0","arch":"amd64","agentVersion":"1.2.0","cpus":4}}`))
	f.Add(uint8(1), []byte(`{"inventory":{"hostname":"web1","osType":"linux","agentVersion":"1.2.0","cpus":-1}}`))
	f.Add(uint8(1), []byte(`{"inventory":{"hostname":"web1","osType":"","agentVersion":"1.2.0","kernel":"a\u0000b"}}`))
	f.Add(uint8(1), []byte(`{"inventory":null}`))
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		err := decodeTargets[int(kind)%len(decodeTargets)](data)
		var ae *apiError
		if err != nil && !errors.As(err, &ae) {
			t.Fatalf("non-API error %T: %v", err, err)
		}
		if ae != nil && (ae.msg == "" || apiv1.HTTPStatus(ae.code) >= 500) {
			t.Fatalf("bad API error %+v", ae)
		}
	})
}

// fuzzServer is a server with an Owner token, a registered machine and an
// onboarding credential, driven in-process.
type fuzzServer struct {
	s        *Server
	owner    string
	secret   string
	machine  string
	sub      string
	audience string
	mach     *cloud.Machine
}

func newFuzzServer(tb testing.TB) *fuzzServer {
	ctx := context.Background()
	dir := tb.TempDir()
	res, err := Init(ctx, InitOptions{DataDir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	st, err := OpenStore(ctx, dir)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(ctx, Config{Store: st, Issuer: "https://127.0.0.1:1", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), DataDir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	bg, cancel := context.WithCancel(ctx)
	s.Start(bg)
	tb.Cleanup(func() { cancel(); s.Close(); st.Close() })
	fs := &fuzzServer{s: s, owner: res.OwnerToken}
	call := func(method, path, auth string, body any, out any) {
		b, _ := json.Marshal(body)
		r := httptest.NewRequest(method, path, bytes.NewReader(b))
		r.Header.Set("Authorization", "Bearer "+auth)
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		if w.Code >= 300 {
			tb.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
		}
		if out != nil {
			_ = json.Unmarshal(w.Body.Bytes(), out)
		}
	}
	var sub apiv1.Subscription
	call("POST", "/v1/subscriptions", fs.owner, apiv1.CreateSubscriptionRequest{DisplayName: "fuzz"}, &sub)
	fs.sub = sub.SubID
	call("POST", "/v1/subscriptions/"+sub.SubID+"/resourceGroups", fs.owner, apiv1.CreateResourceGroupRequest{Name: "rg"}, nil)
	var cred apiv1.OnboardingCredential
	call("POST", "/v1/onboardingCredentials", fs.owner, apiv1.CreateOnboardingRequest{SubscriptionID: sub.SubID, ResourceGroup: "rg", ExpiresIn: "30d", Uses: 10000}, &cred)
	fs.secret = cred.Secret
	key, _ := cloud.GenerateKey()
	pub, _ := cloud.MarshalPublicKey(&key.PublicKey)
	var reg apiv1.Registration
	call("POST", "/v1/machines/register", fs.secret, apiv1.RegisterRequest{PublicKey: pub, Inventory: apiv1.Inventory{Hostname: "m0", OSType: "linux", AgentVersion: "1"}}, &reg)
	fs.machine, fs.audience = reg.MachineID, reg.Audience
	fs.mach = &cloud.Machine{ID: reg.MachineID, Audience: reg.Audience, Key: key}
	return fs
}

var fuzzMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "BREW"}

// FuzzHandler sends arbitrary requests (method, path, credentials, content
// type, body) through the whole handler: no input may panic it or make it
// answer 500, and every error must be a {code, message} JSON body.
func FuzzHandler(f *testing.F) {
	fs := newFuzzServer(f)
	seeds := []struct {
		m    uint8
		path string
		auth uint8
		ct   string
		body string
	}{
		{0, "/v1/machines", 1, "", ""},
		{1, "/v1/subscriptions", 1, "application/json", `{"displayName":"a"}`},
		{1, "/v1/subscriptions/{sub}/resourceGroups", 1, "application/json", `{"name":"g"}`},
		{1, "/v1/onboardingCredentials", 1, "application/json", `{"subscriptionId":"{sub}","resourceGroup":"rg","expiresIn":"1h","uses":1}`},
		{1, "/v1/roleAssignments", 1, "application/json", `{"principal":"p","role":"Reader","scope":"/subscriptions/{sub}"}`},
		{1, "/v1/machines/register", 2, "application/json", `{"publicKey":"x","inventory":{"hostname":"h","osType":"linux","agentVersion":"1"}}`},
		{1, "/v1/machines/{id}/heartbeat", 3, "application/json", `{"agentVersion":"1"}`},
		{1, "/v1/machines/{id}/heartbeat", 3, "", ``},
		{0, "/v1/machines/{id}/desiredState", 3, "", ""},
		{0, "/v1/machines/{id}/self", 3, "", ""},
		{2, "/v1/machines/{id}/status", 3, "application/json", `{"extensions":[]}`},
		{1, "/v1/machines/{id}/token?resource=https://x", 3, "", ""},
		{3, "/v1/machines/{id}", 1, "application/json", `{"tags":{"a":"b"}}`},
		{0, "/v1/roleAssignments?scope=/subscriptions/{sub}", 1, "", ""},
		{0, "/.well-known/jwks.json", 0, "", ""},
		{1, "/v1/packages", 1, "application/json", `{"package":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==","envelope":{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"eA=="}]}}`},
		{0, "/v1/packages?publisher=Contoso&type=T", 1, "", ""},
		{2, "/v1/machines/{id}/extensions/monitor", 1, "application/json", `{"publisher":"Contoso","type":"T","version":"1","settings":{"a":1},"protectedSettings":{"p":"x"}}`},
		{0, "/v1/machines/{id}/extensions", 1, "", ""},
		{4, "/v1/machines/{id}/extensions/monitor", 1, "", ""},
		{0, "/v1/machines/{id}/packages/0000000000000000000000000000000000000000000000000000000000000000", 3, "", ""},
		{0, "/v1/machines/{id}/packages/0000000000000000000000000000000000000000000000000000000000000000/signature", 3, "", ""},
		{4, "/v1/onboardingCredentials/zzz", 1, "", ""},
		{0, "/v1/machines/../../etc/passwd", 1, "", ""},
		{1, "/v1/machines/{id}/heartbeat", 4, "application/json", "eyJhbGciOiJub25lIn0.e30."},
	}
	for _, s := range seeds {
		f.Add(s.m, s.path, s.auth, s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, m uint8, path string, auth uint8, ct string, body []byte) {
		path = strings.NewReplacer("{id}", fs.machine, "{sub}", fs.sub).Replace(path)
		body = bytes.ReplaceAll(body, []byte("{sub}"), []byte(fs.sub))
		u, err := url.ParseRequestURI(path)
		if err != nil || !strings.HasPrefix(path, "/") {
			return
		}
		r := &http.Request{Method: fuzzMethods[int(m)%len(fuzzMethods)], URL: u, RequestURI: path, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Host: "127.0.0.1", RemoteAddr: "127.0.0.1:1"}
		r = r.WithContext(context.Background())
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		switch auth % 5 {
		case 1:
			r.Header.Set("Authorization", "Bearer "+fs.owner)
		case 2:
			r.Header.Set("Authorization", "Bearer "+fs.secret)
		case 3:
			a, err := cloud.SignAssertion(fs.mach.Key, fs.machine, fs.audience, time.Now(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Authorization", "Bearer "+a)
		case 4:
			r.Header.Set("Authorization", "Bearer "+string(body))
		}
		w := httptest.NewRecorder()
		fs.s.Handler().ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", r.Method, path, w.Code, w.Body)
		}
		if w.Code >= 400 {
			var ae apiv1.Error
			if err := json.Unmarshal(w.Body.Bytes(), &ae); err != nil || ae.Code == "" || ae.Message == "" {
				t.Fatalf("%s %s: %d body %q is not a JSON error", r.Method, path, w.Code, w.Body)
			}
		}
	})
}
