// Package secret seals system credentials at rest with AES-256-GCM. The key
// comes from DUPLEX_SECRET_KEY (base64, 32 bytes) or from a key file created
// with mode 0600 beside the database on first start.
//
// A Box holds one primary key, which seals, and any number of keys that only
// open: that is what lets `duplex secrets rotate` re-seal everything with a
// new key while values sealed with the old one stay readable at every step.
//
// Sealed formats:
//
//	version 1: 0x01 | nonce | ciphertext           (AAD 0x01; single-key boxes before rotation)
//	version 2: 0x02 | key id (4) | nonce | ciphertext (AAD 0x02 | key id)
//
// The key id is the first 4 bytes of SHA-256(key): it names the key without
// revealing it, so Open goes straight to the right key.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrDecrypt means the ciphertext was not sealed with any key of the box or
// was altered.
var ErrDecrypt = errors.New("secret: cannot decrypt (wrong key or corrupted data)")

// Format versions, the first byte of every sealed value.
const (
	version1 byte = 1 // no key id: opened by trying every key
	version2 byte = 2 // 4-byte key id follows
)

const idLen = 4

// KeyLen is the length of a key in bytes (AES-256).
const KeyLen = 32

type key struct {
	id   [idLen]byte
	aead cipher.AEAD
}

// Box seals with its primary key and opens with any of its keys.
//
// A Box given a reload function (SetReload) re-reads its keys when it meets
// a value sealed with a key it does not hold, which is how a running process
// picks up a rotation made by another one without a restart.
type Box struct {
	ring atomic.Pointer[keyring]

	mu     sync.Mutex // serializes reloads
	reload func() (*Box, error)
	last   time.Time // of the last reload attempt
}

// keyring is the keys of a Box at one time; it is never changed, a reload
// replaces it.
type keyring struct {
	primary key
	keys    []key // primary first, then the openers, without duplicates
}

// reloadEvery bounds how often a Box re-reads its keys: a value sealed with
// a key that is really gone costs one read per interval, not one per Open.
const reloadEvery = time.Second

// KeyID names a key: hex of the first 4 bytes of its SHA-256.
func KeyID(k []byte) string {
	id := keyID(k)
	return hex.EncodeToString(id[:])
}

func keyID(k []byte) [idLen]byte {
	sum := sha256.Sum256(k)
	var id [idLen]byte
	copy(id[:], sum[:idLen])
	return id
}

func newKey(k []byte) (key, error) {
	if len(k) != KeyLen {
		return key{}, fmt.Errorf("secret: key must be %d bytes, got %d", KeyLen, len(k))
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return key{}, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, fmt.Errorf("secret: %w", err)
	}
	return key{id: keyID(k), aead: aead}, nil
}

// New makes a Box that seals with primary and also opens values sealed with
// any of openers (earlier or later keys during a rotation).
func New(primary []byte, openers ...[]byte) (*Box, error) {
	p, err := newKey(primary)
	if err != nil {
		return nil, err
	}
	r := &keyring{primary: p, keys: []key{p}}
	for _, o := range openers {
		k, err := newKey(o)
		if err != nil {
			return nil, err
		}
		if r.find(k.id) == nil {
			r.keys = append(r.keys, k)
		}
	}
	b := &Box{}
	b.ring.Store(r)
	return b, nil
}

// SetReload gives the box a way to re-read its keys (for example from the
// key files). When Open meets a value sealed with a key the box does not
// hold, it calls load (at most once a second), and on success seals with the
// loaded primary from then on and opens with the loaded keys and every key
// it held before, so nothing it could open becomes unreadable. A failed load
// keeps the keys it has. Call it before the box is shared.
func (b *Box) SetReload(load func() (*Box, error)) { b.reload = load }

// KeyID names the primary key (see KeyID).
func (b *Box) KeyID() string {
	id := b.ring.Load().primary.id
	return hex.EncodeToString(id[:])
}

func (r *keyring) find(id [idLen]byte) *key {
	for i := range r.keys {
		if r.keys[i].id == id {
			return &r.keys[i]
		}
	}
	return nil
}

// reloadKeys re-reads the keys after seen failed to open a value; it
// returns the keys to retry with, or nil.
func (b *Box) reloadKeys(seen *keyring) *keyring {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.ring.Load(); cur != seen {
		return cur // reloaded meanwhile
	}
	if now := time.Now(); now.Sub(b.last) < reloadEvery {
		return nil
	} else {
		b.last = now
	}
	nb, err := b.reload()
	if err != nil || nb == nil {
		return nil
	}
	loaded := nb.ring.Load()
	r := &keyring{primary: loaded.primary, keys: append([]key{}, loaded.keys...)}
	for _, k := range seen.keys {
		if r.find(k.id) == nil {
			r.keys = append(r.keys, k)
		}
	}
	b.ring.Store(r)
	return r
}

