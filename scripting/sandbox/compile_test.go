package sandbox

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/scripting"
)

// TestPoolCompile: Pool.Compile compiles in a worker and never in this
// process; it reports what an in-process Compile reports (the same error
// and position, the same entity reads), the worker keeps the compiled
// script for the runs that follow, and a source that takes longer than a
// run's deadline to compile is a compile error, the worker killed.
func TestPoolCompile(t *testing.T) {
	p := newPool(t, Options{Workers: 1, Timeout: 500 * time.Millisecond})
	ctx := context.Background()
	cases := []struct {
		kind scripting.Kind
		src  string
	}{
		{scripting.KindOutgoing, "replica.title = entity.subject;\nreplica.who = entity['requester'];"},
		{scripting.KindOutgoing, "for (const k in entity) replica[k] = entity[k];"}, // reads unknown
		{scripting.KindIncoming, "entity.subject = replica.title;"},
		{scripting.KindOutgoing, "replica.x = 1;\nreplica.y = (;"}, // a syntax error at 2:13
		{scripting.KindIncoming, "}); (function(){"},               // leaves the wrapper
	}
	for _, tc := range cases {
		want, wantErr := scripting.Compile("c.js", tc.kind, tc.src)
		before := scripting.Compilations()
		got, err := p.Compile(ctx, "c.js", tc.kind, tc.src, scripting.Meta{})
		if n := scripting.Compilations() - before; n != 0 {
			t.Fatalf("%q: %d compilations in this process", tc.src, n)
		}
		if wantErr != nil {
			var we, ge *scripting.Error
			if !errors.As(wantErr, &we) || !errors.As(err, &ge) || ge.Kind != scripting.ErrorCompile ||
				ge.Line != we.Line || ge.Column != we.Column || ge.Message != we.Message {
				t.Fatalf("%q: got %v, want %v", tc.src, err, wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.src, err)
		}
		wr, wk := want.EntityReads()
		gr, gk := got.EntityReads()
		if wk != gk || (wk && !reflect.DeepEqual(wr, gr)) || got.Source() != tc.src || got.Kind() != tc.kind {
			t.Fatalf("%q: reads %v %v, want %v %v", tc.src, gr, gk, wr, wk)
		}
		if w, g := want.ReadLists(), got.ReadLists(); !reflect.DeepEqual(w, g) { // every input's, the incoming entity's too
			t.Fatalf("%q: read lists %v, want %v", tc.src, g, w)
		}
	}

	s, err := p.Compile(ctx, "run.js", scripting.KindOutgoing, "replica.x = entity.x * 2;", scripting.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	sent := p.Stats().CodeSent
	out, err := p.Outgoing(ctx, s, map[string]any{"x": 21.0}, nil, scripting.Meta{})
	if err != nil || fmt.Sprint(out.Replica["x"]) != "42" {
		t.Fatalf("run of a pool-compiled script: %v %v", out.Replica, err)
	}
	if n := p.Stats().CodeSent - sent; n != 0 {
		t.Fatalf("the run sent its code again (%d): the worker should keep what it compiled", n)
	}
	// The same script also runs in this process, compiled on its first run.
	r := scripting.NewRunner(scripting.Options{})
	if out, err := r.Outgoing(ctx, s, map[string]any{"x": 2.0}, nil, scripting.Meta{}); err != nil || fmt.Sprint(out.Replica["x"]) != "4" {
		t.Fatalf("in-process run of a pool-compiled script: %v %v", out.Replica, err)
	}

	slow := "replica.x = " + strings.Repeat("1+", 32_000) + "1;" // seconds in goja's compiler
	kills := p.Stats().Kills
	start := time.Now()
	_, err = p.Compile(ctx, "slow.js", scripting.KindOutgoing, slow, scripting.Meta{})
	var se *scripting.Error
	if !errors.As(err, &se) || se.Kind != scripting.ErrorCompile || !strings.Contains(se.Message, "did not compile within 500ms") {
		t.Fatalf("slow compile: %v; want a compile error naming the deadline", err)
	}
	if p.Stats().Kills != kills+1 {
		t.Fatalf("kills %d → %d: the worker compiling past the deadline should be killed", kills, p.Stats().Kills)
	}
	t.Logf("slow compile refused after %v", time.Since(start))
	// Loaded again (a plan at every poll), it fails from memory: no worker
	// is killed for it a second time.
	if _, err2 := p.Compile(ctx, "slow.js", scripting.KindOutgoing, slow, scripting.Meta{}); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("the same slow compile again: %v", err2)
	}
	if p.Stats().Kills != kills+1 {
		t.Fatalf("kills %d → %d: the second compile of the slow source killed a worker again", kills, p.Stats().Kills)
	}
	if out, err := p.Outgoing(ctx, s, map[string]any{"x": 1.0}, nil, scripting.Meta{}); err != nil || fmt.Sprint(out.Replica["x"]) != "2" {
		t.Fatalf("a run after the killed compile: %v %v", out.Replica, err)
	}
}

// TestPoolCompileFairness: a connection's slow compiles never share a
// message with another connection's compile. They did when every compile
// had one fairness key: the waiting compiles left together, each slow one
// killed the worker, and a good compile behind two of them failed ("its
// sandbox worker died twice before the run") though nothing was wrong
// with it: a hostile editor's saves failed another team's.
func TestPoolCompileFairness(t *testing.T) {
	p := newPool(t, Options{Workers: 1, Interactive: 1, Timeout: 300 * time.Millisecond})
	lane := p.Interactive()
	ctx := context.Background()
	slow := "replica.x = " + strings.Repeat("1+", 32_000) + "1;"
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			src := slow + strings.Repeat(" ", i) // four sources, four keys
			if _, err := lane.Compile(ctx, "slow.js", scripting.KindOutgoing, src, scripting.Meta{Connection: "hostile"}); err == nil {
				t.Errorf("slow compile %d passed", i)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // the slow ones are in flight and queued
	s, err := lane.Compile(ctx, "good.js", scripting.KindOutgoing, "replica.t = entity.subject;", scripting.Meta{Connection: "other team"})
	if err != nil {
		t.Fatalf("another connection's good compile: %v", err)
	}
	if reads, known := s.EntityReads(); !known || !reads["subject"] {
		t.Fatalf("reads %v %v", reads, known)
	}
	wg.Wait()
}

// TestPoolDiedBeforeRun: runs that get their worker killed fail themselves; a run
// behind two of them in one message, which never ran, fails with a plain
// error (the engine retries it, quarantine does not count it), not as a
// crash of its own script.
func TestPoolDiedBeforeRun(t *testing.T) {
	p := newPool(t, Options{Workers: 1, Grace: 100 * time.Millisecond})
	ctx := context.Background()
	loop := mustCompile(t, scripting.KindOutgoing, osLimitScript) // only a kill stops it
	good := mustCompile(t, scripting.KindOutgoing, "replica.x = 1;")
	m := scripting.Meta{Timeout: 300 * time.Millisecond}
	runs := []*Run{p.OutgoingRun(loop, nil, nil, m), p.OutgoingRun(loop, nil, nil, m), p.OutgoingRun(good, nil, nil, m)}
	if err := p.Do(ctx, runs); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := runs[i].Result(); !isKind(err, scripting.ErrorTimeout) && !isKind(err, scripting.ErrorMemory) {
			t.Fatalf("killed run %d: %v, want its own limit", i, err)
		}
	}
	_, err := runs[2].Result()
	var se *scripting.Error
	if !errors.Is(err, ErrDiedBeforeRun) || errors.As(err, &se) {
		t.Fatalf("the run behind them: %v (%T), want ErrDiedBeforeRun, not a script error", err, err)
	}
}
