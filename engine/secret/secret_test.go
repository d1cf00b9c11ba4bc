package secret

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSealOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	box, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	sealed, err := box.SealMap(map[string]string{"password": "hunter2"})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("plaintext visible in sealed value")
	}
	again, err := LoadOrCreate(path) // same key read back
	if err != nil {
		t.Fatal(err)
	}
	m, err := again.OpenMap(sealed)
	if err != nil || m["password"] != "hunter2" {
		t.Fatalf("open: %v %v", m, err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := again.OpenMap(sealed); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("tampered value: %v", err)
	}
	other, _ := New(bytes.Repeat([]byte{7}, 32))
	s2, _ := box.Seal([]byte("x"))
	if _, err := other.Open(s2); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong key: %v", err)
	}
}

// sealV1 builds a value in the format single-key boxes wrote before key ids.
func sealV1(t *testing.T, k, plaintext []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{3}, aead.NonceSize())
	return aead.Seal(append([]byte{1}, nonce...), nonce, plaintext, []byte{1})
}

func TestSeveralKeys(t *testing.T) {
	oldKey, _ := GenerateKey()
	newKey, _ := GenerateKey()
	oldBox, err := New(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	sealedOld, _ := oldBox.SealMap(map[string]string{"token": "old-secret"})
	v1 := sealV1(t, oldKey, []byte(`{"token":"v1-secret"}`))

	both, err := New(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if both.KeyID() != KeyID(newKey) || KeyID(newKey) == KeyID(oldKey) {
		t.Fatalf("key ids: primary %s new %s old %s", both.KeyID(), KeyID(newKey), KeyID(oldKey))
	}
	for name, sealed := range map[string][]byte{"v2 by old key": sealedOld, "v1 by old key": v1} {
		m, err := both.OpenMap(sealed)
		if err != nil || len(m) != 1 {
			t.Fatalf("%s: %v %v", name, m, err)
		}
		if both.SealedWithPrimary(sealed) {
			t.Fatalf("%s: reported as sealed with the new primary", name)
		}
	}
	resealed, err := both.SealMap(map[string]string{"token": "old-secret"})
	if err != nil {
		t.Fatal(err)
	}
	if !both.SealedWithPrimary(resealed) || resealed[0] != 2 {
		t.Fatalf("new seal is not version 2 with the primary's id: % x", resealed[:5])
	}
	newOnly, _ := New(newKey)
	if m, err := newOnly.OpenMap(resealed); err != nil || m["token"] != "old-secret" {
		t.Fatalf("new key alone: %v %v", m, err)
	}
	if _, err := newOnly.OpenMap(sealedOld); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("new key alone opened an old value: %v", err)
	}
	if _, err := newOnly.OpenMap(v1); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("new key alone opened an old v1 value: %v", err)
	}
	if _, err := oldBox.OpenMap(resealed); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("old key alone opened a value sealed with the new key: %v", err)
	}
	// A single-key box still opens version-1 values.
	if m, err := oldBox.OpenMap(v1); err != nil || m["token"] != "v1-secret" {
		t.Fatalf("v1 with its own key: %v %v", m, err)
	}
	// Altering the key id must not open with another key.
	forged := append([]byte{}, resealed...)
	copy(forged[1:5], both.ring.Load().keys[1].id[:])
	if _, err := both.Open(forged); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("forged key id: %v", err)
	}
}

func TestWriteKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	k, _ := GenerateKey()
	if err := WriteKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	if err := WriteKeyFile(path, k); err == nil {
		t.Fatal("overwrote an existing key file")
	}
	back, err := ReadKeyFile(path)
	if err != nil || !bytes.Equal(back, k) {
		t.Fatalf("read back: %v", err)
	}
}

// A box with a reload function picks up a key it did not hold (a rotation
// by another process), seals with the new primary, and keeps opening what
// its old keys sealed; a value no loaded key opens costs one load a second.
func TestReloadOnUnknownKey(t *testing.T) {
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	box, err := New(k1)
	if err != nil {
		t.Fatal(err)
	}
	var loads int
	current := k1
	box.SetReload(func() (*Box, error) { loads++; return New(current) })
	old, _ := box.SealMap(map[string]string{"t": "old"})

	rotated, _ := New(k2, k1)
	fresh, _ := rotated.SealMap(map[string]string{"t": "new"})
	current = k2 // the key files now hold k2 only (k1 would be secret.key.old)
	m, err := box.OpenMap(fresh)
	if err != nil || m["t"] != "new" || loads != 1 {
		t.Fatalf("after rotation: %v %v loads=%d", m, err, loads)
	}
	if box.KeyID() != KeyID(k2) {
		t.Fatalf("seals with %s, want the new primary %s", box.KeyID(), KeyID(k2))
	}
	if m, err := box.OpenMap(old); err != nil || m["t"] != "old" {
		t.Fatalf("value of the previous key: %v %v", m, err)
	}
	// Known keys and altered values load nothing.
	bad := append([]byte{}, fresh...)
	bad[len(bad)-1] ^= 1
	if _, err := box.Open(bad); !errors.Is(err, ErrDecrypt) || loads != 1 {
		t.Fatalf("altered value: %v loads=%d", err, loads)
	}
	// A key that is gone: one load, then none within the interval.
	k3, _ := GenerateKey()
	lost, _ := (func() *Box { b, _ := New(k3); return b })().SealMap(map[string]string{"t": "x"})
	box.last = time.Time{} // as if the last load were long ago
	for i := 0; i < 3; i++ {
		if _, err := box.Open(lost); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("lost key opened: %v", err)
		}
	}
	if loads != 2 {
		t.Fatalf("%d loads for a lost key, want 1 more", loads)
	}
}
