package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAbandonedRequest: a handler failing because its client went away
// (the request's context ended) is logged as abandoned at info, with 499,
// not as a server failure (500, ERROR); any other error still is one.
func TestAbandonedRequest(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cancel   bool
		err      func(ctx context.Context) error
		status   int
		errorLog bool
	}{
		{"client gone", true, func(ctx context.Context) error { return fmt.Errorf("record heartbeat: %w", ctx.Err()) }, statusClientClosed, false},
		{"other error, client gone", true, func(context.Context) error { return errors.New("disk full") }, 500, true},
		{"canceled, client still there", false, func(context.Context) error { return context.Canceled }, 500, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := &Server{log: slog.New(slog.NewJSONHandler(&logs, nil))}
			ctx, cancel := context.WithCancel(context.Background())
			if tc.cancel {
				cancel()
			} else {
				defer cancel()
			}
			r := httptest.NewRequest("POST", "/v1/machines/x/heartbeat", nil).WithContext(ctx)
			w := httptest.NewRecorder()
			s.writeError(w, r, tc.err(ctx))
			if w.Code != tc.status || strings.Contains(logs.String(), `"level":"ERROR"`) != tc.errorLog {
				t.Fatalf("status %d, log %s", w.Code, logs.String())
			}
		})
	}
}
