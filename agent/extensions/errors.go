package extensions

import (
	"fmt"

	"github.com/arcagent/arcagent/errcode"
)

// Error codes registered by this package. They were registered by package
// signing before the split and keep their numbers: never renumber them.
const (
	CodeUnsafeArchive      errcode.Code = "ARC0105" // the zip breaks an extraction rule
	CodeBadHandlerManifest errcode.Code = "ARC0111" // HandlerManifest.json missing or invalid
	CodeTreeTampered       errcode.Code = "ARC0117" // installed files differ from the install record
	CodeInstallRecord      errcode.Code = "ARC0118" // install record missing or unreadable
	CodeAlreadyInstalled   errcode.Code = "ARC0119" // destination exists
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeUnsafeArchive, Exit: errcode.ExitFindings, Title: "archive refused by the extraction rules",
			Remedy: "the zip holds unsafe paths, links, device files or is too large; rebuild it with `arcagent package build` and do not install this copy"},
		{Code: CodeBadHandlerManifest, Exit: errcode.ExitUsage, Title: "HandlerManifest.json missing or invalid",
			Remedy: "put a HandlerManifest.json in the Azure VM extension handler format at the root of the directory; see docs/signing.md"},
		{Code: CodeTreeTampered, Exit: errcode.ExitFindings, Title: "installed files differ from the install record",
			Remedy: "files were changed after installation; reinstall the extension from its signed package and find out who changed them"},
		{Code: CodeInstallRecord, Exit: errcode.ExitFailed, Title: "install record missing or unreadable",
			Remedy: "the extension was not installed by arcagent or its record was removed; reinstall it with `arcagent package install`"},
		{Code: CodeAlreadyInstalled, Exit: errcode.ExitUsage, Title: "extension already installed",
			Remedy: "remove the installed version first, or pass --replace"},
	} {
		errcode.Register(i)
	}
}

// fail builds the error this package returns: code c, an optional cause
// and a message. Callers match on the code with errcode.Is or errors.Is.
func fail(c errcode.Code, cause error, format string, args ...any) error {
	return &errcode.Error{Code: c, Message: fmt.Sprintf(format, args...), Err: cause}
}

// UnsafeEntryError names the archive entry that broke an extraction rule;
// it is the cause of an ARC0105 error.
type UnsafeEntryError struct {
	Entry  string
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	if e.Entry == "" {
		return e.Reason
	}
	return fmt.Sprintf("entry %q: %s", e.Entry, e.Reason)
}
