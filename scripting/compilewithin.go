package scripting

import (
	"time"
)

// DefaultCompileDeadline is how long a script may take to compile: a run's
// default deadline, which the server's sandbox workers give a compile
// (sandbox.Lane.Compile). A source that takes longer could not run either.
const DefaultCompileDeadline = time.Second

// SlowCompileMessage is the error message of a compile past deadline d.
func SlowCompileMessage(d time.Duration) string {
	return "RangeError: the script did not compile within " + d.String() + ", a run's deadline; make it shorter or simpler"
}

// CompileWithin is Compile with a deadline, for a process that ends soon
// after (duplex apply and validate, which compile a folder's scripts in
// their own process). goja's parser and compiler cannot be interrupted and
// some sources within MaxSourceBytes take seconds: past d the compile is
// left to run until the process exits, and the error is the one the server
// gives for that source, so a folder is refused before apply stores a
// script the server could not compile. Not for the server: a compile left
// running there would spend its CPU (it compiles in sandbox workers).
func CompileWithin(name string, kind Kind, src string, d time.Duration) (*Script, error) {
	type result struct {
		s   *Script
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Compile(name, kind, src)
		done <- result{s, err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-done:
		return r.s, r.err
	case <-t.C:
		return nil, NewError(name, ErrorCompile, 0, 0, 0, SlowCompileMessage(d))
	}
}
