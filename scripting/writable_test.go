package scripting

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"
)

// writableLocal is a local entity with a value of every kind a connector
// gives, those the crossing into JS changes among them.
func writableLocal() map[string]any {
	return map[string]any{
		"id": "7", "key": "ENG-7", "title": "t", "state": "new", "body": "line 1\nline 2", "u": "ünï 😀",
		"n": int64(5), "big": int64(1 << 60), "f": 1.5, "whole": 3.0, "neg0": math.Copysign(0, -1),
		"bad": "a\xffb", "when": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "tags": map[string]string{"k": "v"},
		"labels": []any{"a"}, "names": []string{"x"}, "nil": nil, "yes": true, "small": 7,
		"comments": []any{map[string]any{"id": "1", "body": "b"}}, "unread": "w",
	}
}

// An incoming run handed only the entity's fields its script names gives
// what a run handed all of them gives: the same entity (values and Go
// types), log and error. It fails when SplitWritable moves a field the
// script names, or one whose value the crossing changes.
func TestSplitWritableIsInvisible(t *testing.T) {
	scripts := []string{
		`entity.title = replica.title;`,
		`entity.title = entity.title + "!"; delete entity.state;`,
		`entity.n = entity.n + 1; entity.big2 = entity.big; entity.when2 = entity.when;`,
		`entity.comments.push({id: "x", body: replica.title});`,
		`for (const k in entity) entity[k + "_"] = 1;`, // unknown: handed all
		`if (replica.skip) skip("no"); entity.labels = entity.labels.concat(["b"]);`,
		`entity.count = Object.keys(entity).length;`, // unknown
		`entity.f = entity["f"] * 2; entity.whole = entity.whole; entity.tags2 = entity.tags;`,
		`throw new Error("boom " + entity.title);`,
		`entity.title = 1; entity.unread = "x"; entity.nil = entity.nil ?? "was null";`,
		`entity.o = {nested: replica.title}; log(entity.n, entity.neg0);`,
		`entity.title = entity?.u + entity.bad;`,
		`entity.title ??= "x"; entity.nil ||= "set"; [entity.a, entity.b] = [1, 2]; ({t: entity.c} = {t: replica.title});`,
		"entity.title = `${entity.state}/${entity[\"key\"]}`; delete entity[\"body\"];",
		`Object.assign(entity, {z: 1});`,            // unknown: handed all
		`const k = "state"; delete entity[k];`,      // unknown
		`Reflect.deleteProperty(entity, "state");`,  // unknown
		`(function (entity) { entity.w = 1 })({});`, // shadowed: unknown
		`entity.__proto__.x = 1;`,                   // a prototype name: unknown
		`entity.comments.length = 0; entity.labels.push(entity.labels.length);`,
	}
	nan := writableLocal()
	nan["weird"] = math.NaN() // refused on export either way
	ctx := context.Background()
	r := NewRunner(Options{})
	moved := 0
	for _, src := range scripts {
		s := mustCompile(t, KindIncoming, src)
		all := Prepared(string(KindIncoming)+".js", KindIncoming, src, nil) // names unknown: handed everything
		for _, local := range []map[string]any{writableLocal(), nan, nil, {}} {
			for _, replica := range []map[string]any{{"title": "r"}, {"title": "r", "skip": true}} {
				got, gotErr := r.Incoming(ctx, s, replica, nil, local, Meta{})
				want, wantErr := r.Incoming(ctx, all, replica, nil, local, Meta{})
				if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got.Entity, want.Entity) ||
					!slices.Equal(got.Log, want.Log) || got.Skipped != want.Skipped {
					t.Errorf("%s (local %v, replica %v):\nsplit   %#v %q %v\nunsplit %#v %q %v", src, local != nil, replica,
						got.Entity, got.Log, gotErr, want.Entity, want.Log, wantErr)
				}
			}
		}
		if _, m := SplitWritable(s, writableLocal()); m != nil {
			moved++
		}
	}
	if moved < 10 {
		t.Fatalf("only %d scripts were handed less than the whole entity: the test would not exercise the split", moved)
	}
}

func TestSplitWritableMovesOnlyWhatComesBackUnchanged(t *testing.T) {
	s := mustCompile(t, KindIncoming, `entity.title = replica.title; entity.n = 1;`)
	kept, moved := SplitWritable(s, writableLocal())
	var keptKeys, movedKeys []string
	for k := range kept {
		keptKeys = append(keptKeys, k)
	}
	for k := range moved {
		movedKeys = append(movedKeys, k)
	}
	slices.Sort(keptKeys)
	slices.Sort(movedKeys)
	wantKept := []string{"bad", "big", "comments", "labels", "n", "names", "neg0", "small", "tags", "title", "when", "whole"}
	wantMoved := []string{"body", "f", "id", "key", "nil", "state", "u", "unread", "yes"}
	if !slices.Equal(keptKeys, wantKept) || !slices.Equal(movedKeys, wantMoved) {
		t.Fatalf("kept %v, moved %v; want %v, %v", keptKeys, movedKeys, wantKept, wantMoved)
	}
	// Outgoing scripts have no writable input.
	out := mustCompile(t, KindOutgoing, `replica.t = entity.title;`)
	if k, m := SplitWritable(out, writableLocal()); m != nil || len(k) != len(writableLocal()) {
		t.Fatalf("outgoing: moved %v", m)
	}
}

// BenchmarkIncomingWideEntity is an incoming run on a tracker's issue of
// 60 fields, of which the script names 5 (a Jira issue's custom fields
// are many more): "split" hands the run only those (SplitWritable), "whole"
// hands it every field, as before.
func BenchmarkIncomingWideEntity(b *testing.B) {
	entity := map[string]any{"id": "ENG-1", "title": "t", "body": "b\nc", "state": "open", "priority": "high"}
	for i := 0; i < 55; i++ {
		entity[fmt.Sprintf("customfield_%d", 10000+i)] = fmt.Sprintf("value %d", i)
	}
	src := `entity.title = replica.title; entity.body = replica.description; entity.priority = replica.priority;
if (entity.state === "closed") { entity.state = "reopened"; }`
	replica := map[string]any{"title": "T", "description": "D", "priority": "low"}
	r := NewRunner(Options{})
	for _, c := range []struct {
		name string
		s    *Script
	}{{"split", mustCompile(b, KindIncoming, src)}, {"whole", Prepared("in.js", KindIncoming, src, nil)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := r.Incoming(context.Background(), c.s, replica, nil, entity, Meta{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