// GenerateKey returns a new random key.
func GenerateKey() ([]byte, error) {
	k := make([]byte, KeyLen)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return k, nil
}

// EncodeKey is the text form of a key, as in key files and DUPLEX_SECRET_KEY.
func EncodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// DecodeKey reads a base64 key (standard or URL alphabet).
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		k, err = base64.RawURLEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, fmt.Errorf("secret: key is not base64: %w", err)
	}
	if len(k) != KeyLen {
		return nil, fmt.Errorf("secret: key must be %d bytes, got %d", KeyLen, len(k))
	}
	return k, nil
}

// FromBase64 makes a single-key Box from a base64 key.
func FromBase64(s string) (*Box, error) {
	k, err := DecodeKey(s)
	if err != nil {
		return nil, err
	}
	return New(k)
}

// ReadKeyFile reads a base64 key file; a missing file is an error wrapping
// os.ErrNotExist.
func ReadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret: read key: %w", err)
	}
	k, err := DecodeKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// WriteKeyFile creates path (mode 0600, refusing to overwrite) holding k, and
// syncs the file and its directory so the key is on disk before anything is
// sealed with it.
func WriteKeyFile(path string, k []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("secret: create key file: %w", err)
	}
	if _, err := f.WriteString(EncodeKey(k) + "\n"); err != nil {
		_ = f.Close()
		return fmt.Errorf("secret: write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("secret: sync key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("secret: write key file: %w", err)
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir makes creations and renames in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("secret: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("secret: sync dir: %w", err)
	}
	return nil
}

// LoadOrCreate reads a base64 key from path, creating the file with a new
// random key (mode 0600) if it does not exist.
func LoadOrCreate(path string) (*Box, error) {
	k, err := ReadKeyFile(path)
	if err == nil {
		return New(k)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if k, err = GenerateKey(); err != nil {
		return nil, err
	}
	if err := WriteKeyFile(path, k); err != nil {
		return nil, err
	}
	return New(k)
}

// Seal encrypts plaintext with the primary key; every call uses a fresh
// random nonce.
func (b *Box) Seal(plaintext []byte) ([]byte, error) {
	p := b.ring.Load().primary
	nonce := make([]byte, p.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	head := append([]byte{version2}, p.id[:]...)
	out := append(append([]byte{}, head...), nonce...)
	return p.aead.Seal(out, nonce, plaintext, head), nil
}

// Open decrypts what Seal produced with any key of the box, and version-1
// values sealed before keys had ids. A value sealed with a key the box does
// not hold makes a box with a reload function re-read its keys once.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	r := b.ring.Load()
	pt, err := r.open(sealed)
	if err == nil || b.reload == nil || !r.unknownKey(sealed) {
		return pt, err
	}
	if r = b.reloadKeys(r); r == nil {
		return nil, err
	}
	return r.open(sealed)
}

// unknownKey tells whether sealed may be sealed with a key r does not hold
// (rather than altered): a version-2 value with a key id r lacks, or a
// version-1 value none of its keys opened.
func (r *keyring) unknownKey(sealed []byte) bool {
	switch {
	case len(sealed) > 0 && sealed[0] == version1:
		return true
	case len(sealed) >= 1+idLen && sealed[0] == version2:
		return r.find([idLen]byte(sealed[1:1+idLen])) == nil
	}
	return false
}

func (r *keyring) open(sealed []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, ErrDecrypt
	}
	switch sealed[0] {
	case version1:
		// No key id: try each key, primary first (the usual case).
		for _, k := range r.keys {
			n := k.aead.NonceSize()
			if len(sealed) < 1+n {
				return nil, ErrDecrypt
			}
			if pt, err := k.aead.Open(nil, sealed[1:1+n], sealed[1+n:], sealed[:1]); err == nil {
				return pt, nil
			}
		}
		return nil, ErrDecrypt
	case version2:
		if len(sealed) < 1+idLen {
			return nil, ErrDecrypt
		}
		var id [idLen]byte
		copy(id[:], sealed[1:1+idLen])
		k := r.find(id)
		if k == nil {
			return nil, ErrDecrypt
		}
		head := sealed[:1+idLen]
		n := k.aead.NonceSize()
		if len(sealed) < len(head)+n {
			return nil, ErrDecrypt
		}
		pt, err := k.aead.Open(nil, sealed[len(head):len(head)+n], sealed[len(head)+n:], head)
		if err != nil {
			return nil, ErrDecrypt
		}
		return pt, nil
	}
	return nil, ErrDecrypt
}

// SealedWithPrimary tells whether sealed carries the primary key's id, so a
// rotation can tell what is already done.
func (b *Box) SealedWithPrimary(sealed []byte) bool {
	return len(sealed) > 1+idLen && sealed[0] == version2 && [idLen]byte(sealed[1:1+idLen]) == b.ring.Load().primary.id
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
