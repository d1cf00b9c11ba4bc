package jira

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/duplexsync/duplex/connectors"
)

// seeds adds every JSON file of testdata as a corpus entry.
func seeds(f *testing.F, glob string) {
	names, _ := filepath.Glob(filepath.Join("testdata", glob))
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzWebhook: a signed body of any shape is parsed or refused with
// ErrInvalid, never a panic.
func FuzzWebhook(f *testing.F) {
	seeds(f, "webhook_*.json")
	c := &conn{hookSecret: "s", s: Settings{Project: "EX"}, name: "fuzz"}
	f.Fuzz(func(t *testing.T, body []byte) {
		m := hmac.New(sha256.New, []byte("s"))
		m.Write(body)
		h := http.Header{"X-Hub-Signature": {"sha256=" + hex.EncodeToString(m.Sum(nil))}}
		if _, err := c.Webhook(h, body); err != nil && !errors.Is(err, connectors.ErrInvalid) {
			t.Fatalf("a signed body failed with %v, want nil or ErrInvalid", err)
		}
	})
}

// FuzzADF: any document (ADF is what Jira's API and webhooks carry) turns
// into text without a panic; a valid document's text is valid UTF-8 JSON
// material.
func FuzzADF(f *testing.F) {
	seeds(f, "*.json")
	f.Add([]byte(`{"type":"doc","content":[{"type":"bulletList","content":[{"type":"listItem","content":[{"type":"paragraph","content":[{"type":"text","text":"x","marks":[{"type":"strong"}]}]}]}]}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s := adfText(json.RawMessage(raw))
		if _, err := json.Marshal(s); err != nil {
			t.Fatal(err)
		}
	})
}
