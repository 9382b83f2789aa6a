package guestconfig

import "github.com/arcagent/arcagent/errcode"

// Error codes of guest configuration.
const (
	CodeDocument  errcode.Code = "ARC0160" // a configuration document is malformed
	CodePackage   errcode.Code = "ARC0161" // a configuration package is unsigned, untrusted or malformed
	CodeResource  errcode.Code = "ARC0162" // a resource could not be read or set
	CodeOutside   errcode.Code = "ARC0163" // a path leaves the target root
	CodeParameter errcode.Code = "ARC0164" // a parameter is unknown or missing
	CodeState     errcode.Code = "ARC0165" // gcad's state is unreadable or not writable
	CodeDisabled  errcode.Code = "ARC0166" // guest configuration is disabled by local configuration
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeDocument, Exit: errcode.ExitUsage, Title: "configuration document malformed",
			Remedy: "fix the document at the line the message names; `arcagent guestconfig check FILE` validates a document without applying it"},
		{Code: CodePackage, Exit: errcode.ExitFailed, Title: "configuration package refused",
			Remedy: "sign the package with `arcagent package sign --kind guestconfig` using a key the machine's trust store allows for the publisher, and publish it again"},
		{Code: CodeResource, Exit: errcode.ExitFailed, Title: "resource could not be read or set",
			Remedy: "read the resource's evidence in `arcagent guestconfig show NAME`; a failing set leaves the previous file in place and a backup under /var/lib/GuestConfig/gc_agent/backups"},
		{Code: CodeOutside, Exit: errcode.ExitUsage, Title: "path outside the target root",
			Remedy: "resource paths are absolute paths of the target; they may not contain .. or lead through a link out of the root"},
		{Code: CodeParameter, Exit: errcode.ExitUsage, Title: "configuration parameter unknown or missing",
			Remedy: "pass every parameter the document declares without a default (--parameters name=value); the message lists the declared ones"},
		{Code: CodeState, Exit: errcode.ExitFailed, Title: "guest configuration state unreadable or not writable",
			Remedy: "check /var/lib/GuestConfig/gc_agent and its files (root:root 0700)"},
		{Code: CodeDisabled, Exit: errcode.ExitFindings, Title: "guest configuration disabled by local configuration",
			Remedy: "guestconfiguration.enabled is false; `arcagent config set guestconfiguration.enabled true` turns it on (Tier 0 servers keep it off)"},
	} {
		errcode.Register(i)
	}
}
