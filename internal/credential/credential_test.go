package credential

import (
	"errors"
	"strings"
	"testing"
)

func TestPasswordRoundTrip(t *testing.T) {
	p := Params{Memory: 1024, Time: 1, Threads: 1} // cheap for the test; format is the same
	h, err := HashPassword("correct horse battery", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("hash format: %s", h)
	}
	if err := VerifyPassword("correct horse battery", h); err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if err := VerifyPassword("correct horse batterY", h); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong password: %v, want ErrMismatch", err)
	}
	h2, _ := HashPassword("correct horse battery", p)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for _, bad := range []string{"", "$bcrypt$x", "$argon2id$v=19$m=x$a$b", h[:len(h)-3] + "!!!"} {
		if err := VerifyPassword("x", bad); err == nil {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	if CheckPassword("short") == nil || CheckPassword(strings.Repeat("x", MaxPassword+1)) == nil {
		t.Fatal("too short or too long password accepted")
	}
	if err := CheckPassword("long enough pass"); err != nil {
		t.Fatal(err)
	}
}

func TestTokens(t *testing.T) {
	a, err := NewToken("dpx_")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken("dpx_")
	if a == b || !strings.HasPrefix(a, "dpx_") || len(a) < 40 {
		t.Fatalf("tokens %q %q", a, b)
	}
	if HashToken(a) == HashToken(b) || HashToken(a) != HashToken(a) || strings.Contains(HashToken(a), a) {
		t.Fatal("token hash is not a stable one-way function of the token")
	}
}

// The dummy hash costs a real check: the Default parameters and a key as
// long, which no password matches.
func TestDummyHash(t *testing.T) {
	h := dummyHash()
	want, _ := HashPassword("x", Default)
	if strings.Join(strings.Split(h, "$")[:4], "$") != strings.Join(strings.Split(want, "$")[:4], "$") ||
		len(strings.Split(h, "$")[5]) != len(strings.Split(want, "$")[5]) {
		t.Fatalf("dummy hash %q has other parameters or key length than %q", h, want)
	}
	if err := VerifyPassword("duplex-dummy-password", h); !errors.Is(err, ErrMismatch) {
		t.Fatalf("verify against the dummy hash: %v, want ErrMismatch", err)
	}
}
