package daemon

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/arcagent/arcagent/internal/atomicfile"
)

// The owner of the run directory (user himds) races ListenUnix, renaming a
// symlink to a root-owned file over the new socket: the file's mode must
// never change (a chmod by path would follow the link).
func TestListenUnixNeverChmodsThroughASymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	sock := filepath.Join(dir, "run", "himds.sock")
	_ = os.MkdirAll(filepath.Dir(sock), 0o750)
	for i := 0; i < 2000; i++ {
		_ = os.WriteFile(victim, []byte("x"), 0o600)
		_ = os.Chmod(victim, 0o600)
		var stop atomic.Bool
		done := make(chan struct{})
		go func() { // the run directory's owner (user himds) racing the daemon
			defer close(done)
			tmp := filepath.Join(filepath.Dir(sock), "l")
			for !stop.Load() {
				if fi, err := os.Lstat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
					_ = os.Symlink(victim, tmp)
					_ = os.Rename(tmp, sock)
					return
				}
			}
		}()
		ln, err := ListenUnix(context.Background(), sock, 0o660, atomicfile.Owner{})
		stop.Store(true)
		<-done
		if ln != nil {
			ln.Close()
		}
		_ = os.Remove(sock)
		fi, _ := os.Stat(victim)
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("attempt %d: the victim file's mode became %v (ListenUnix err=%v)", i, fi.Mode().Perm(), err)
		}
	}
	// And the socket itself has its mode.
	ln, err := ListenUnix(context.Background(), sock, 0o660, atomicfile.Owner{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, %v; want 0660", fi.Mode().Perm(), err)
	}
}
