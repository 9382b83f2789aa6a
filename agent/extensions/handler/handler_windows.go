package handler

import (
	"io/fs"
	"os"
	"os/exec"
	"time"

	"github.com/arcagent/arcagent/errcode"
)

// Extension handlers are run by extd, a Linux service: on Windows the
// pieces below exist so that the packages that name handler build; none of
// them pretends to do what it does on Linux.

// oNoFollow: Windows has no O_NOFOLLOW; the opens that use it also pass
// O_CREATE|O_EXCL (CREATE_NEW), which refuses an existing link.
const oNoFollow = 0

type cgroup struct {
	version int
	dir     string
	fd      int
}

func setupCgroup(string, string, int) (*cgroup, string) {
	return nil, "CPU limit not applied (cgroups are Linux-only; this is Windows)"
}

func (c *cgroup) join(int) error                { return errcode.Unsupported("cgroups") }
func (c *cgroup) kill()                         {}
func (c *cgroup) usage() (time.Duration, int64) { return 0, -1 }
func (c *cgroup) release() (kept bool)          { return false }

func withCgroupFD(*exec.Cmd, int) {}

func ownGroup(*exec.Cmd, *cgroup) {}

// killGroup: Windows has no process groups; the command's own process is
// killed (what it started is not).
func killGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

func signalOf(*exec.ExitError) (string, bool) { return "", false }

// checkCertOwner: a certificate file's owner SID and ACL are not checked
// on Windows yet, so the file is not used.
func checkCertOwner(path string, _ fs.FileInfo) error {
	return fail(CodeSettingsCert, errcode.Unsupported("checking the owner of "+path), "%s is not used", path)
}

func privateDir(path string) error {
	return errcode.Unsupported("a private directory for an extension handler (" + path + ")")
}
