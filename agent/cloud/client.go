// Package cloud is the client of the arcserver control plane API, shared by
// the agent's services (registration, heartbeats, desired state, status,
// managed-identity tokens, all authenticated with short-lived JWT
// assertions signed by the machine key) and by the operator CLI
// (`arcagent fleet`, authenticated with a bearer API token).
package cloud

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/arcagent/arcagent/controlplane/apiv1"
	"github.com/arcagent/arcagent/errcode"
	"github.com/arcagent/arcagent/internal/tlskex"
)

// maxResponse bounds how much of a response the client reads.
const maxResponse = 8 << 20

// Options configures a Client.
type Options struct {
	// CAPEM is the PEM CA bundle that signs the server certificate; empty
	// means the system roots.
	CAPEM []byte
	// HTTPClient replaces the default client (CAPEM is then ignored).
	HTTPClient *http.Client
	// Timeout per request; 0 means 30 seconds.
	Timeout time.Duration
	// UserAgent is sent with every request.
	UserAgent string
}

// Client talks to one control plane.
type Client struct {
	base *url.URL
	http *http.Client
	ua   string
}

// New returns a client for the server at baseURL (https://host:port).
func New(baseURL string, o Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || u.Host == "" {
		return nil, errcode.New(errcode.Usage, "server URL %q is not valid: use https://HOST:PORT", baseURL)
	}
	if u.Scheme != "https" {
		return nil, errcode.New(errcode.Usage, "server URL %q must use https://", baseURL)
	}
	c := &Client{base: u, http: o.HTTPClient, ua: o.UserAgent}
	if c.ua == "" {
		c.ua = "arcagent"
	}
	if c.http == nil {
		// A reconnect after the idle timeout resumes the TLS session.
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(8)}
		if len(o.CAPEM) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(o.CAPEM) {
				return nil, errcode.New(errcode.Usage, "the CA bundle holds no PEM certificate")
			}
			tc.RootCAs = pool
		}
		timeout := o.Timeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		c.http = &http.Client{Timeout: timeout, Transport: tlskex.Wrap(&http.Transport{
			TLSClientConfig:     tc,
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        100,
			MaxIdleConnsPerHost: 100,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			Proxy:               http.ProxyFromEnvironment,
		})}
	}
	return c, nil
}

// BaseURL is the server URL.
func (c *Client) BaseURL() string { return c.base.String() }

// APIError is an error response from the server.
type APIError struct {
	Status int
	Err    *errcode.Error
}

func (e *APIError) Error() string { return e.Err.Error() }

// Unwrap exposes the coded error (for its remedy and exit code).
func (e *APIError) Unwrap() error { return e.Err }

// StatusOf returns the HTTP status of an API error, 0 for other errors.
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// CodeOf returns the error code of an API error, "" for other errors.
func CodeOf(err error) errcode.Code {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Err.Code
	}
	return ""
}

// call sends one request. body (if not nil) is sent as JSON; out (if not
// nil) receives the JSON response. hdr adds headers. It returns the
// response headers and status.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, auth string, hdr http.Header, body, out any) (http.Header, int, error) {
	u := *c.base
	u.Path = c.base.Path + path
	if query != nil {
		u.RawQuery = query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, 0, fmt.Errorf("encode the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, 0, fmt.Errorf("build the request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		return nil, 0, errcode.Wrap(apiv1.CodeUnreachable, err, "%s %s", method, c.base.Host)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return resp.Header, resp.StatusCode, errcode.Wrap(apiv1.CodeUnreachable, err, "read the response of %s %s", method, path)
	}
	if resp.StatusCode >= 400 {
		var e apiv1.Error
		if json.Unmarshal(data, &e) != nil || e.Code == "" {
			return resp.Header, resp.StatusCode, &APIError{Status: resp.StatusCode, Err: errcode.New(apiv1.CodeBadResponse, "%s %s: HTTP %d from a server that is not arcserver", method, path, resp.StatusCode)}
		}
		return resp.Header, resp.StatusCode, &APIError{Status: resp.StatusCode, Err: errcode.New(errcode.Code(e.Code), "%s", e.Message)}
	}
	if out != nil && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.Header, resp.StatusCode, errcode.Wrap(apiv1.CodeBadResponse, err, "%s %s: decode the response", method, path)
		}
	}
	return resp.Header, resp.StatusCode, nil
}

// Discovery fetches the OIDC discovery document.
func (c *Client) Discovery(ctx context.Context) (apiv1.OpenIDConfiguration, error) {
	var out apiv1.OpenIDConfiguration
	_, _, err := c.call(ctx, http.MethodGet, "/.well-known/openid-configuration", nil, "", nil, nil, &out)
	return out, err
}

// JWKS fetches the published token-signing keys as raw JSON.
func (c *Client) JWKS(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	_, _, err := c.call(ctx, http.MethodGet, "/.well-known/jwks.json", nil, "", nil, nil, &out)
	return out, err
}

// stream GETs path and copies a successful body into w, refusing one
// longer than max bytes. Errors are decoded as call does.
func (c *Client) stream(ctx context.Context, path, auth string, w io.Writer, max int64) (int64, error) {
	u := *c.base
	u.Path = c.base.Path + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("build the request: %w", err)
	}
	req.Header.Set("User-Agent", c.ua)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, errcode.Wrap(apiv1.CodeUnreachable, err, "GET %s", c.base.Host)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		var e apiv1.Error
		if json.Unmarshal(data, &e) != nil || e.Code == "" {
			return 0, &APIError{Status: resp.StatusCode, Err: errcode.New(apiv1.CodeBadResponse, "GET %s: HTTP %d from a server that is not arcserver", path, resp.StatusCode)}
		}
		return 0, &APIError{Status: resp.StatusCode, Err: errcode.New(errcode.Code(e.Code), "%s", e.Message)}
	}
	if resp.StatusCode != http.StatusOK {
		return 0, errcode.New(apiv1.CodeBadResponse, "GET %s: unexpected HTTP %d", path, resp.StatusCode)
	}
	if resp.ContentLength > max {
		return 0, errcode.New(apiv1.CodeTooLarge, "GET %s: the server sends %d bytes, more than the %d expected", path, resp.ContentLength, max)
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, max+1))
	if err != nil {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		return n, errcode.Wrap(apiv1.CodeUnreachable, err, "GET %s: read the body", path)
	}
	if n > max {
		return n, errcode.New(apiv1.CodeTooLarge, "GET %s: the body is longer than the %d bytes expected", path, max)
	}
	return n, nil
}
