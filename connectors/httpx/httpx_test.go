package httpx

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

func TestStatusMapping(t *testing.T) {
	var status int
	var header string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		case "/drop":
			conn, _, _ := w.(http.Hijacker).Hijack()
			_ = conn.Close()
			return
		case "/bad-json":
			_, _ = w.Write([]byte("{"))
			return
		}
		if header != "" {
			w.Header().Set("Retry-After", header)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Client{Base: srv.URL, Timeout: 100 * time.Millisecond, Now: func() time.Time { return now }}
	for _, tc := range []struct {
		path, header string
		status       int
		want         error
		after        time.Duration
	}{
		{"/x", "", 200, nil, 0},
		{"/x", "", 404, connectors.ErrNotFound, 0},
		{"/x", "", 422, connectors.ErrInvalid, 0},
		{"/x", "", 401, connectors.ErrBadConfig, 0},
		{"/x", "", 500, connectors.ErrUnavailable, 0},
		{"/x", "7", 429, connectors.ErrUnavailable, 7 * time.Second},
		{"/x", now.Add(90 * time.Second).Format(http.TimeFormat), 503, connectors.ErrUnavailable, 90 * time.Second},
		{"/x", "", 429, connectors.ErrUnavailable, 0},
		{"/slow", "", 200, connectors.ErrUnavailable, 0},
		{"/drop", "", 200, connectors.ErrUnavailable, 0},
		{"/bad-json", "", 200, connectors.ErrUnavailable, 0},
	} {
		status, header = tc.status, tc.header
		var out map[string]any
		err := c.Do(context.Background(), "GET", tc.path, nil, &out)
		if tc.want == nil {
			if err != nil || out["ok"] != true {
				t.Fatalf("%s %d: %v %v", tc.path, tc.status, err, out)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s %d: %v, want %v", tc.path, tc.status, err, tc.want)
		}
		var ra *connectors.RetryAfterError
		if got := errors.As(err, &ra); got != (tc.after > 0) || (got && ra.After != tc.after) {
			t.Fatalf("%s %d: retry-after %v (%v), want %v", tc.path, tc.status, got, ra, tc.after)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Do(ctx, "GET", "/x", nil, nil); errors.Is(err, connectors.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
}
