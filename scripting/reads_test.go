package scripting

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dop251/goja"
)

func TestEntityReads(t *testing.T) {
	for _, c := range []struct {
		src  string
		want []string // nil: not known
	}{
		{`replica.title = entity.subject; replica.p = entity["priority"];`, []string{"priority", "subject"}},
		{`replica.n = entity.comments.length; replica.a = entity?.assignee?.name;`, []string{"assignee", "comments"}},
		{"replica.t = `${entity.subject}!`; if (entity.status === 'x') { replica.s = map(entity.status) } function map(s) { return s }", []string{"status", "subject"}},
		{`replica.entity = 1; replica.x = {entity: 2}.entity;`, []string{}}, // property names, not the binding
		{`const f = (e) => e.subject; replica.t = f(entity);`, nil},
		{`log(entity);`, nil},
		{`Object.assign(replica, entity);`, nil},
		{`replica.x = {...entity};`, nil},
		{`for (const k in entity) replica[k] = 1;`, nil},
		{`const k = "subject"; replica.t = entity[k];`, nil},
		{`replica.t = entity.hasOwnProperty("subject");`, nil},
		{`replica.t = Object.keys(entity.valueOf());`, nil},
		{`replica.t = (function () { return arguments[0] })();`, nil},
		{`replica.t = eval("1");`, nil},
		{`{ const entity = {a: 1}; replica.t = entity.a; } replica.s = $duplex_entity.subject;`, nil},
		{`const {subject} = entity; replica.t = subject;`, nil},
	} {
		s, err := Compile("t.js", KindOutgoing, c.src)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		got, known := s.EntityReads()
		if c.want == nil {
			if known {
				t.Errorf("%s: reads %v, want unknown", c.src, slices.Sorted(maps.Keys(got)))
			}
			continue
		}
		if !known || !slices.Equal(slices.Sorted(maps.Keys(got)), c.want) {
			t.Errorf("%s: reads %v (known %v), want %v", c.src, slices.Sorted(maps.Keys(got)), known, c.want)
		}
	}
	in, err := Compile("t.js", KindIncoming, `entity.title = replica.title;`)
	if err != nil {
		t.Fatal(err)
	}
	if _, known := in.EntityReads(); known {
		t.Error("an incoming script's reads are not analysed")
	}
}

// Every property of Object.prototype (the entity's prototype) is guarded.
func TestProtoNamesCoverObjectPrototype(t *testing.T) {
	v, err := goja.New().RunString(`Object.getOwnPropertyNames(Object.prototype)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range v.Export().([]any) {
		if !protoNames[n.(string)] {
			t.Errorf("Object.prototype.%s is not in protoNames", n)
		}
	}
}

// The read-only inputs a script gets hold only the fields it reads
// (OnlyReads), and no script can tell: every script below gives the same
// output, log and error with the filter and without it (the same source
// as a Prepared script whose reads are unknown), on inputs with fields it
// does not read. A field it does not read is not even converted: an
// unconvertible value there fails only the unfiltered run.
func TestOnlyReadsIsInvisible(t *testing.T) {
	entity := map[string]any{"subject": "s", "priority": "high", "labels": []any{"a", "b"},
		"assignee": map[string]any{"name": "n", "id": int64(3)}, "comments": []any{map[string]any{"id": "1", "body": "b"}},
		"hasOwnProperty": "x", "unread": "u"}
	previous := map[string]any{"title": "old", "priority": "low", "n": int64(7)}
	replica := map[string]any{"title": "t", "priority": "high", "comments": []any{}, "ticket": "T-1", "unread": int64(1)}
	local := map[string]any{"title": "l", "state": "new"}
	outgoing := []string{
		`replica.title = entity.subject; replica.p = entity["priority"]; replica.c = entity.comments;`,
		`replica.a = entity?.assignee?.name; replica.was = previous?.title; replica.none = entity.missing === undefined;`,
		`replica.n = previous.n + 1; replica.k = Object.keys(previous.n === 7 ? {x: 1} : {});`,
		`if (entity.priority === previous.priority) { replica.same = true } else { replica.l = entity.labels.join(",") }`,
		`replica.all = Object.keys(entity).sort(); replica.p = JSON.stringify(previous);`, // unknown: sees all
		`replica.t = entity.subject; try { entity.unread = 1 } catch (e) { replica.err = e.message }`,
		`log(entity.subject, previous.title); replica.x = entity.unread2 ?? "none";`,
		`replica.x = entity.assignee.id * 2; replica.frozen = Object.isFrozen(entity.labels);`,
	}
	incoming := []string{
		`entity.title = replica.title; entity.was = previous ? previous.title : null;`,
		`entity.p = replica["priority"]; entity.c = (replica.comments || []).length; entity.u = replica.nope;`,
		`for (const k in replica) entity["r_" + k] = replica[k];`, // unknown
		`if (replica.ticket) { entity.ticket = replica.ticket } log(previous?.priority);`,
	}
	ctx := context.Background()
	r := NewRunner(Options{})
	type run struct {
		kind Kind
		src  string
	}
	var runs []run
	for _, src := range outgoing {
		runs = append(runs, run{KindOutgoing, src})
	}
	for _, src := range incoming {
		runs = append(runs, run{KindIncoming, src})
	}
	do := func(s *Script, prev map[string]any) (map[string]any, []string, error) {
		if s.Kind() == KindOutgoing {
			res, err := r.Outgoing(ctx, s, entity, prev, Meta{})
			return res.Replica, res.Log, err
		}
		res, err := r.Incoming(ctx, s, replica, prev, local, Meta{})
		return res.Entity, res.Log, err
	}
	filtered := 0
	for _, c := range runs {
		s := mustCompile(t, c.kind, c.src)
		all := Prepared(string(c.kind)+".js", c.kind, c.src, nil) // reads unknown: nothing filtered
		for _, prev := range []map[string]any{previous, nil} {
			if prev == nil && strings.Contains(c.src, "previous.n") {
				continue // reads previous.n without a null check
			}
			got, gotLog, gotErr := do(s, prev)
			want, wantLog, wantErr := do(all, prev)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) || !slices.Equal(gotLog, wantLog) {
				t.Errorf("%s (previous %v):\nfiltered   %v %q %v\nunfiltered %v %q %v", c.src, prev != nil, got, gotLog, gotErr, want, wantLog, wantErr)
			}
		}
		for _, input := range ReadInputs(c.kind) {
			if _, known := s.InputReads(input); known {
				filtered++
			}
		}
	}
	if filtered < 10 {
		t.Fatalf("%d inputs had known reads: the test would not exercise the filter", filtered)
	}
	// An unread field is not converted at all.
	bad := map[string]any{"subject": "s", "ch": make(chan int)}
	s := mustCompile(t, KindOutgoing, `replica.t = entity.subject;`)
	if res, err := r.Outgoing(ctx, s, bad, nil, Meta{}); err != nil || res.Replica["t"] != "s" {
		t.Fatalf("an unread unconvertible field: %v %v", res.Replica, err)
	}
	if _, err := r.Outgoing(ctx, Prepared("all.js", KindOutgoing, `replica.t = entity.subject;`, nil), bad, nil, Meta{}); err == nil {
		t.Fatal("without the filter the unconvertible field should fail the run")
	}
}
