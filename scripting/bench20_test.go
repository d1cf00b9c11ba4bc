package scripting

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/dop251/goja"
)

// The #3 benchmark shape: an entity of 20 fields with 5 comments, mapped by
// a script that reads most of it.
func bench20Entity() map[string]any {
	e := map[string]any{}
	for i := 0; i < 20; i++ {
		e[fmt.Sprintf("f%02d", i)] = fmt.Sprintf("value %d", i)
	}
	cs := make([]any, 5)
	for i := range cs {
		cs[i] = map[string]any{"id": fmt.Sprint(i), "author": "ann", "body": "comment body number " + fmt.Sprint(i),
			"created_at": "2026-11-22T10:00:00Z"}
	}
	e["comments"] = cs
	return e
}

const bench20Script = `
for (let i = 0; i < 20; i++) {
  const k = "f" + (i < 10 ? "0" + i : i);
  replica[k] = entity[k];
}
replica.comments = entity.comments.map(c => ({id: c.id, body: "[a] " + c.author + ": " + c.body}));
`

// BenchmarkOutgoing20 is the whole sandbox path: a pooled runtime, inputs
// converted to JS, deadline and heap watchdog armed, result exported.
func BenchmarkOutgoing20(b *testing.B) {
	r := NewRunner(Options{})
	s := mustCompile(b, KindOutgoing, bench20Script)
	entity := bench20Entity()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := r.Outgoing(ctx, s, entity, nil, Meta{})
		if err != nil || len(res.Replica) != 21 {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkFloorGoja20 is its floor: the same program on one reused goja
// runtime, the entity converted once, nothing exported.
func BenchmarkFloorGoja20(b *testing.B) {
	vm := goja.New()
	v, err := vm.RunString("(function(entity, replica){\"use strict\";" + bench20Script + "\n})")
	if err != nil {
		b.Fatal(err)
	}
	fn, _ := goja.AssertFunction(v)
	entity := vm.ToValue(bench20Entity())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fn(goja.Undefined(), entity, vm.NewObject()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloorJSONRoundTrip20 is the other floor: the entity to JSON and
// back, what any engine that persists a change pays at least.
func BenchmarkFloorJSONRoundTrip20(b *testing.B) {
	entity := bench20Entity()
	b.ReportAllocs()
	for b.Loop() {
		raw, err := json.Marshal(entity)
		if err != nil {
			b.Fatal(err)
		}
		var back map[string]any
		if err := json.Unmarshal(raw, &back); err != nil {
			b.Fatal(err)
		}
	}
}
