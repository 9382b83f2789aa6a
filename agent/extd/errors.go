package extd

import "github.com/arcagent/arcagent/errcode"

// Error codes of the extension manager.
const (
	CodeState        errcode.Code = "ARC0150" // ext_mgr/state.json unreadable, corrupt or not writable
	CodeRefused      errcode.Code = "ARC0151" // local policy refuses the extension
	CodeDownload     errcode.Code = "ARC0152" // the package could not be downloaded or does not match its digest
	CodeNotInstalled errcode.Code = "ARC0153" // no such extension is installed
	CodeNotConnected errcode.Code = "ARC0154" // the machine is not connected: nothing to poll
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeState, Exit: errcode.ExitFailed, Title: "extension manager state unreadable or not writable",
			Remedy: "check /var/lib/GuestConfig/ext_mgr/state.json and its directory (root:root 0700); a corrupt state is never discarded silently: compare it with /var/lib/waagent before moving it aside"},
		{Code: CodeRefused, Exit: errcode.ExitFindings, Title: "local security controls refuse the extension",
			Remedy: "the message names the local setting and the `arcagent config set` command that would change it, if the extension should be allowed"},
		{Code: CodeDownload, Exit: errcode.ExitFailed, Title: "extension package download failed or does not match its digest",
			Remedy: "check the connection to the control plane (arcagent show); a digest or size mismatch means the package changed in transit or on the server"},
		{Code: CodeNotInstalled, Exit: errcode.ExitUsage, Title: "no such extension installed",
			Remedy: "list what is installed with `arcagent extension list`"},
		{Code: CodeNotConnected, Exit: errcode.ExitFailed, Title: "machine not connected",
			Remedy: "connect first: arcagent connect; the extension manager polls the control plane the machine is connected to"},
	} {
		errcode.Register(i)
	}
}
