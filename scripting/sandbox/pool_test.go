package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/scripting"
)

func TestMain(m *testing.M) {
	ServeIfWorker()
	os.Exit(m.Run())
}

func newPool(t testing.TB, opts Options) *Pool {
	t.Helper()
	p, err := NewPool(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return p
}

func mustCompile(t testing.TB, kind scripting.Kind, src string) *scripting.Script {
	t.Helper()
	s, err := scripting.Compile("t."+string(kind)+".js", kind, src)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPoolOutgoingIncoming(t *testing.T) {
	p := newPool(t, Options{})
	ctx := context.Background()
	out := mustCompile(t, scripting.KindOutgoing, `replica.title = entity.title + "!"; replica.n = entity.n + 1; replica.prev = previous; log("hi", {a: 1})`)
	meta := scripting.Meta{Connection: "c1", Side: "a"}
	res, err := p.Outgoing(ctx, out, map[string]any{"title": "x", "n": 41.0}, nil, meta)
	if err != nil {
		t.Fatal(err)
	}
	if res.Replica["title"] != "x!" || res.Replica["n"] != int64(42) || res.Replica["prev"] != nil {
		t.Fatalf("replica %#v", res.Replica)
	}
	if len(res.Log) != 1 || res.Log[0] != `hi {"a":1}` {
		t.Fatalf("log %q", res.Log)
	}
	res, err = p.Outgoing(ctx, out, map[string]any{"title": "y", "n": 1.0}, map[string]any{}, meta)
	if err != nil {
		t.Fatal(err)
	}
	if prev, ok := res.Replica["prev"].(map[string]any); !ok || len(prev) != 0 {
		t.Fatalf("previous {} came as %#v", res.Replica["prev"])
	}

	// Empty lists and objects stay empty lists and objects (not null).
	empty := mustCompile(t, scripting.KindOutgoing, `replica.labels = []; replica.o = {}; replica.n = entity.tags.length`)
	res, err = p.Outgoing(ctx, empty, map[string]any{"tags": []any{}}, nil, meta)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(res.Replica); string(b) != `{"labels":[],"n":0,"o":{}}` {
		t.Fatalf("empty values: %s", b)
	}

	in := mustCompile(t, scripting.KindIncoming, `if (replica.skip) skip("asked"); entity.title = replica.title; entity.first = ctx.firstSync`)
	ir, err := p.Incoming(ctx, in, map[string]any{"title": "t"}, nil, nil, scripting.Meta{FirstSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if ir.Entity["title"] != "t" || ir.Entity["first"] != true {
		t.Fatalf("entity %#v", ir.Entity)
	}
	ir, err = p.Incoming(ctx, in, map[string]any{"skip": true}, nil, nil, scripting.Meta{})
	if err != nil || !ir.Skipped || ir.SkipReason != "asked" {
		t.Fatalf("skip: %+v %v", ir, err)
	}

	bad := mustCompile(t, scripting.KindOutgoing, "\n  null.x")
	_, err = p.Outgoing(ctx, bad, map[string]any{}, nil, meta)
	var se *scripting.Error
	if !errors.As(err, &se) || se.Kind != scripting.ErrorRuntime || se.Line != 2 {
		t.Fatalf("runtime error: %#v", err)
	}
}

func TestPoolTriggerAndRules(t *testing.T) {
	p := newPool(t, Options{})
	ctx := context.Background()
	trig, err := scripting.CompileTrigger(`status != "closed" && priority > 2`, map[string]any{"status": "", "priority": 0.0})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		vars map[string]any
		want bool
	}{{map[string]any{"status": "open", "priority": 3.0}, true}, {map[string]any{"status": "closed", "priority": 3.0}, false}, {map[string]any{}, false}} {
		got, err := p.Match(ctx, trig, c.vars, scripting.Meta{Connection: "c"})
		if err != nil || got != c.want {
			t.Fatalf("match %v = %v, %v; want %v", c.vars, got, err, c.want)
		}
	}
	// A wide entity: only the named variables cross (Trigger.OnlyNames),
	// and the worker answers as this process does with all of them.
	env := map[string]any{"status": "", "priority": 0.0, "labels": []string{}}
	wide := map[string]any{"status": "open", "priority": 3.0, "labels": []any{"a", "todev"}}
	for i := 0; i < 50; i++ {
		env[fmt.Sprint("f", i)], wide[fmt.Sprint("f", i)] = "", fmt.Sprint(i)
	}
	for _, src := range []string{`status != "closed" && priority > 2`, `all(labels, {# != f7}) and f3 == "3"`, `$env["f9"] == "9"`, `"x" in labels`} {
		tr, err := scripting.CompileTrigger(src, env)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := tr.Match(wide)
		got, err := p.Match(ctx, tr, wide, scripting.Meta{Connection: "c"})
		if got != want || fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("%s: worker %v %v, here %v %v", src, got, err, want, wantErr)
		}
		sent, err := decodeMap(p.matchCall(tr, wide, scripting.Meta{}).req.Args[0])
		if n := len(sent); err != nil || (src == `"x" in labels`) != (n == 1) || (src[0] == '$') != (n == len(wide)) {
			t.Fatalf("%s: %d of %d variables sent (%v)", src, n, len(wide), err)
		}
	}
	rules, err := scripting.CompileRules([]scripting.Rule{{Kind: "required", Field: "title"}, {Kind: "email", Field: "mail"},
		{Kind: "unique", Field: "ext", Where: `status != "closed"`}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Check(ctx, rules, map[string]any{"title": "", "mail": "a@b.c"}, scripting.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Passed || !res[1].Passed {
		t.Fatalf("check %+v", res)
	}
	var asked []string
	find := func(field, value string) ([]scripting.Found, error) {
		asked = append(asked, field+"="+value)
		return []scripting.Found{{ID: "1", Key: "K-1", Fields: map[string]any{"status": "closed"}}, {ID: "2", Key: "K-2", Fields: map[string]any{"status": "open"}}}, nil
	}
	uniq, err := p.CheckUnique(ctx, rules, map[string]any{"ext": "E1"}, scripting.Meta{}, find)
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != "ext=E1" || len(uniq) != 1 || uniq[0].Passed || uniq[0].Existing != "K-2" {
		t.Fatalf("unique %+v (asked %v)", uniq, asked)
	}
}

// Nothing per run compiles: the parent compiles nothing, and each worker
// gets a script's source once.
func TestPoolCompilesOnce(t *testing.T) {
	p := newPool(t, Options{Workers: 1})
	ctx := context.Background()
	s := mustCompile(t, scripting.KindOutgoing, `replica.x = entity.x`)
	trig, _ := scripting.CompileTrigger(`x > 1`, map[string]any{"x": 0.0})
	before := scripting.Compilations()
	for i := range 30 {
		if _, err := p.Outgoing(ctx, s, map[string]any{"x": float64(i)}, nil, scripting.Meta{}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Match(ctx, trig, map[string]any{"x": float64(i)}, scripting.Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := scripting.Compilations() - before; n != 0 {
		t.Fatalf("%d compilations in the parent", n)
	}
	if st := p.Stats(); st.CodeSent != 2 || st.Starts != 1 {
		t.Fatalf("stats %+v: want the code sent twice (script, trigger) to one worker", st)
	}
}

func isKind(err error, kind string) bool {
	var se *scripting.Error
	return errors.As(err, &se) && se.Kind == kind
}

// A connection's runs that wait for its place in the lane leave together,
// as one message, when the run in flight ends; a waiting run whose caller
// gives up leaves the queue at once.
// pause waits a moment for the pool to move, failing the test if the slow
// run it depends on ended meanwhile (the state waited for cannot come then).
func pause(t *testing.T, slowDone <-chan error) {
	t.Helper()
	select {
	case err := <-slowDone:
		t.Fatalf("the slow run ended (err %v) before the runs queued behind it", err)
	case <-time.After(time.Millisecond):
	}
}

func TestPoolBatchesAConnectionsWaitingRuns(t *testing.T) {
	p := newPool(t, Options{Workers: 2, PerConnection: 1})
	ctx := context.Background()
	// The slow run holds the connection's one place while the others queue;
	// 3 s is far longer than queueing them takes, even under -race, and the
	// waits below fail (not hang) if it ends first.
	slow := mustCompile(t, scripting.KindOutgoing, `var t = Date.now(); while (Date.now() - t < 3000) {} replica.done = true`)
	s := mustCompile(t, scripting.KindOutgoing, `replica.n = entity.n + 1`)
	meta := scripting.Meta{Connection: "c", Timeout: 20 * time.Second}
	if _, err := p.Outgoing(ctx, s, map[string]any{"n": 0.0}, nil, meta); err != nil { // a warm worker
		t.Fatal(err)
	}
	// The warm-up's place is given back after its answer reaches us: wait
	// for it, or the slow run would queue behind it and leave together with
	// the runs meant to wait for it.
	for deadline := time.Now().Add(10 * time.Second); func() bool {
		p.sync.connMu.Lock()
		defer p.sync.connMu.Unlock()
		q := p.sync.conns["c"]
		return q != nil && q.inFlight > 0
	}(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the warm-up run never gave its place back")
		}
	}
	before := p.Stats()
	slowDone := make(chan error, 1)
	go func() {
		_, err := p.Outgoing(ctx, slow, nil, nil, meta)
		slowDone <- err
	}()
	waiting := func() int {
		p.sync.connMu.Lock()
		defer p.sync.connMu.Unlock()
		if q := p.sync.conns["c"]; q != nil {
			return len(q.waiting)
		}
		return 0
	}
	for func() bool { // until the slow run holds the place
		p.sync.connMu.Lock()
		defer p.sync.connMu.Unlock()
		q := p.sync.conns["c"]
		return q == nil || q.inFlight == 0
	}() {
		pause(t, slowDone)
	}
	gone, cancel := context.WithCancel(ctx)
	goneDone := make(chan error, 1)
	go func() {
		_, err := p.Outgoing(gone, s, map[string]any{"n": 1.0}, nil, meta)
		goneDone <- err
	}()
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := p.Outgoing(ctx, s, map[string]any{"n": float64(i)}, nil, meta)
			if err != nil || res.Replica["n"] != int64(i)+1 {
				t.Errorf("run %d: %v %v", i, res.Replica, err)
			}
		}()
	}
	for waiting() < n+1 {
		pause(t, slowDone)
	}
	cancel()
	if err := <-goneDone; err == nil {
		t.Fatal("a waiting run whose caller gave up: no error")
	}
	if w := waiting(); w != n {
		t.Fatalf("%d runs waiting after one gave up; want %d", w, n)
	}
	wg.Wait()
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if runs, msgs := st.Runs-before.Runs, st.Messages-before.Messages; runs != n+1 || msgs != 2 {
		t.Fatalf("%d runs in %d messages; want %d in 2 (the slow one, then the waiting ones together)", runs, msgs, n+1)
	}
}

// MatchOutgoing sends a trigger and the outgoing script in one message; the
// script runs only when the trigger matched (here it would fail if it ran
// on a change the trigger refuses), and a trigger error is the trigger's.
func TestPoolMatchOutgoing(t *testing.T) {
	p := newPool(t, Options{})
	ctx := context.Background()
	trig, err := scripting.CompileTrigger(`x > 1`, map[string]any{"x": 0.0})
	if err != nil {
		t.Fatal(err)
	}
	out := mustCompile(t, scripting.KindOutgoing, `if (entity.x <= 1) throw new Error("ran on a refused change"); replica.y = entity.x * 2; replica.prev = previous.y`)
	meta := scripting.Meta{Connection: "c1", Side: "a"}
	before := p.Stats()
	res, err := p.MatchOutgoing(ctx, trig, map[string]any{"x": 3.0}, meta, out, map[string]any{"x": 3.0}, map[string]any{"y": 4.0}, meta)
	if err != nil || !res.Match || res.MatchErr != nil || res.Err != nil || res.Out == nil {
		t.Fatalf("matched: %+v %v", res, err)
	}
	if res.Out.Replica["y"] != int64(6) || res.Out.Replica["prev"] != int64(4) {
		t.Fatalf("replica %#v", res.Out.Replica)
	}
	if st := p.Stats(); st.Messages-before.Messages != 1 {
		t.Fatalf("%d messages for a trigger and its outgoing script, want 1", st.Messages-before.Messages)
	}
	res, err = p.MatchOutgoing(ctx, trig, map[string]any{"x": 1.0}, meta, out, map[string]any{"x": 1.0}, nil, meta)
	if err != nil || res.Match || res.MatchErr != nil || res.Out != nil || res.Err != nil {
		t.Fatalf("refused: %+v %v", res, err)
	}
	res, err = p.MatchOutgoing(ctx, trig, map[string]any{"x": "text"}, meta, out, map[string]any{"x": 3.0}, nil, meta)
	if err != nil || res.Match || res.MatchErr == nil || res.Out != nil {
		t.Fatalf("a failing trigger: %+v %v", res, err)
	}
	again, err := p.Outgoing(ctx, out, map[string]any{"x": 2.0}, map[string]any{}, meta) // the worker still serves
	if err != nil || again.Replica["y"] != int64(4) {
		t.Fatalf("%#v %v", again.Replica, err)
	}
}

// An incoming run in a worker is handed only the entity's fields its
// script names (scripting.SplitWritable); the others are put back into the
// result here. The result is what a run handed the whole entity gives.
func TestPoolIncomingSplit(t *testing.T) {
	p := newPool(t, Options{})
	ctx := context.Background()
	local := map[string]any{"id": "7", "title": "t", "state": "new", "body": "a\nb", "n": int64(5), "whole": 3.0,
		"f": 1.5, "when": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "tags": map[string]string{"k": "v"}, "nil": nil}
	for _, src := range []string{
		`entity.title = replica.title + entity.title; delete entity.state;`,
		`entity.n = entity.n + 1; entity.w = entity.whole;`,
		`entity.keys = Object.keys(entity).join(",");`, // names unknown: handed everything
	} {
		s, err := p.Compile(ctx, "in.js", scripting.KindIncoming, src, scripting.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if _, known := s.InputReads("entity"); known == strings.Contains(src, "Object.keys") {
			t.Fatalf("%s: the worker's compile reported the entity's names known=%v", src, known)
		}
		got, err := p.Incoming(ctx, s, map[string]any{"title": "r"}, nil, local, scripting.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		want, err := p.Incoming(ctx, scripting.Prepared("in.js", scripting.KindIncoming, src, nil), map[string]any{"title": "r"}, nil, local, scripting.Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Entity, want.Entity) {
			t.Fatalf("%s:\nsplit   %#v\nunsplit %#v", src, got.Entity, want.Entity)
		}
	}
}
