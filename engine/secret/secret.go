// Package secret seals system credentials at rest with AES-256-GCM. The key
// comes from DUPLEX_SECRET_KEY (base64, 32 bytes) or from a key file created
// with mode 0600 beside the database on first start.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrDecrypt means the ciphertext was not sealed with this key or was altered.
var ErrDecrypt = errors.New("secret: cannot decrypt (wrong key or corrupted data)")

// version prefixes every sealed value so the format can change later.
const version byte = 1

// Box seals and opens secrets with one key.
type Box struct{ aead cipher.AEAD }

// New makes a Box from a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return &Box{aead: aead}, nil
}

// FromBase64 decodes a base64 key (standard or URL alphabet).
func FromBase64(s string) (*Box, error) {
	s = strings.TrimSpace(s)
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		key, err = base64.RawURLEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, fmt.Errorf("secret: key is not base64: %w", err)
	}
	return New(key)
}

// LoadOrCreate reads a base64 key from path, creating the file with a new
// random key (mode 0600) if it does not exist.
func LoadOrCreate(path string) (*Box, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return FromBase64(string(b))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("secret: read key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	enc := base64.StdEncoding.EncodeToString(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("secret: create key file: %w", err)
	}
	if _, err := f.WriteString(enc + "\n"); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("secret: write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("secret: write key file: %w", err)
	}
	return New(key)
}

// Seal encrypts plaintext; every call uses a fresh random nonce.
func (b *Box) Seal(plaintext []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	out := append([]byte{version}, nonce...)
	return b.aead.Seal(out, nonce, plaintext, []byte{version}), nil
}

// Open decrypts what Seal produced.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != version {
		return nil, ErrDecrypt
	}
	pt, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte{version})
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// SealMap seals a map of named secrets; an empty map seals to nil.
func (b *Box) SealMap(m map[string]string) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return b.Seal(raw)
}

// OpenMap opens what SealMap produced; nil opens to an empty map.
func (b *Box) OpenMap(sealed []byte) (map[string]string, error) {
	out := map[string]string{}
	if len(sealed) == 0 {
		return out, nil
	}
	raw, err := b.Open(sealed)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return out, nil
}
