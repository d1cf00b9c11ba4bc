package secret

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
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
