package guestconfig

import (
	"io/fs"
	"os/exec"

	"github.com/arcagent/arcagent/errcode"
)

// Windows has no O_NOFOLLOW or O_NONBLOCK: the opens that would need them
// are writes, and writesSupported refuses every write first.
const (
	oNoFollow = 0
	oNonBlock = 0
)

// Owner: Windows files have an owner SID, not numeric ids; -1, -1 says
// the owner is unknown (a resource that compares owners is not compliant).
func Owner(fs.FileInfo) (uid, gid int) { return -1, -1 }

// linkCount: unknown here (writes are refused before it matters).
func linkCount(fs.FileInfo) uint64 { return 0 }

// writesSupported refuses writes (ApplyAndMonitor): without O_NOFOLLOW a
// write could be led through a link, and the resources are Linux files.
func writesSupported(p string) error {
	return errcode.Unsupported("changing " + p + " by guest configuration")
}

// ownGroup: no process groups; the command's own process is killed when
// its context ends (exec.CommandContext's default).
func ownGroup(*exec.Cmd) {}
