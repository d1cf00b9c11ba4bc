package main

import "testing"

func TestPeerAllow(t *testing.T) {
	got, err := peerAllow(" 10.1.0.0/16, 127.0.0.1 ,,::1")
	if err != nil || len(got) != 3 || got[1].String() != "127.0.0.1/32" || got[2].String() != "::1/128" {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := peerAllow(""); err != nil || got != nil {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"10.1.0.0/33", "not-an-address"} {
		if _, err := peerAllow(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
