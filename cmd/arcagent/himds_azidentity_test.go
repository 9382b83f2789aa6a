//go:build !windows

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

const (
	sdkScope     = "https://management.azure.com/.default"
	testUserName = "arcagent-test"
	clientEnv    = "ARCAGENT_TEST_HIMDS_CLIENT"
)

// sdkClientResult is what the unprivileged helper process reports.
type sdkClientResult struct {
	UID       int    `json:"uid"`
	Challenge int    `json:"challengeStatus"`
	Realm     string `json:"realm"`
	ReadErr   string `json:"readErr"`
	SDKErr    string `json:"sdkErr"`
	GotToken  bool   `json:"gotToken"`
}

// TestHIMDSAzureSDK: as root, an unmodified Azure SDK client obtains a
// token from HIMDS through the real tokens directory, and a process of a
// user outside group himds cannot read the secret and gets no token.
func TestHIMDSAzureSDK(t *testing.T) {
	if os.Getenv(clientEnv) != "" {
		sdkClientHelper()
		return
	}
	if testing.Short() {
		t.Skip("builds and runs real processes")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the SDK reads secrets only from " + layout.TokensDir + ", owned by himds")
	}
	ensureAccount(t, layout.UserHIMDS, layout.GroupHIMDS)
	ensureAccount(t, testUserName, "")
	if u, err := user.Lookup(testUserName); err == nil {
		gids, _ := u.GroupIds()
		g, _ := user.LookupGroup(layout.GroupHIMDS)
		for _, id := range gids {
			if g != nil && id == g.Gid {
				t.Fatalf("%s must not be in group himds", testUserName)
			}
		}
	}
	tokens := ensureRealTokensDir(t)

	bin := buildArcagent(t)
	tmp := worldTraversableTemp(t)
	cp := startControlPlane(t, tmp)
	rg, secret := cp.onboarding(t, 1)
	root := filepath.Join(tmp, "machine")
	caFile := filepath.Join(tmp, "ca.crt")
	if err := os.WriteFile(caFile, cp.ca, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := runBin(t, bin, "connect", "--root", root, "--server", cp.url(), "--onboarding-token", secret,
		"--resource-group", rg, "--ca-file", caFile, "--name", "sdk01"); code != 0 {
		t.Fatalf("connect: %d %s %s", code, out, stderr)
	}
	d := startHIMDS(t, bin, root, "--tokens-dir", tokens)
	t.Setenv("IDENTITY_ENDPOINT", "http://"+d.addr+"/metadata/identity/oauth2/token")
	t.Setenv("IMDS_ENDPOINT", "http://"+d.addr)

	cred, err := azidentity.NewManagedIdentityCredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{sdkScope}})
	if err != nil {
		t.Fatalf("azidentity GetToken: %v\n%s", err, d.proc.out.String())
	}
	claims := jwtClaims(t, tok.Token)
	if aud := fmt.Sprint(claims["aud"]); !strings.Contains(aud, "https://management.azure.com") {
		t.Errorf("aud %s", aud)
	}
	if time.Until(tok.ExpiresOn) < 30*time.Minute {
		t.Errorf("ExpiresOn %s", tok.ExpiresOn)
	}
	waitUntil(t, "the used secret file to be removed", func() bool {
		m, _ := filepath.Glob(filepath.Join(tokens, "*.key"))
		return len(m) == 0
	})

	// An unprivileged user outside group himds.
	res := runAsTestUser(t, d.addr)
	t.Logf("unprivileged client: %+v", res)
	if res.Challenge != http.StatusUnauthorized || filepath.Dir(res.Realm) != tokens {
		t.Fatalf("unprivileged first leg: %+v", res)
	}
	if !strings.Contains(res.ReadErr, "permission denied") || res.GotToken || res.SDKErr == "" {
		t.Errorf("an unprivileged user must not read the secret or get a token: %+v", res)
	}
	// The secret file it was pointed at is himds:himds 0640.
	if fi, err := os.Stat(res.Realm); err == nil {
		st := fi.Sys().(*syscall.Stat_t)
		u, _ := user.Lookup(layout.UserHIMDS)
		if fi.Mode().Perm() != 0o640 || strconv.Itoa(int(st.Uid)) != u.Uid {
			t.Errorf("secret file %v uid %d", fi.Mode().Perm(), st.Uid)
		}
	}
}

// ensureRealTokensDir makes /var/opt/azcmagent/tokens (himds:himds 0710)
// if missing and removes what it made at the end.
func ensureRealTokensDir(t *testing.T) string {
	t.Helper()
	var made []string
	for _, d := range []struct {
		path  string
		mode  os.FileMode
		owner atomicfile.Owner
	}{{"/var/opt", 0o755, atomicfile.Owner{}}, {layout.StateDir, 0o755, atomicfile.Owner{}},
		{layout.TokensDir, 0o710, atomicfile.Owner{User: layout.UserHIMDS, Group: layout.GroupHIMDS}}} {
		if _, err := os.Stat(d.path); errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(d.path, d.mode); err != nil {
				t.Fatal(err)
			}
			made = append(made, d.path)
			if err := atomicfile.Chown(d.path, d.owner); err != nil {
				t.Fatal(err)
			}
		}
	}
	fi, err := os.Stat(layout.TokensDir)
	if err != nil || fi.Mode().Perm()&0o007 != 0 {
		t.Fatalf("%s must exist and not be world-accessible: %v %v", layout.TokensDir, fi.Mode(), err)
	}
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			_ = os.RemoveAll(made[i])
		}
	})
	return layout.TokensDir
}

// runAsTestUser runs this test binary as the unprivileged test user.
func runAsTestUser(t *testing.T, addr string) sdkClientResult {
	t.Helper()
	u, err := user.Lookup(testUserName)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir := worldTraversableTemp(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "client.test")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(exe, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(dst, src)
	src.Close()
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^TestHIMDSAzureSDK$")
	cmd.Dir = dir
	cmd.Env = []string{clientEnv + "=1", "HOME=" + dir, "PATH=/usr/bin:/bin",
		"IDENTITY_ENDPOINT=http://" + addr + "/metadata/identity/oauth2/token", "IMDS_ENDPOINT=http://" + addr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(gid)}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	var res sdkClientResult
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "RESULT ") {
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "RESULT ")), &res); err != nil {
				t.Fatal(err)
			}
			return res
		}
	}
	t.Fatalf("no result from the helper:\n%s", out)
	return res
}

// sdkClientHelper runs in the child: the challenge by hand, then the SDK.
func sdkClientHelper() {
	res := sdkClientResult{UID: os.Getuid()}
	req, _ := http.NewRequest(http.MethodGet, os.Getenv("IDENTITY_ENDPOINT")+"?api-version=2020-06-01&resource=https://management.azure.com", nil)
	req.Header.Set("Metadata", "true")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		res.Challenge = resp.StatusCode
		res.Realm = strings.TrimPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=")
		if _, err := os.ReadFile(res.Realm); err != nil {
			res.ReadErr = err.Error()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if cred, err := azidentity.NewManagedIdentityCredential(nil); err != nil {
		res.SDKErr = err.Error()
	} else if tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{sdkScope}}); err != nil {
		res.SDKErr = err.Error()
	} else {
		res.GotToken = tok.Token != ""
	}
	b, _ := json.Marshal(res)
	fmt.Println("RESULT " + string(b))
}
