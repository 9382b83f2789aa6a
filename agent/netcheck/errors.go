package netcheck

import "github.com/arcagent/arcagent/errcode"

// Error codes of the network check (range ARC0520–ARC0529). Every failed
// endpoint carries the code of its first failing step.
const (
	CodeUnreachable  errcode.Code = "ARC0520" // at least one endpoint is unreachable
	CodeDNS          errcode.Code = "ARC0521" // the name does not resolve
	CodeTCP          errcode.Code = "ARC0522" // the port refuses or does not answer
	CodeTLSUntrusted errcode.Code = "ARC0523" // the chain is not signed by the configured CA
	CodeTLSExpired   errcode.Code = "ARC0524" // the certificate is expired or not yet valid
	CodeTLS          errcode.Code = "ARC0525" // another TLS failure (name mismatch, protocol)
	CodeProxyDown    errcode.Code = "ARC0526" // the proxy does not accept connections
	CodeProxyRefused errcode.Code = "ARC0527" // the proxy refuses CONNECT to the endpoint
	CodeHTTP         errcode.Code = "ARC0528" // the endpoint answers with an HTTP error
	CodeConnectCheck errcode.Code = "ARC0529" // connect stopped because the network check failed
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeUnreachable, Exit: errcode.ExitFindings, Title: "an endpoint the agent needs is unreachable",
			Remedy: "read the message of each failed endpoint in the table: it names the step (DNS, TCP, TLS, proxy, HTTP) and what to fix"},
		{Code: CodeDNS, Exit: errcode.ExitFindings, Title: "the endpoint's name does not resolve",
			Remedy: "check the host name in the URL and this machine's DNS servers (/etc/resolv.conf); behind a proxy, set proxy.url so the proxy resolves it"},
		{Code: CodeTCP, Exit: errcode.ExitFindings, Title: "the endpoint's port refuses or does not answer",
			Remedy: "check that the server is running on that port and that no firewall between here and there drops the traffic"},
		{Code: CodeTLSUntrusted, Exit: errcode.ExitFindings, Title: "the endpoint's certificate is not signed by the configured CA",
			Remedy: "pass the CA that signs the server's certificate with --ca-file (before connect), or check that nothing intercepts TLS on the way"},
		{Code: CodeTLSExpired, Exit: errcode.ExitFindings, Title: "the endpoint's certificate is expired or not yet valid",
			Remedy: "renew the server's certificate; if it is new, check this machine's clock (timedatectl)"},
		{Code: CodeTLS, Exit: errcode.ExitFindings, Title: "the TLS handshake with the endpoint failed",
			Remedy: "the message says why (a name the certificate does not cover, no common protocol version); fix the server's certificate or the URL"},
		{Code: CodeProxyDown, Exit: errcode.ExitFindings, Title: "the configured proxy does not accept connections",
			Remedy: "check proxy.url (arcagent config get proxy.url) or HTTPS_PROXY and that the proxy is running"},
		{Code: CodeProxyRefused, Exit: errcode.ExitFindings, Title: "the proxy refuses to connect to the endpoint",
			Remedy: "ask the proxy's administrator to allow CONNECT to the endpoint's host and port, or check the proxy's credentials"},
		{Code: CodeHTTP, Exit: errcode.ExitFindings, Title: "the endpoint answers with an HTTP error",
			Remedy: "the network path works; the server itself fails: check the server's logs, or the URL's path"},
		{Code: CodeConnectCheck, Exit: errcode.ExitFailed, Title: "connect stopped: the network check failed",
			Remedy: "fix what the table names and run connect again (arcagent check --server URL repeats the check); --ignore-network-check skips it"},
	} {
		errcode.Register(i)
	}
}
