// Package credential hashes passwords (argon2id) and makes and hashes the
// random tokens behind sessions and personal API tokens. It knows nothing of
// users or HTTP.
package credential

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrMismatch means a password does not match its hash.
var ErrMismatch = errors.New("credential: password does not match")

// Params are argon2id's cost settings. The defaults follow OWASP's minimum
// for argon2id (19 MiB, 2 passes, 1 lane): about 30 ms per sign-in here,
// which bounds offline guessing without making sign-in slow.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// Default is what new hashes use.
var Default = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// MinPassword is the shortest password accepted; length matters more
	// than composition rules (NIST SP 800-63B).
	MinPassword = 10
	// MaxPassword bounds the work a single sign-in attempt can cause.
	MaxPassword = 256
)

// CheckPassword reports why a new password is unacceptable, or nil.
func CheckPassword(pw string) error {
	switch {
	case len(pw) < MinPassword:
		return fmt.Errorf("password must be at least %d characters", MinPassword)
	case len(pw) > MaxPassword:
		return fmt.Errorf("password must be at most %d characters", MaxPassword)
	}
	return nil
}

// HashPassword returns a PHC-style string: $argon2id$v=19$m=…,t=…,p=…$salt$key.
func HashPassword(pw string, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("credential: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword checks pw against a HashPassword string in constant time,
// using the parameters stored in the hash.
func VerifyPassword(pw, hash string) error {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return fmt.Errorf("credential: unknown hash format")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return fmt.Errorf("credential: unsupported argon2 version %q", parts[2])
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return fmt.Errorf("credential: bad argon2 parameters: %w", err)
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return fmt.Errorf("credential: bad salt: %w", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil {
		return fmt.Errorf("credential: bad key: %w", err)
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// DummyVerify spends the same time as a real check, so a sign-in for an
// unknown email is not faster than one with a wrong password.
func DummyVerify(pw string) {
	_ = VerifyPassword(pw, dummyHash())
}

// dummyHash is a hash in the Default parameters that no password matches:
// verifying against it costs what a real check costs. It is built, not
// hashed: hashing it at package init cost every process of this binary
// (each sandbox worker too, at each start) about 0.3 s of CPU and 20 MB.
func dummyHash() string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, Default.Memory, Default.Time, Default.Threads,
		b64.EncodeToString(make([]byte, saltLen)), b64.EncodeToString(make([]byte, keyLen)))
}

// NewToken returns a random token (256 bits, URL-safe) with a readable prefix
// such as "dpx_" so leaked tokens are easy to recognise in logs and scanners.
func NewToken(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("credential: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken is how tokens are stored and looked up: SHA-256 is enough for
// 256-bit random values (no guessing to slow down), and keeps lookups an
// index hit.
func HashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// Equal compares two secrets in constant time.
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
