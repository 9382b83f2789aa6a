package himds

import (
	"errors"
	"net"
	"net/netip"

	"github.com/arcagent/arcagent/errcode"
)

// HIMDS is a Linux service: on Windows the peer lookups and the tokens
// directory fail closed (an unknown peer, no secret file), and the daemon
// itself refuses to start (see cmd/arcagent).

// socketPeerUID: no SO_PEERCRED here; the peer is unknown.
func socketPeerUID(*net.UnixConn) (uid int, ok bool) { return -1, true }

func sockDiagUID(netip.AddrPort, netip.AddrPort) (int, error) {
	return -1, errcode.Unsupported("finding the user of a local connection")
}

func procNetUID(netip.AddrPort, netip.AddrPort) (int, error) {
	return -1, errcode.Unsupported("finding the user of a local connection")
}

var errDirClosed = errors.New("the tokens directory was closed")

type tokensDir struct{}

func openTokensDir(string) (*tokensDir, error) {
	return nil, errcode.Unsupported("the HIMDS tokens directory")
}

func (d *tokensDir) create(string, uint32) (int, error) {
	return -1, errcode.Unsupported("the HIMDS tokens directory")
}

func (d *tokensDir) remove(string) error { return errDirClosed }
func (d *tokensDir) same() bool          { return false }
func (d *tokensDir) close()              {}

func finishSecret(int, int, int, []byte) error {
	return errcode.Unsupported("the HIMDS tokens directory")
}
