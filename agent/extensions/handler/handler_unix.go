//go:build !windows

package handler

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// oNoFollow makes an open refuse a symbolic link at the final component.
const oNoFollow = syscall.O_NOFOLLOW

// withCgroupFD makes cmd start inside the v2 cgroup opened as fd (clone3),
// on a copy of its SysProcAttr.
func withCgroupFD(cmd *exec.Cmd, fd int) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	} else {
		a := *cmd.SysProcAttr
		cmd.SysProcAttr = &a
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = fd
}

// ownGroup starts cmd in a process group of its own and, in a v2 cgroup,
// inside the cgroup.
func ownGroup(cmd *exec.Cmd, cg *cgroup) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if cg != nil && cg.version == 2 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cg.fd
	}
}

// killGroup kills the process group pgid.
func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

// signalOf names the signal that killed the command, if one did.
func signalOf(ee *exec.ExitError) (string, bool) {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal().String(), true
	}
	return "", false
}

// checkCertOwner refuses a certificate file another user owns.
func checkCertOwner(path string, fi fs.FileInfo) error {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fail(CodeSettingsCert, nil, "%s is owned by uid %d, not by this user, so it is not used", path, st.Uid)
	}
	return nil
}

// privateDir makes path a directory of mode 0700 without following a link
// at path: it creates it, or opens the existing one with O_NOFOLLOW and
// fixes its mode through the descriptor.
func privateDir(path string) error {
	if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("%s is a symbolic link or not a directory; remove it and retry", path)
		}
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, 0o700); err != nil {
		return &fs.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}
