package peering

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestInvitationRoundTripAndRefusals(t *testing.T) {
	pub, _, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	in := Invitation{URL: "https://x.example", Node: "n1", Secret: "s", Expires: time.Now().Add(time.Hour).UTC().Truncate(time.Second), Side: "b", Key: pub}
	got, err := DecodeInvitation(in.Encode())
	if err != nil || got.URL != in.URL || got.Secret != "s" || !got.Expires.Equal(in.Expires) || string(got.Key) != string(pub) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for name, code := range map[string]string{
		"no prefix":   "hello",
		"not base64":  codePrefix + "%%%",
		"bad address": Invitation{URL: "ftp://x", Node: "n", Secret: "s", Side: "a", Key: pub}.Encode(),
		"no key":      Invitation{URL: "https://x", Node: "n", Secret: "s", Side: "a"}.Encode(),
		"bad side":    Invitation{URL: "https://x", Node: "n", Secret: "s", Side: "c", Key: pub}.Encode(),
	} {
		if _, err := DecodeInvitation(code); !errors.Is(err, ErrInvitation) {
			t.Errorf("%s: %v, want ErrInvitation", name, err)
		}
	}
}

func TestSignVerify(t *testing.T) {
	pub, priv, _ := NewKey()
	other, _, _ := NewKey()
	env := Envelope{From: "a", To: "b", ID: "1", Time: time.Now(), Kind: KindReplica, Pair: "a.1", Replica: json.RawMessage(`{"x":1}`)}
	body, sig, err := Sign(env, priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(pub, body, sig); err != nil {
		t.Fatalf("good signature refused: %v", err)
	}
	tampered := []byte(strings.Replace(string(body), `"x":1`, `"x":2`, 1))
	for name, c := range map[string]struct {
		pub  []byte
		body []byte
		sig  string
	}{
		"tampered body": {pub, tampered, sig},
		"other key":     {other, body, sig},
		"no signature":  {pub, body, ""},
		"not base64":    {pub, body, "!!"},
	} {
		if err := Verify(c.pub, c.body, c.sig); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: %v, want ErrSignature", name, err)
		}
	}
}

func TestTimeWindow(t *testing.T) {
	now := time.Now()
	for _, d := range []time.Duration{0, Window - time.Second, -Window + time.Second} {
		if err := CheckTime(now.Add(-d), now); err != nil {
			t.Errorf("%v off: %v", d, err)
		}
	}
	for _, d := range []time.Duration{Window + time.Second, -Window - time.Second} {
		if err := CheckTime(now.Add(-d), now); !errors.Is(err, ErrReplay) {
			t.Errorf("%v off: %v, want ErrReplay", d, err)
		}
	}
}

func TestParseEnvelopeRefusals(t *testing.T) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for name, body := range map[string]string{
		"not JSON":        `{`,
		"unknown field":   `{"from":"a","to":"b","id":"1","time":"` + now + `","kind":"revoke","script":"x"}`,
		"no id":           `{"from":"a","to":"b","time":"` + now + `","kind":"revoke"}`,
		"unknown kind":    `{"from":"a","to":"b","id":"1","time":"` + now + `","kind":"script"}`,
		"replica no pair": `{"from":"a","to":"b","id":"1","time":"` + now + `","kind":"replica","replica":{}}`,
		"ack no created":  `{"from":"a","to":"b","id":"1","time":"` + now + `","kind":"ack","pair":"a.1"}`,
		"delete no pair":  `{"from":"a","to":"b","id":"1","time":"` + now + `","kind":"delete"}`,
	} {
		if _, err := ParseEnvelope([]byte(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestBackoffGrowsAndIsBounded(t *testing.T) {
	prev := time.Duration(0)
	for i := 1; i < 20; i++ {
		d := backoff(i)
		if d < prev || d > 30*time.Second {
			t.Fatalf("backoff(%d) = %v after %v", i, d, prev)
		}
		prev = d
	}
	if prev != 30*time.Second {
		t.Errorf("backoff tops out at %v, want 30s", prev)
	}
}
