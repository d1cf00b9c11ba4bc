package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
)

var errCrash = errors.New("simulated crash")

// rotateFixture is a data dir with a key file and a store holding three
// systems with secrets (one sealed in the version-1 format) and one without,
// and a peer link whose private key is sealed with the same box.
type rotateFixture struct {
	c       common
	want    map[string]map[string]string
	linkKey []byte
}

func newRotateFixture(t *testing.T) *rotateFixture {
	t.Helper()
	t.Setenv("DUPLEX_SECRET_KEY", "")
	t.Setenv("DUPLEX_SECRET_KEY_PREVIOUS", "")
	t.Setenv("DUPLEX_NEW_SECRET_KEY", "")
	f := &rotateFixture{c: common{dataDir: t.TempDir()}, want: map[string]map[string]string{}}
	box, err := loadBox(f.c.dataDir) // creates secret.key
	if err != nil {
		t.Fatal(err)
	}
	key, err := secret.ReadKeyFile(filepath.Join(f.c.dataDir, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := openStore(ctx, f.c)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, name := range []string{"desk", "tracker", "legacy", "plain"} {
		s := store.System{Name: name, Kind: "sql"}
		switch name {
		case "plain": // no secrets
		case "legacy":
			f.want[name] = map[string]string{"password": "v1-value"}
			s.Secrets = sealV1(t, key, `{"password":"v1-value"}`)
		default:
			f.want[name] = map[string]string{"password": fmt.Sprintf("pw-%d", i)}
			if s.Secrets, err = box.SealMap(f.want[name]); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.CreateSystem(ctx, &s); err != nil {
			t.Fatal(err)
		}
	}
	f.linkKey = []byte("a peer link's private key, sealed like a secret.....")
	l := store.PeerLink{TeamID: 1, Name: "link", PeerSide: store.SideB, LocalNode: "n1", PublicKey: []byte{1}, Status: store.PeerActive}
	if l.PrivateKey, err = box.Seal(f.linkKey); err != nil {
		t.Fatal(err)
	}
	if err := st.CreatePeerLink(ctx, &l, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

// sealV1 writes the format single-key boxes used before key ids.
func sealV1(t *testing.T, key []byte, plaintext string) []byte {
	t.Helper()
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return aead.Seal(append([]byte{1}, nonce...), nonce, []byte(plaintext), []byte{1})
}

// check opens every system's secrets with box and returns the first failure.
func (f *rotateFixture) check(t *testing.T, box *secret.Box) error {
	t.Helper()
	st, err := store.Open(context.Background(), f.c.dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	systems, err := st.ListSystems(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range systems {
		m, err := box.OpenMap(s.Secrets)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		if len(m) != len(f.want[s.Name]) || m["password"] != f.want[s.Name]["password"] {
			return fmt.Errorf("%s: %v, want %v", s.Name, m, f.want[s.Name])
		}
	}
	links, err := st.ListPeerLinks(context.Background())
	if err != nil || len(links) != 1 {
		t.Fatalf("peer links: %d, %v", len(links), err)
	}
	k, err := box.Open(links[0].PrivateKey)
	if err != nil {
		return fmt.Errorf("peer link key: %w", err)
	}
	if !bytes.Equal(k, f.linkKey) {
		return fmt.Errorf("peer link key: %q", k)
	}
	return nil
}

func keyBox(t *testing.T, path string) *secret.Box {
	t.Helper()
	k, err := secret.ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := secret.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRotate(t *testing.T) {
	f := newRotateFixture(t)
	oldBox := keyBox(t, filepath.Join(f.c.dataDir, keyFile))
	var out bytes.Buffer
	if err := rotate(context.Background(), f.c, &out, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "3 system(s)") {
		t.Fatalf("output: %s", out.String())
	}
	newBox := keyBox(t, filepath.Join(f.c.dataDir, keyFile))
	if newBox.KeyID() == oldBox.KeyID() {
		t.Fatal("secret.key did not change")
	}
	if err := f.check(t, newBox); err != nil {
		t.Fatalf("new key alone: %v", err)
	}
	if err := f.check(t, oldBox); !errors.Is(err, secret.ErrDecrypt) {
		t.Fatalf("old key alone still opens: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.c.dataDir, nextKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("secret.key.next left behind: %v", err)
	}
	if keyBox(t, filepath.Join(f.c.dataDir, oldKeyFile)).KeyID() != oldBox.KeyID() {
		t.Fatal("secret.key.old is not the previous key")
	}
	if fi, _ := os.Stat(filepath.Join(f.c.dataDir, keyFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode().Perm())
	}
	st, _ := store.Open(context.Background(), f.c.dsn())
	defer st.Close()
	audit, _ := st.ListAudit(context.Background(), 0, 1)
	if len(audit) != 1 || audit[0].Action != "secrets.rotate" || !strings.Contains(audit[0].Detail, "3 system(s)") ||
		strings.Contains(audit[0].Detail, "pw-") {
		t.Fatalf("audit: %+v", audit)
	}
}

func TestRotateCrash(t *testing.T) {
	f := newRotateFixture(t)
	dir := f.c.dataDir
	oldBox := keyBox(t, filepath.Join(dir, keyFile))
	// Stop after the transaction, before the renames.
	err := rotate(context.Background(), f.c, &bytes.Buffer{}, func() error { return errCrash })
	if !errors.Is(err, errCrash) {
		t.Fatalf("rotate: %v", err)
	}
	nextBox := keyBox(t, filepath.Join(dir, nextKeyFile))
	if err := f.check(t, oldBox); err == nil {
		t.Fatal("the transaction did not re-seal anything")
	}
	box, err := loadBox(dir)
	if err != nil {
		t.Fatal(err)
	}
	if box.KeyID() != oldBox.KeyID() {
		t.Fatal("after the crash the primary should still be secret.key")
	}
	if err := f.check(t, box); err != nil {
		t.Fatalf("loadBox after a crash: %v", err)
	}
	// The state between the two renames: only .old and .next exist.
	if err := os.Rename(filepath.Join(dir, keyFile), filepath.Join(dir, oldKeyFile)); err != nil {
		t.Fatal(err)
	}
	box, err = loadBox(dir)
	if err != nil {
		t.Fatal(err)
	}
	if box.KeyID() != nextBox.KeyID() {
		t.Fatal("between the renames the primary should be secret.key.next")
	}
	if err := f.check(t, box); err != nil {
		t.Fatalf("loadBox between the renames: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, keyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("loadBox created a new secret.key")
	}
	// A second rotate finishes with the same new key.
	var out bytes.Buffer
	if err := rotate(context.Background(), f.c, &out, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "finishing an interrupted rotation") {
		t.Fatalf("output: %s", out.String())
	}
	final := keyBox(t, filepath.Join(dir, keyFile))
	if final.KeyID() != nextBox.KeyID() {
		t.Fatal("the second rotate used another key")
	}
	if err := f.check(t, final); err != nil {
		t.Fatalf("new key alone after finishing: %v", err)
	}
	if keyBox(t, filepath.Join(dir, oldKeyFile)).KeyID() != oldBox.KeyID() {
		t.Fatal("secret.key.old is not the original key")
	}
}

func TestRotateEnv(t *testing.T) {
	f := newRotateFixture(t)
	cur, _ := os.ReadFile(filepath.Join(f.c.dataDir, keyFile))
	oldBox := keyBox(t, filepath.Join(f.c.dataDir, keyFile))
	t.Setenv("DUPLEX_SECRET_KEY", strings.TrimSpace(string(cur)))
	if err := rotate(context.Background(), f.c, &bytes.Buffer{}, nil); err == nil || !strings.Contains(err.Error(), "DUPLEX_NEW_SECRET_KEY") {
		t.Fatalf("without a new key: %v", err)
	}
	nk, _ := secret.GenerateKey()
	t.Setenv("DUPLEX_NEW_SECRET_KEY", secret.EncodeKey(nk))
	var out bytes.Buffer
	if err := rotate(context.Background(), f.c, &out, nil); err != nil {
		t.Fatal(err)
	}
	newBox, _ := secret.New(nk)
	if err := f.check(t, newBox); err != nil {
		t.Fatalf("new key alone: %v", err)
	}
	if err := f.check(t, oldBox); err == nil {
		t.Fatal("old key alone still opens")
	}
	// Until the operator moves the new key in, the process opens with both.
	box, err := loadBox(f.c.dataDir)
	if err != nil || box.KeyID() != oldBox.KeyID() {
		t.Fatalf("loadBox: %v", err)
	}
	if err := f.check(t, box); err != nil {
		t.Fatal(err)
	}
	// After the move: new key primary, old one as DUPLEX_SECRET_KEY_PREVIOUS.
	t.Setenv("DUPLEX_SECRET_KEY", secret.EncodeKey(nk))
	t.Setenv("DUPLEX_SECRET_KEY_PREVIOUS", strings.TrimSpace(string(cur)))
	t.Setenv("DUPLEX_NEW_SECRET_KEY", "")
	if box, err = loadBox(f.c.dataDir); err != nil || box.KeyID() != newBox.KeyID() {
		t.Fatalf("loadBox after the move: %v", err)
	}
	if err := f.check(t, box); err != nil {
		t.Fatal(err)
	}
}
