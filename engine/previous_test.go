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
