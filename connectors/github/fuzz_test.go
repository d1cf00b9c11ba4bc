package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/duplexsync/duplex/connectors"
)

// FuzzWebhook: a signed body of any shape is parsed or refused with
// ErrInvalid, never a panic.
func FuzzWebhook(f *testing.F) {
	names, _ := filepath.Glob("testdata/webhook-*.json")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("issues", b)
		f.Add("issue_comment", b)
	}
	c := &conn{secret: "s", fullName: "Codertocat/Hello-World"}
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		m := hmac.New(sha256.New, []byte("s"))
		m.Write(body)
		h := http.Header{"X-Hub-Signature-256": {"sha256=" + hex.EncodeToString(m.Sum(nil))}, "X-Github-Event": {event}, "X-Github-Delivery": {"d"}}
		if _, err := c.Webhook(h, body); err != nil && !errors.Is(err, connectors.ErrInvalid) {
			t.Fatalf("a signed body failed with %v, want nil or ErrInvalid", err)
		}
	})
}
