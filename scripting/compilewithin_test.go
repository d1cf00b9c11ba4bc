package scripting

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// slowSource compiles in time quadratic in n (goja's parser on a chain of
// additions): 32,000 took 6 s here, 6,000 about 0.2 s.
func slowSource(n int) string { return "replica.x = " + strings.Repeat("1+", n) + "1;" }

func TestCompileWithin(t *testing.T) {
	// Past the deadline: the error the server gives, as a compile error.
	_, err := CompileWithin("a.outgoing.js", KindOutgoing, slowSource(6000), time.Millisecond)
	var se *Error
	if !errors.As(err, &se) || se.Kind != ErrorCompile || se.Message != SlowCompileMessage(time.Millisecond) {
		t.Fatalf("slow source: %#v", err)
	}
	// Within it: Compile's answer, a script or its error with the position.
	s, err := CompileWithin("a.outgoing.js", KindOutgoing, "replica.t = entity.title;", time.Minute)
	if err != nil || s == nil {
		t.Fatalf("plain source: %v", err)
	}
	if r, known := s.EntityReads(); !known || !r["title"] {
		t.Fatalf("reads %v %v", r, known)
	}
	_, err = CompileWithin("a.outgoing.js", KindOutgoing, "replica.x = ;", time.Minute)
	if !errors.As(err, &se) || se.Kind != ErrorCompile || se.Line != 1 || se.Column != 13 {
		t.Fatalf("syntax error: %#v", err)
	}
}
