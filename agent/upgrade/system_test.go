package upgrade

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/arcagent/arcagent/agent/layout"
	"github.com/arcagent/arcagent/errcode"
)

// TestInstalledVersion asks the real dpkg-query about a root's dpkg database.
func TestInstalledVersion(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("dpkg-query is not installed (Debian's dpkg)")
	}
	stanza := "Package: arcagent\nStatus: %s\nPriority: optional\nSection: admin\nMaintainer: m <m@example.com>\nArchitecture: amd64\nVersion: 1.2.3~rc.1\nDescription: d\n\n"
	tests := []struct {
		name, status, want string
		code               errcode.Code
	}{
		{"installed", "install ok installed", "1.2.3~rc.1", ""},
		{"half-configured", "install ok half-configured", "", CodeInstallFailed},
		{"not installed", "", "", CodeInstallFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			db := filepath.Join(root, "var/lib/dpkg")
			if err := os.MkdirAll(filepath.Join(db, "info"), 0o755); err != nil {
				t.Fatal(err)
			}
			status := ""
			if tt.status != "" {
				status = fmt.Sprintf(stanza, tt.status)
			}
			if err := os.WriteFile(filepath.Join(db, "status"), []byte(status), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := NewSystem(layout.New(root)).InstalledVersion(context.Background())
			if got != tt.want || (tt.code == "" && err != nil) || (tt.code != "" && !errcode.Is(err, tt.code)) {
				t.Errorf("InstalledVersion = %q, %v; want %q, %s", got, err, tt.want, tt.code)
			}
		})
	}
}

// TestAnswers: a listener that answers HTTP is up, whatever its status; a
// closed port is not; and no proxy of the environment is used.
func TestAnswers(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata") != "true" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	if !Answers(context.Background(), srv.Listener.Addr().String()) {
		t.Error("a serving listener does not answer")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if Answers(context.Background(), addr) {
		t.Error("a closed port answers")
	}
}

// TestRunningUnderRoot: a root prefix never has a running service manager.
func TestRunningUnderRoot(t *testing.T) {
	if NewSystem(layout.New(t.TempDir())).Running() {
		t.Error("a root prefix reports a running systemd")
	}
}
