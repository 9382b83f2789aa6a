package audit

import (
	"fmt"
	"io/fs"

	"golang.org/x/sys/windows"

	"github.com/arcagent/arcagent/errcode"
)

// netlinkListeners: no NETLINK_SOCK_DIAG on Windows.
func netlinkListeners() ([]Listener, error) {
	return nil, errcode.Unsupported("listing listening sockets")
}

// fileIDs: a Windows file has an owner SID and an ACL, not numeric ids;
// the owner is left unknown (the rules that judge owners are not
// evaluated on Windows).
func fileIDs(fs.FileInfo) (uid, gid int, ok bool) { return -1, -1, false }

// kernelRelease: no uname on Windows.
func kernelRelease() string { return "" }

// windowsVersion names the running Windows ("Windows 10.0.20348").
func windowsVersion() string {
	v := windows.RtlGetVersion()
	return fmt.Sprintf("Windows %d.%d.%d", v.MajorVersion, v.MinorVersion, v.BuildNumber)
}
