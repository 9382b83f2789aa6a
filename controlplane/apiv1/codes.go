// Package apiv1 holds the JSON wire types of the arcserver /v1 API and the
// stable error codes (ARC0200–ARC0299) that the server puts in its
// {code, message} error bodies. The server (controlplane) and its clients
// (agent/cloud, the fleet CLI) share these types so that both sides agree
// on every field.
package apiv1

import (
	"net/http"

	"github.com/arcagent/arcagent/errcode"
)

// Error codes of the control plane and its clients. Never renumber.
const (
	CodeBadRequest        errcode.Code = "ARC0200"
	CodeUnauthenticated   errcode.Code = "ARC0201"
	CodeForbidden         errcode.Code = "ARC0202"
	CodeNotFound          errcode.Code = "ARC0203"
	CodeConflict          errcode.Code = "ARC0204"
	CodeTooLarge          errcode.Code = "ARC0205"
	CodeUnsupportedMedia  errcode.Code = "ARC0206"
	CodeOnboardingInvalid errcode.Code = "ARC0207"
	CodeAssertionInvalid  errcode.Code = "ARC0208"
	CodeMachineExpired    errcode.Code = "ARC0209"
	CodeServerError       errcode.Code = "ARC0210"
	CodeNotLoggedIn       errcode.Code = "ARC0211"
	CodeUnreachable       errcode.Code = "ARC0212"
	CodeDataDir           errcode.Code = "ARC0213"
	CodeMethodNotAllowed  errcode.Code = "ARC0214"
	CodeStore             errcode.Code = "ARC0215"
	CodeTLSConfig         errcode.Code = "ARC0216"
	CodeBadResponse       errcode.Code = "ARC0217"
	// Replicas (issue 20): ARC0670–ARC0679.
	CodeDataDirLocked      errcode.Code = "ARC0670"
	CodeSettingsKeyDiffers errcode.Code = "ARC0671"
)

// StatusOf is the HTTP status the server answers with for each code.
var statusOf = map[errcode.Code]int{
	CodeBadRequest:        http.StatusBadRequest,
	CodeUnauthenticated:   http.StatusUnauthorized,
	CodeForbidden:         http.StatusForbidden,
	CodeNotFound:          http.StatusNotFound,
	CodeConflict:          http.StatusConflict,
	CodeTooLarge:          http.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia:  http.StatusUnsupportedMediaType,
	CodeOnboardingInvalid: http.StatusUnauthorized,
	CodeAssertionInvalid:  http.StatusUnauthorized,
	CodeMachineExpired:    http.StatusForbidden,
	CodeServerError:       http.StatusInternalServerError,
	CodeMethodNotAllowed:  http.StatusMethodNotAllowed,
}

// HTTPStatus returns the HTTP status for an API error code (500 for codes
// that are not API errors).
func HTTPStatus(c errcode.Code) int {
	if s, ok := statusOf[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeBadRequest, Exit: errcode.ExitUsage, Title: "the request is malformed or has an invalid field", Remedy: "fix the value named in the message and send the request again"},
		{Code: CodeUnauthenticated, Exit: errcode.ExitFailed, Title: "missing, unknown or expired API token", Remedy: "run `arcagent fleet login --server URL --token TOKEN` with a valid token (ask an Owner for one: `arcagent fleet tokens create`)"},
		{Code: CodeForbidden, Exit: errcode.ExitFailed, Title: "the caller lacks a permission at this scope", Remedy: "ask an Owner to assign you a role that grants the permission named in the message (`arcagent fleet roles assign`)"},
		{Code: CodeNotFound, Exit: errcode.ExitUsage, Title: "no such resource", Remedy: "check the name or id; list what exists with `arcagent fleet subscriptions|groups|machines|packages list`"},
		{Code: CodeConflict, Exit: errcode.ExitUsage, Title: "the resource already exists", Remedy: "choose another name, or delete the existing resource first; a published package version is never replaced: publish a new version"},
		{Code: CodeTooLarge, Exit: errcode.ExitUsage, Title: "the request body is too large", Remedy: "send a smaller request; the limit is stated in the message"},
		{Code: CodeUnsupportedMedia, Exit: errcode.ExitUsage, Title: "the request body is not JSON", Remedy: "send the body as JSON with Content-Type: application/json"},
		{Code: CodeOnboardingInvalid, Exit: errcode.ExitFailed, Title: "the onboarding credential is unknown, expired, used up or revoked", Remedy: "ask an operator for a fresh one: `arcagent fleet onboarding create --resource-group RG --expires 1h --uses 1`"},
		{Code: CodeAssertionInvalid, Exit: errcode.ExitFailed, Title: "the machine's signed assertion was refused", Remedy: "check the machine's clock and its registration (agentconfig.json and the machine key); re-register the machine if it was deleted"},
		{Code: CodeMachineExpired, Exit: errcode.ExitFailed, Title: "the machine sent no heartbeat for 45 days and has expired", Remedy: "delete the machine (`arcagent fleet machines delete`) and connect it again with a fresh onboarding credential"},
		{Code: CodeServerError, Exit: errcode.ExitFailed, Title: "the control plane failed to handle the request", Remedy: "retry; if it keeps failing, read the arcserver log for the request"},
		{Code: CodeNotLoggedIn, Exit: errcode.ExitUsage, Title: "not logged in to a control plane", Remedy: "run `arcagent fleet login --server URL --token TOKEN [--ca-file CA.pem]` first"},
		{Code: CodeUnreachable, Exit: errcode.ExitFailed, Title: "the control plane cannot be reached", Remedy: "check the server URL, that arcserver is running, and the CA file (--ca-file) that signs its certificate"},
		{Code: CodeDataDir, Exit: errcode.ExitUsage, Title: "the server data directory is missing, not initialised or already initialised", Remedy: "run `arcserver init --data DIR` once, then `arcserver serve --data DIR`"},
		{Code: CodeMethodNotAllowed, Exit: errcode.ExitUsage, Title: "the HTTP method is not allowed on this path", Remedy: "use a method listed in the Allow header; see docs/controlplane.md for the API"},
		{Code: CodeStore, Exit: errcode.ExitFailed, Title: "the server database failed", Remedy: "check the data directory's disk space and permissions; restore from `arcserver backup` if the database is damaged"},
		{Code: CodeTLSConfig, Exit: errcode.ExitUsage, Title: "the TLS certificate or key cannot be used", Remedy: "give a PEM certificate and its matching private key with --tls-cert and --tls-key, or omit both to use the generated ones"},
		{Code: CodeBadResponse, Exit: errcode.ExitFailed, Title: "the control plane sent a response that cannot be understood", Remedy: "check that the URL points at arcserver and that client and server versions match"},
		{Code: CodeDataDirLocked, Exit: errcode.ExitFailed, Title: "another arcserver already serves this data directory", Remedy: "stop the other `arcserver serve --data DIR`, or start every process over the shared database with --replica (docs/controlplane.md, Replicas)"},
		{Code: CodeSettingsKeyDiffers, Exit: errcode.ExitFailed, Title: "this replica's protected-settings key differs from the one the other replicas use", Remedy: "copy DATA/protected-settings.key (mode 0600) from the first replica's data directory to this one's and restart it"},
	} {
		errcode.Register(i)
	}
}
