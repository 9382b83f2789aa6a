//go:build !windows

package daemon

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arcagent/arcagent/internal/atomicfile"
)

func TestListenLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"[::1]:0", true},
		{"0.0.0.0:0", false},
		{"10.0.0.1:40342", false},
		{"localhost:40342", false},
		{":40342", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			ln, err := ListenLoopback(context.Background(), tc.addr)
			if ln != nil {
				ln.Close()
			}
			if tc.ok && err != nil && !strings.Contains(err.Error(), "cannot assign") {
				t.Errorf("%s: %v", tc.addr, err)
			}
			if !tc.ok && err == nil {
				t.Errorf("%s was accepted", tc.addr)
			}
		})
	}
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "a.sock")
	ln, err := ListenUnix(context.Background(), sock, 0o660, atomicfile.Owner{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket %v %v", fi.Mode(), err)
	}
	// A live socket is not taken over.
	if _, err := ListenUnix(context.Background(), sock, 0o660, atomicfile.Owner{}); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second listener: %v", err)
	}
	// A stale one is replaced.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ln, err = ListenUnix(context.Background(), sock, 0o660, atomicfile.Owner{})
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	ln.Close()
	// A regular file is never removed.
	plain := filepath.Join(dir, "plain")
	_ = os.WriteFile(plain, []byte("x"), 0o600)
	if _, err := ListenUnix(context.Background(), plain, 0o660, atomicfile.Owner{}); err == nil {
		t.Error("a regular file was replaced by a socket")
	}
	if _, err := os.Stat(plain); err != nil {
		t.Error("the regular file is gone")
	}
}

func TestRunServesReloadsAndStops(t *testing.T) {
	ln, err := ListenLoopback(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan struct{}, 2)
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Servers: []Server{{Name: "t", Listener: ln, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}},
			// A SIGHUP as soon as anything runs is handled, not lost (nor
			// fatal): the handler is installed first.
			Work: func(ctx context.Context) error {
				if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
					return err
				}
				<-ctx.Done()
				return nil
			},
			Reload: func(context.Context) error { reloaded <- struct{}{}; return nil },
			Ready:  func() { close(ready) },
		})
	}()
	<-ready
	resp, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("got %q", b)
	}
	select {
	case <-reloaded:
	case <-time.After(5 * time.Second):
		t.Fatal("the SIGHUP sent by Work did not reload")
	}
	// Ready came after the handler was installed: no sleep needed.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reloaded:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGHUP did not reload")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	if _, err := http.Get("http://" + ln.Addr().String()); err == nil {
		t.Error("still serving after stop")
	}
}

// TestDropPrivileges runs the drop in a child process (it is irreversible).
func TestDropPrivileges(t *testing.T) {
	if os.Getenv("DAEMON_TEST_DROP_TO") != "" {
		if err := DropPrivileges(os.Getenv("DAEMON_TEST_DROP_TO")); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Printf("uid=%d euid=%d gid=%d setuid0=%v\n", os.Getuid(), os.Geteuid(), os.Getgid(), syscall.Setuid(0))
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		if err := DropPrivileges("nobody"); err != nil {
			t.Errorf("not root: DropPrivileges must be a no-op, got %v", err)
		}
		t.Skip("the privilege drop itself needs root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestDropPrivileges$")
	cmd.Env = append(os.Environ(), "DAEMON_TEST_DROP_TO=nobody")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := "uid=" + u.Uid + " euid=" + u.Uid
	if !strings.Contains(string(out), want) || strings.Contains(string(out), "setuid0=<nil>") {
		t.Errorf("after the drop: %s (want %s and setuid(0) refused)", out, want)
	}
	cmd = exec.Command(os.Args[0], "-test.run", "^TestDropPrivileges$")
	cmd.Env = append(os.Environ(), "DAEMON_TEST_DROP_TO=root")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "is root") {
		t.Errorf("dropping to root must be refused: %s", out)
	}
}
