package releases

import (
	"fmt"

	"github.com/arcagent/arcagent/errcode"
)

// Error codes registered by this package (ARC0300–ARC0349). Never renumber
// them: scripts and docs/releases.md depend on them.
const (
	CodeBadSource      errcode.Code = "ARC0300" // release source flags or configuration invalid
	CodeUnknownProduct errcode.Code = "ARC0301" // the source has no such product
	CodeNotFound       errcode.Code = "ARC0302" // repository (or catalog URL) not found: 404
	CodeUnreachable    errcode.Code = "ARC0303" // the source cannot be reached
	CodeRateLimited    errcode.Code = "ARC0304" // GitHub primary rate limit exhausted
	CodeSecondaryLimit errcode.Code = "ARC0305" // GitHub secondary rate limit
	CodeCacheCorrupt   errcode.Code = "ARC0306" // a response cache file is damaged
	CodeNotCached      errcode.Code = "ARC0307" // offline and the response is not cached
	CodeRefused        errcode.Code = "ARC0308" // the source refused the request (401, 5xx, bad body)
	CodeBadPolicy      errcode.Code = "ARC0309" // --support-window or --supported invalid
	CodeBadInventory   errcode.Code = "ARC0310" // the inventory cannot be read or is not JSON/CSV
	CodeBadOutput      errcode.Code = "ARC0311" // -o FORMAT[=FILE] invalid
)

func init() {
	for _, i := range []errcode.Info{
		{Code: CodeBadSource, Exit: errcode.ExitUsage, Title: "release source not usable as given",
			Remedy: "give --github-repo PRODUCT=OWNER/REPO (repeatable) and optionally --github-url https://HOST/api/v3/ for GitHub Enterprise, or --catalog FILE|https://URL with --catalog-name NAME; see docs/releases.md"},
		{Code: CodeUnknownProduct, Exit: errcode.ExitUsage, Title: "the release source does not know this product",
			Remedy: "map the product to a repository with --github-repo PRODUCT=OWNER/REPO, or use a catalog that lists it; product names are `arcagent` for the agent and PUBLISHER.TYPE for extensions"},
		{Code: CodeNotFound, Exit: errcode.ExitUsage, Title: "release repository or catalog not found",
			Remedy: "check the OWNER/REPO spelling and --github-url; a private repository needs GITHUB_TOKEN with read access (GitHub answers 404, not 403, without it)"},
		{Code: CodeUnreachable, Exit: errcode.ExitFailed, Title: "release source unreachable",
			Remedy: "check the network, proxy (HTTPS_PROXY) and --github-url; run with --offline to use the responses cached by an earlier run"},
		{Code: CodeRateLimited, Exit: errcode.ExitFailed, Title: "GitHub API rate limit exhausted",
			Remedy: "set GITHUB_TOKEN (5,000 requests an hour instead of 60), wait until the reset time shown, pass --wait-rate-limit 15m to wait once, or use --offline with the cache"},
		{Code: CodeSecondaryLimit, Exit: errcode.ExitFailed, Title: "GitHub secondary rate limit",
			Remedy: "GitHub throttled bursts of requests: wait the time shown and run again, or pass --wait-rate-limit to wait once; avoid running many currency checks in parallel"},
		{Code: CodeCacheCorrupt, Exit: errcode.ExitFailed, Title: "release cache file damaged",
			Remedy: "delete the file named (or the whole --release-cache directory) and run again online; it is fetched again"},
		{Code: CodeNotCached, Exit: errcode.ExitFailed, Title: "offline and the releases are not cached",
			Remedy: "run once without --offline (with the same --release-cache) to fill the cache"},
		{Code: CodeRefused, Exit: errcode.ExitFailed, Title: "the release source refused the request",
			Remedy: "a 401 means GITHUB_TOKEN is wrong or expired; other statuses come from the server: check --github-url and try again later"},
		{Code: CodeBadPolicy, Exit: errcode.ExitUsage, Title: "support policy invalid",
			Remedy: "--support-window takes a length such as 12mo, 1y, 26w or 180d (optionally PRODUCT=LENGTH); --supported takes PRODUCT=CONSTRAINT such as arcagent='>=1.40.0'"},
		{Code: CodeBadInventory, Exit: errcode.ExitUsage, Title: "inventory file not usable",
			Remedy: "give JSON ({\"machines\":[…]} or a bare array of {\"name\",\"agent\",\"extensions\":[{\"name\",\"version\"}]}) or a CSV with a header machine,agent,extensions; see examples/inventory/"},
		{Code: CodeBadOutput, Exit: errcode.ExitUsage, Title: "output format invalid",
			Remedy: "use -o FORMAT or -o FORMAT=FILE with FORMAT one of table, json, csv, markdown, sarif, junit, html; give each output sent to standard output its own file"},
	} {
		errcode.Register(i)
	}
}

// Error is the error type of this package: a stable code, the source it
// concerns, a message worded for the reader and an optional cause.
// It is an errcode.Coder, so the CLI prints the code's remedy and exits with
// its status, and callers match it by code with errcode.Is (errors.Is with
// the Code works too).
type Error struct {
	Code   errcode.Code
	Source string // the source, e.g. "GitHub api.github.com repository o/r"
	Msg    string
	Cause  error
}

// Error is the source, the message and the cause; the CLI prints the code
// in front (errcode.Format).
func (e *Error) Error() string {
	s := ""
	if e.Source != "" {
		s += e.Source + ": "
	}
	s += e.Msg
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap exposes the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Is makes errors.Is(err, code) true for an *Error with that code.
func (e *Error) Is(target error) bool {
	c, ok := target.(errcode.Code)
	return ok && c == e.Code
}

// ErrorCode makes *Error an errcode.Coder: the CLI finds its code, remedy
// and exit status, and errcode.Is matches it, without converting it to
// another type (which lost its class).
func (e *Error) ErrorCode() errcode.Code { return e.Code }

func newErr(code errcode.Code, source string, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Source: source, Cause: cause, Msg: fmt.Sprintf(format, args...)}
}
