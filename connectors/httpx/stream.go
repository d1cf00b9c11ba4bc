package httpx

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

// StreamTimeout bounds one file transfer (Open's read, Send's upload): a
// file takes longer than a JSON call, but a stalled one must end.
const StreamTimeout = 15 * time.Minute

// Open sends GET path and returns the answer's body as a stream, for
// downloading a file; errors map as Do's do. Closing the stream ends the
// request.
func (c *Client) Open(ctx context.Context, path string, header http.Header) (io.ReadCloser, http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, StreamTimeout)
	req, err := http.NewRequestWithContext(ctx, "GET", c.Base+path, nil)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%w: %w", connectors.ErrBadConfig, err)
	}
	for k, vs := range c.Header {
		req.Header[k] = vs
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.client().Do(req)
	if err != nil {
		cancel()
		return nil, nil, Redact(transportError("GET", path, err), req)
	}
	if resp.StatusCode >= 300 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		cancel()
		return nil, resp.Header, Redact(c.statusError("GET", path, resp, data), req)
	}
	return &cancelBody{ReadCloser: resp.Body, cancel: cancel, method: "GET", path: path}, resp.Header, nil
}

// Send sends method path with body streamed as is (contentType, length
// bytes; -1 when unknown) and decodes a JSON answer into out. The body is
// never held in memory.
func (c *Client) Send(ctx context.Context, method, path, contentType string, body io.Reader, length int64, out any) error {
	ctx, cancel := context.WithTimeout(ctx, StreamTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, io.NopCloser(body))
	if err != nil {
		return fmt.Errorf("%w: %w", connectors.ErrBadConfig, err)
	}
	req.ContentLength = length
	if length == 0 {
		req.Body = http.NoBody
	}
	for k, vs := range c.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	resp, err := c.client().Do(req)
	if err != nil {
		return Redact(transportError(method, path, err), req)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return Redact(transportError(method, path, err), req)
	}
	if err := c.statusError(method, path, resp, data); err != nil {
		return Redact(err, req)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: %w: malformed JSON answer: %w", method, path, connectors.ErrUnavailable, err)
		}
	}
	return nil
}

func (c *Client) client() *http.Client {
	if c.HTTP == nil {
		return http.DefaultClient
	}
	return c.HTTP
}

type cancelBody struct {
	io.ReadCloser
	cancel       context.CancelFunc
	method, path string
}

func (b *cancelBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = transportError(b.method, b.path, err)
	}
	return n, err
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
