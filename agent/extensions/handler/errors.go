package handler

import (
	"fmt"

	"github.com/arcagent/arcagent/errcode"
)

// Error codes of this package (range ARC0130–ARC0139).
const (
	CodeCommandFailed  errcode.Code = "ARC0130" // a handler command exited non-zero
	CodeCommandTimeout errcode.Code = "ARC0131" // a handler command ran past its timeout or was cancelled
	CodeCommandStart   errcode.Code = "ARC0132" // a handler command could not be started
	CodeBadStatus      errcode.Code = "ARC0133" // status/<seq>.status is not valid
	CodeSettingsCert   errcode.Code = "ARC0134" // the protected-settings certificate cannot be loaded or created
	CodeHandlerFiles   errcode.Code = "ARC0135" // HandlerEnvironment.json, settings or log folders cannot be written
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeCommandFailed, Exit: errcode.ExitFailed, Title: "extension handler command failed",
			Remedy: "read the command's log file named in the message (under /var/lib/GuestConfig/extension_logs) and the extension's documentation; fix the settings or the package and assign it again"},
		{Code: CodeCommandTimeout, Exit: errcode.ExitFailed, Title: "extension handler command timed out",
			Remedy: "the command and every process it started were killed; read its log file, then raise the timeout or fix the extension"},
		{Code: CodeCommandStart, Exit: errcode.ExitFailed, Title: "extension handler command could not start",
			Remedy: "check that HandlerManifest.json names the command and that the extension directory exists; reinstall the extension from its signed package"},
		{Code: CodeBadStatus, Exit: errcode.ExitFailed, Title: "extension status file is not valid",
			Remedy: "the handler wrote a status file that is not the Azure status format (a JSON array with one object holding \"status\"); report it to the extension's publisher"},
		{Code: CodeSettingsCert, Exit: errcode.ExitFailed, Title: "protected-settings certificate unusable",
			Remedy: "check that the extensions directory (/var/lib/waagent) is a root-owned directory and that the disk is not full; run the extension manager as root"},
		{Code: CodeHandlerFiles, Exit: errcode.ExitFailed, Title: "extension handler files cannot be written",
			Remedy: "check free disk space and that the extension and log directories are root-owned directories, not links; run the extension manager as root"},
	} {
		errcode.Register(i)
	}
}

func fail(c errcode.Code, cause error, format string, args ...any) error {
	return &errcode.Error{Code: c, Message: fmt.Sprintf(format, args...), Err: cause}
}
