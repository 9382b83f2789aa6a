package controlplane

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/strictjson"
)

// Body limits.
const (
	maxBody       = 64 << 10 // ordinary requests
	maxStatusBody = 16 << 20 // status uploads (guest configuration: up to 5000 resources with reasons and evidence)
)

// apiError is an error the API reports to the caller as {code, message}.
type apiError struct {
	code errcode.Code
	msg  string
}

func (e *apiError) Error() string { return string(e.code) + ": " + e.msg }

func errf(code errcode.Code, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// forbidden is the 403 for a scope the caller named (in the path, the
// query or the body): naming it back tells them nothing new.
func forbidden(perm, scope string) *apiError {
	return errf(apiv1.CodeForbidden, "permission %s is required at scope %s (or a scope above it)", perm, scope)
}

// forbiddenHidden is the 403 for a resource the caller named by id whose
// scope only the server knows: it names neither that scope (the machine's
// name, its subscription and resource group) nor whether the resource
// exists, so that it reads the same for a resource outside the caller's
// scopes and for one that does not exist.
func forbiddenHidden(perm, what string) *apiError {
	return errf(apiv1.CodeForbidden, "permission %s is required on %s, which does not exist or lies outside the scopes of your role assignments: ask an Owner of its scope", perm, what)
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"ARC0210","message":"the response could not be encoded"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// statusClientClosed is the status the request log records for a request
// the client abandoned before its answer (nginx's 499): the client never
// sees it.
const statusClientClosed = 499

// writeError reports err. Errors that are not *apiError become a generic
// 500 whose details only reach the log.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) && r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
		// The client went away (or the server is shutting down) before the
		// answer: not a server failure, and nobody reads the response.
		s.log.InfoContext(r.Context(), "request abandoned by the client", "method", r.Method, "path", r.URL.Path)
		writeJSON(w, statusClientClosed, apiv1.Error{Code: string(apiv1.CodeServerError), Message: "the request was abandoned by the client"})
		return
	}
	if !errors.As(err, &ae) {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = errf(apiv1.CodeServerError, "the server could not handle the request; the server log has the details (request id %s)", w.Header().Get("X-Request-Id"))
	}
	if ae.code == apiv1.CodeUnauthenticated || ae.code == apiv1.CodeAssertionInvalid || ae.code == apiv1.CodeOnboardingInvalid {
		w.Header().Set("WWW-Authenticate", `Bearer realm="arcserver"`)
	}
	writeJSON(w, apiv1.HTTPStatus(ae.code), apiv1.Error{Code: string(ae.code), Message: ae.msg})
}

// decodeBody reads a JSON request body strictly into dst: at most limit
// bytes, Content-Type application/json (when given), no unknown fields, one
// value and nothing after it.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return errf(apiv1.CodeUnsupportedMedia, "Content-Type %q is not accepted: send application/json", ct)
		}
	}
	if r.ContentLength > limit {
		return errf(apiv1.CodeTooLarge, "the request body is %d bytes; the limit is %d", r.ContentLength, limit)
	}
	return DecodeStrict(http.MaxBytesReader(w, r.Body, limit), limit, dst)
}

// DecodeStrict decodes exactly one JSON value from rd into dst, refusing
// unknown fields, trailing data, bodies over limit bytes, duplicate keys
// and keys that match a field only in another case (encoding/json would
// take {"Scope":…} for "scope", and the last of two equal keys). Its errors
// are worded for the API caller.
func DecodeStrict(rd io.Reader, limit int64, dst any) error {
	data, err := io.ReadAll(io.LimitReader(rd, limit+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe) || int64(len(data)) > limit:
		return errf(apiv1.CodeTooLarge, "the request body is larger than the limit of %d bytes", limit)
	case err != nil:
		return errf(apiv1.CodeBadRequest, "the request body cannot be read: %s", err.Error())
	}
	return decodeStrictBytes(data, dst)
}

// decodeStrictBytes is DecodeStrict for a body already read (and already
// within its limit).
func decodeStrictBytes(data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber() // numbers in free-form JSON (extension settings) keep every digit
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errf(apiv1.CodeBadRequest, "the request body has data after the JSON value: send exactly one JSON object")
	}
	if err := strictjson.Check(data, dst); err != nil {
		var se *strictjson.Error
		if errors.As(err, &se) && errors.Is(err, strictjson.ErrCaseMismatch) {
			return errf(apiv1.CodeBadRequest, "the request body's %s; see docs/controlplane.md for the fields", se.Error())
		}
		if errors.As(err, &se) {
			return errf(apiv1.CodeBadRequest, "the request body's %s: send each field once", se.Error())
		}
		return errf(apiv1.CodeBadRequest, "the request body cannot be read as JSON: %s", err.Error())
	}
	return nil
}

// jsonError words a decoding error of a body that was read whole (its
// size was checked before).
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return errf(apiv1.CodeBadRequest, "the request body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errf(apiv1.CodeBadRequest, "the request body ends in the middle of the JSON value")
	case errors.As(err, &syn):
		return errf(apiv1.CodeBadRequest, "the request body is not valid JSON (at byte %d): %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return errf(apiv1.CodeBadRequest, "the request body must be a JSON object, not %s", typ.Value)
		}
		return errf(apiv1.CodeBadRequest, "field %q must be %s, not %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errf(apiv1.CodeBadRequest, "%s is not accepted here: remove it (see docs/controlplane.md for the fields)", strings.TrimPrefix(err.Error(), "json: "))
	}
	return errf(apiv1.CodeBadRequest, "the request body cannot be read as JSON: %s", err.Error())
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "a list"
	}
	return k
}

// statusRecorder remembers the status and size of a response for the log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// caller is filled in by authentication so the request log can name who
// made the request (never how: tokens and assertions are not logged).
type caller struct {
	principal string
	machine   string
}

type callerKey struct{}

func logAttrs(c *caller) []slog.Attr {
	var a []slog.Attr
	if c.principal != "" {
		a = append(a, slog.String("principal", c.principal))
	}
	if c.machine != "" {
		a = append(a, slog.String("machine", c.machine))
	}
	return a
}
