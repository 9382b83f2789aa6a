package proxy

import "github.com/arcagent/arcagent/errcode"

// Error codes of the arc proxy and of the routing of the agent's traffic
// (ARC0500–ARC0519). Never renumber.
const (
	CodeBadAddr          errcode.Code = "ARC0500"
	CodeBadUpstream      errcode.Code = "ARC0501"
	CodeCredentialsInURL errcode.Code = "ARC0502"
	CodeBadCA            errcode.Code = "ARC0503"
	CodeRefused          errcode.Code = "ARC0504"
	CodeBadServer        errcode.Code = "ARC0505"
	CodeCredentials      errcode.Code = "ARC0506"
	CodeListen           errcode.Code = "ARC0507"
	CodePrivilegeDrop    errcode.Code = "ARC0508"
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeBadAddr, Exit: errcode.ExitUsage, Title: "the arc proxy address is not a loopback IP:PORT",
			Remedy: "unset ARCAGENT_ARCPROXY_ADDR, or set it to 127.0.0.1:PORT where `arcagent daemon arcproxy --listen` listens"},
		{Code: CodeBadUpstream, Exit: errcode.ExitUsage, Title: "the upstream proxy URL cannot be used",
			Remedy: "set `arcagent config set proxy.url http://HOST:PORT` (or https://), or fix HTTPS_PROXY"},
		{Code: CodeCredentialsInURL, Exit: errcode.ExitUsage, Title: "the proxy URL carries credentials",
			Remedy: "remove user:password from proxy.url or HTTPS_PROXY and write them to /var/opt/azcmagent/proxy-credentials (one line user:password, root:arcproxy 0640)"},
		{Code: CodeBadCA, Exit: errcode.ExitFailed, Title: "the control plane CA cannot be read",
			Remedy: "check /var/opt/azcmagent/certs/server-ca.crt (a PEM bundle); connect again with --ca if it is damaged"},
		{Code: CodeRefused, Exit: errcode.ExitFailed, Title: "a proxy refused the connection",
			Remedy: "read the proxy's reason in the message: a destination refused by the arc proxy goes on proxy.allowed (`arcagent config set proxy.allowed HOST:PORT`); a 407 from the upstream proxy means /var/opt/azcmagent/proxy-credentials is wrong"},
		{Code: CodeBadServer, Exit: errcode.ExitFailed, Title: "the control plane or a package endpoint is not a usable destination",
			Remedy: "check the server in agentconfig.json (`arcagent show`) and the endpoints the control plane names; connect again if it is damaged"},
		{Code: CodeCredentials, Exit: errcode.ExitFailed, Title: "the upstream proxy credentials cannot be read",
			Remedy: "write one line user:password to /var/opt/azcmagent/proxy-credentials, owned root:arcproxy, mode 0640 (`sudo install -m 0640 -o root -g arcproxy FILE /var/opt/azcmagent/proxy-credentials`)"},
		{Code: CodeListen, Exit: errcode.ExitFailed, Title: "the arc proxy cannot listen on its address",
			Remedy: "stop the other process on 127.0.0.1:40343 (`ss -ltnp | grep 40343`); --listen must be a loopback address"},
		{Code: CodePrivilegeDrop, Exit: errcode.ExitFailed, Title: "the arc proxy cannot switch to its service user",
			Remedy: "create the user arcproxy, not a member of group himds (`sudo useradd --system --user-group --no-create-home arcproxy`), or run it under systemd with User=arcproxy"},
	} {
		errcode.Register(i)
	}
}
