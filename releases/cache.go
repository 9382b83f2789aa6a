package releases

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/arcagent/arcagent/internal/atomicfile"
)

// maxCachedBody bounds one cached response.
const maxCachedBody = 32 << 20

// cacheEntry is one cached GET response, stored as JSON in
// <dir>/<sha256 of the URL>.json.
type cacheEntry struct {
	URL     string    `json:"url"`
	ETag    string    `json:"etag"`
	Link    string    `json:"link,omitempty"`
	Type    string    `json:"contentType,omitempty"`
	SavedAt time.Time `json:"savedAt"`
	Body    string    `json:"body"`
}

// cacheTransport keeps GET responses that carry an ETag on disk and makes
// the next request for the same URL conditional (If-None-Match). A 304
// answer is served from the cache. Offline, the cache is the only source.
type cacheTransport struct {
	dir     string
	offline bool
	next    http.RoundTripper
	source  func() string
}

func (t *cacheTransport) path(req *http.Request) string {
	// Responses seen with and without a token may differ (private
	// repositories): keep them apart without putting the token anywhere.
	auth := "anonymous"
	if req.Header.Get("Authorization") != "" {
		auth = "authenticated"
	}
	sum := sha256.Sum256([]byte(auth + "\x00" + req.URL.String()))
	return filepath.Join(t.dir, hex.EncodeToString(sum[:16])+".json")
}

func (t *cacheTransport) load(p string) (*cacheEntry, error) {
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, newErr(CodeCacheCorrupt, t.source(), err, "cannot read the release cache file %s", p)
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil || e.URL == "" {
		return nil, newErr(CodeCacheCorrupt, t.source(), nil, "the release cache file %s is damaged: delete it and run again online", p)
	}
	return &e, nil
}

func (t *cacheTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || t.dir == "" {
		if t.offline {
			return nil, newErr(CodeNotCached, t.source(), nil, "offline: %s %s is not cached", req.Method, req.URL.Redacted())
		}
		return t.next.RoundTrip(req)
	}
	p := t.path(req)
	e, err := t.load(p)
	if err != nil {
		return nil, err
	}
	if e != nil && e.URL != req.URL.String() {
		return nil, newErr(CodeCacheCorrupt, t.source(), nil, "the release cache file %s holds another URL: delete it and run again online", p)
	}
	if t.offline {
		if e == nil {
			return nil, newErr(CodeNotCached, t.source(), nil, "offline: %s is not in the release cache %s", req.URL.Redacted(), t.dir)
		}
		resp := e.response(req, http.Header{})
		resp.Header.Set("X-From-Cache", "1")
		return resp, nil
	}
	if e != nil && e.ETag != "" {
		req = req.Clone(req.Context())
		req.Header.Set("If-None-Match", e.ETag)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotModified && e != nil {
		resp.Body.Close()
		return e.response(req, resp.Header), nil
	}
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || etag == "" {
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCachedBody+1))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if len(body) > maxCachedBody {
		return resp, nil
	}
	ne := cacheEntry{URL: req.URL.String(), ETag: etag, Link: resp.Header.Get("Link"), Type: resp.Header.Get("Content-Type"), SavedAt: time.Now().UTC(), Body: string(body)}
	data, err := json.Marshal(ne)
	if err == nil {
		if err = os.MkdirAll(t.dir, 0o700); err == nil {
			err = atomicfile.WriteFile(p, data, atomicfile.WriteOptions{Mode: 0o600})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: write the release cache %s: %w (check the directory, or pass another --release-cache)", t.source(), t.dir, err)
	}
	return resp, nil
}

// response rebuilds the cached response; live carries the headers of the
// 304 that revalidated it (rate limits), which win.
func (e *cacheEntry) response(req *http.Request, live http.Header) *http.Response {
	h := http.Header{}
	for k, v := range live {
		if strings.HasPrefix(strings.ToLower(k), "x-ratelimit") || k == "Date" {
			h[k] = v
		}
	}
	h.Set("ETag", e.ETag)
	if e.Link != "" {
		h.Set("Link", e.Link)
	}
	if e.Type != "" {
		h.Set("Content-Type", e.Type)
	}
	h.Set("Content-Length", strconv.Itoa(len(e.Body)))
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(e.Body)), ContentLength: int64(len(e.Body)), Request: req,
	}
}
