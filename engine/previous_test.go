package engine

import (
	"reflect"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// Intake decodes the twin's last sent replica only for an outgoing script
// that names previous: one that never does is handed none (it would see
// none of it: scripting.OnlyReads), and a stored replica that does not
// decode then fails nothing at intake.
func TestDecodePreviousOnlyWhenNamed(t *testing.T) {
	good, bad := `{"title":"old","n":1,"labels":["a"]}`, `{"title":`
	want, err := decodeObject(&good)
	if err != nil || want == nil {
		t.Fatal(want, err)
	}
	for _, tc := range []struct {
		src   string
		named bool
	}{
		{`replica.t = entity.title;`, false},
		{`replica.t = entity.title; replica.was = previous?.title;`, true},
		{`replica.p = JSON.stringify(previous);`, true}, // names unknown: handed all
		{`replica.a = arguments.length;`, true},         // so are these
	} {
		s, err := scripting.Compile("out.js", scripting.KindOutgoing, tc.src)
		if err != nil {
			t.Fatal(err)
		}
		p := &plan{sides: map[store.Side]*sidePlan{store.SideA: {outgoing: s}}}
		for _, sent := range []string{good, bad} {
			in := intakeStep{c: candidate{side: store.SideA}, hasTwin: true, twin: store.Twin{ID: 9, SentAB: &sent}}
			in.decodePrevious(p)
			if in.prevOf != 9 {
				t.Fatalf("%s: prevOf %d", tc.src, in.prevOf)
			}
			switch {
			case !tc.named && (in.previous != nil || in.prevErr != nil):
				t.Errorf("%s: decoded %v %v for a script that never names previous", tc.src, in.previous, in.prevErr)
			case tc.named && sent == good && !reflect.DeepEqual(in.previous, want):
				t.Errorf("%s: previous %#v, want %#v", tc.src, in.previous, want)
			case tc.named && sent == bad && in.prevErr == nil:
				t.Errorf("%s: a replica that does not decode gave no error", tc.src)
			}
		}
	}
}

// The worker decodes an event's previous replica only when the incoming
// script names previous or the merge must run the script on it (the
// record does not hold what it produced for that replica).
func TestPreviousForOnlyWhenRead(t *testing.T) {
	good, bad := `{"title":"old"}`, `{"title":`
	want, _ := decodeObject(&good)
	for _, tc := range []struct {
		src      string
		recorded bool // the record holds the script's result for this previous
		decoded  bool
	}{
		{`entity.title = replica.title;`, true, false},
		{`entity.title = replica.title;`, false, true}, // the merge reruns the script on it
		{`entity.was = previous?.title;`, true, true},  // the script reads it
		{`entity.p = JSON.stringify(previous);`, true, true},
	} {
		s, err := scripting.Compile("in.js", scripting.KindIncoming, tc.src)
		if err != nil {
			t.Fatal(err)
		}
		for _, prev := range []string{good, bad} {
			r := &applyRun{p: &plan{sides: map[store.Side]*sidePlan{store.SideB: {incoming: s, inID: "in1"}}},
				ev: &store.SyncEvent{Previous: &prev}, dst: store.SideB, prevDigest: textDigest(prev)}
			if tc.recorded {
				r.rec = scriptRecord{InID: "in1", Replica: textDigest(prev), Fields: map[string]any{"title": "x"}}
			}
			got, err := previousFor(r)
			switch {
			case !tc.decoded && (got != nil || err != nil):
				t.Errorf("%s (recorded %v): decoded %v %v", tc.src, tc.recorded, got, err)
			case tc.decoded && prev == good && !reflect.DeepEqual(got, want):
				t.Errorf("%s (recorded %v): %#v, want %#v", tc.src, tc.recorded, got, want)
			case tc.decoded && prev == bad && err == nil:
				t.Errorf("%s (recorded %v): a previous that does not decode gave no error", tc.src, tc.recorded)
			}
		}
	}
}
