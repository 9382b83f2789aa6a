package upgrade

import "github.com/arcagent/arcagent/errcode"

// Error codes of the agent upgrade (range ARC0540–ARC0549).
const (
	CodeNotRoot       errcode.Code = "ARC0540" // upgrade needs root
	CodeNoPackage     errcode.Code = "ARC0541" // the catalog has no package of that version for this architecture
	CodeUpToDate      errcode.Code = "ARC0542" // the version asked for is the one installed
	CodeDowngrade     errcode.Code = "ARC0543" // the version asked for is lower than the installed one
	CodeDownload      errcode.Code = "ARC0544" // the package could not be downloaded
	CodeTampered      errcode.Code = "ARC0545" // the package does not match its signed catalog entry
	CodeNoRollback    errcode.Code = "ARC0546" // no package of the installed version to roll back to
	CodeInstallFailed errcode.Code = "ARC0547" // dpkg failed to install the new package
	CodeStartFailed   errcode.Code = "ARC0548" // the new version's services did not start; rolled back
	CodeRollbackFail  errcode.Code = "ARC0549" // the rollback itself failed
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeNotRoot, Exit: errcode.ExitUsage, Title: "upgrade needs root",
			Remedy: "run it as root: sudo arcagent upgrade"},
		{Code: CodeNoPackage, Exit: errcode.ExitUsage, Title: "the release catalog has no agent package of that version for this machine",
			Remedy: "run `arcagent upgrade --dry-run` to see the versions the catalog offers, or ask the catalog's publisher for a package of this architecture"},
		{Code: CodeUpToDate, Exit: errcode.ExitFindings, Title: "that version is already installed: nothing to do",
			Remedy: "nothing to do; give --version V for another version"},
		{Code: CodeDowngrade, Exit: errcode.ExitFindings, Title: "the version offered is lower than the installed one: a downgrade is refused",
			Remedy: "upgrade only moves forward; to go back, install the older package by hand with dpkg after reading its release notes"},
		{Code: CodeDownload, Exit: errcode.ExitFailed, Title: "the agent package could not be downloaded",
			Remedy: "check the package URL in the catalog, the network and proxy (arcagent check), and free space under /var/opt/azcmagent/upgrade"},
		{Code: CodeTampered, Exit: errcode.ExitFindings, Title: "the downloaded package does not match its signed catalog entry (size or SHA-256)",
			Remedy: "do not install it: the file was changed after it was signed, or the download was corrupted; tell the catalog's publisher"},
		{Code: CodeNoRollback, Exit: errcode.ExitFailed, Title: "no package of the installed version to roll back to",
			Remedy: "publish the installed version in the catalog (or keep its package in /var/opt/azcmagent/upgrade), or pass --no-rollback to upgrade without a way back"},
		{Code: CodeInstallFailed, Exit: errcode.ExitFailed, Title: "dpkg could not install the new package",
			Remedy: "read dpkg's output in the message; the previous package was reinstalled when that was possible"},
		{Code: CodeStartFailed, Exit: errcode.ExitFailed, Title: "the new version's services did not start: the previous version was reinstalled",
			Remedy: "read `journalctl -u UNIT` of the unit named in the message, and tell the catalog's publisher"},
		{Code: CodeRollbackFail, Exit: errcode.ExitFailed, Title: "the rollback to the previous version failed",
			Remedy: "install the previous package named in the message by hand (dpkg -i FILE) and start the services (systemctl start himdsd extd gcad arcproxyd)"},
	} {
		errcode.Register(i)
	}
}
