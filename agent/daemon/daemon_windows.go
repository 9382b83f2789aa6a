package daemon

import (
	"context"
	"io/fs"
	"log/slog"
	"net"

	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/atomicfile"
)

// ListenUnix: the agent's unix sockets (with their mode and owner) are
// not built for Windows yet.
func ListenUnix(context.Context, string, fs.FileMode, atomicfile.Owner) (net.Listener, error) {
	return nil, errcode.Unsupported("a local socket with a mode and an owner")
}

// DropPrivileges: the services' users are Linux users; Windows services
// run under a service account the service manager sets.
func DropPrivileges(string) error {
	return errcode.Unsupported("dropping privileges to a service user")
}

func checkDir(d Dir, _ *slog.Logger) error {
	return errcode.Unsupported("checking the owner and mode of " + d.Path)
}
