package himds

import "github.com/arcagent/arcagent/errcode"

// Error codes of HIMDS, connect, disconnect, show and the daemon
// (ARC0400–ARC0449). Never renumber.
const (
	CodeNotConnected      errcode.Code = "ARC0400"
	CodeStateUnreadable   errcode.Code = "ARC0401"
	CodeAlreadyConnected  errcode.Code = "ARC0402"
	CodeDaemonUnreachable errcode.Code = "ARC0403"
	CodeExpired           errcode.Code = "ARC0404"
	CodeListen            errcode.Code = "ARC0405"
	CodePrivilegeDrop     errcode.Code = "ARC0406"
	CodeConnectConfig     errcode.Code = "ARC0407"
	CodeMachineKey        errcode.Code = "ARC0408"
	CodeServerUnreachable errcode.Code = "ARC0409"
	CodeUnsafeDir         errcode.Code = "ARC0410"
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeNotConnected, Exit: errcode.ExitFailed, Title: "the machine is not connected to a control plane",
			Remedy: "run `sudo arcagent connect --server URL --onboarding-token T --resource-group RG`"},
		{Code: CodeStateUnreadable, Exit: errcode.ExitFailed, Title: "the agent's registration state cannot be read",
			Remedy: "run the command as root or as a member of group himds; if agentconfig.json is damaged, run `sudo arcagent disconnect --force-local-only` and connect again"},
		{Code: CodeAlreadyConnected, Exit: errcode.ExitUsage, Title: "the machine is already connected",
			Remedy: "run `sudo arcagent disconnect` first (or `--force-local-only` if the server is gone), then connect again"},
		{Code: CodeDaemonUnreachable, Exit: errcode.ExitFailed, Title: "the HIMDS service is not reachable",
			Remedy: "start it (`sudo systemctl start himdsd` or `sudo arcagent daemon himds`); reading its admin socket needs root or group himds"},
		{Code: CodeExpired, Exit: errcode.ExitFailed, Title: "the machine identity has expired (no heartbeat for 45 days)",
			Remedy: "run `sudo arcagent disconnect --force-local-only`, then `sudo arcagent connect` with a fresh onboarding credential"},
		{Code: CodeListen, Exit: errcode.ExitFailed, Title: "HIMDS cannot listen on its address",
			Remedy: "stop the other process on 127.0.0.1:40342 (`ss -ltnp | grep 40342`); --listen must be a loopback address"},
		{Code: CodePrivilegeDrop, Exit: errcode.ExitFailed, Title: "HIMDS cannot switch to its service user",
			Remedy: "create the user and group himds (`sudo useradd --system --user-group --no-create-home himds`), or run it under systemd with User=himds"},
		{Code: CodeConnectConfig, Exit: errcode.ExitUsage, Title: "the --config file cannot be used",
			Remedy: "give a JSON or YAML file whose keys are connect's flag names, e.g. {\"server\": …, \"onboarding-token\": …, \"resource-group\": …}"},
		{Code: CodeMachineKey, Exit: errcode.ExitFailed, Title: "the machine key cannot be read",
			Remedy: "check certs/machine.key (himds:himds 0600); if it is lost, run `sudo arcagent disconnect --force-local-only` and connect again"},
		{Code: CodeServerUnreachable, Exit: errcode.ExitFailed, Title: "the control plane cannot be reached and no cached answer is valid",
			Remedy: "check the network and proxy (`arcagent config get proxy.url`) and that arcserver runs; HIMDS retries on its own"},
		{Code: CodeUnsafeDir, Exit: errcode.ExitFailed, Title: "a directory HIMDS relies on has the wrong owner or mode",
			Remedy: "run the chown or chmod the message names (tokens/ is himds:himds 0710, certs/ 0700, run/ and log/ 0750), or start HIMDS as root once: it repairs them"},
	} {
		errcode.Register(i)
	}
}
