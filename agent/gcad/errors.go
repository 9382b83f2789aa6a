package gcad

import "github.com/arcagent/arcagent/errcode"

// Error codes of the guest configuration daemon (ARC0171–ARC0175).
const (
	CodeDownload     errcode.Code = "ARC0171" // a configuration package could not be downloaded
	CodeAssignment   errcode.Code = "ARC0172" // the desired state names an invalid assignment
	CodeRefused      errcode.Code = "ARC0173" // an assignment was refused before any change
	CodeNotConnected errcode.Code = "ARC0174" // the machine is not connected
	CodeNotFound     errcode.Code = "ARC0175" // no such assignment on this machine
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeDownload, Exit: errcode.ExitFailed, Title: "configuration package download failed",
			Remedy: "check that the control plane is reachable and that the package was published (`arcagent fleet guestconfig publish`); gcad retries at the next pass"},
		{Code: CodeAssignment, Exit: errcode.ExitFailed, Title: "guest configuration assignment invalid",
			Remedy: "assign the package again with `arcagent fleet guestconfig assign` (policy <Publisher>.<Name>, a version, a mode, a package pinned by sha256)"},
		{Code: CodeRefused, Exit: errcode.ExitFailed, Title: "guest configuration assignment refused before any change",
			Remedy: "a resource could not even be tested (a path leading outside the root, an unreadable file): read `arcagent guestconfig show NAME`, fix the document or the machine, and publish again; nothing was changed"},
		{Code: CodeNotConnected, Exit: errcode.ExitFailed, Title: "guest configuration has no control plane",
			Remedy: "connect the machine with `arcagent connect`; gcad picks the registration up without a restart"},
		{Code: CodeNotFound, Exit: errcode.ExitFailed, Title: "no such guest configuration assignment",
			Remedy: "`arcagent guestconfig list` shows the assignments gcad evaluated on this machine; a new assignment appears after gcad's next poll"},
	} {
		errcode.Register(i)
	}
}
