package sqlconn

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/duplexsync/duplex/connectors"
)

// WriteMany writes a batch in one transaction, each write on its own: a
// write that fails (a second create with the same key, which the unique
// index refuses; an update of a missing row; a value of the wrong type)
// fails alone and changes nothing, the others land, each as Get reads it;
// a create whose key is there already is found, not made again. Retried,
// the failed create finds the row its key names.
func TestWriteMany(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b)
			col := "dx_key TEXT"
			if b.name == "mariadb" {
				col = "dx_key VARCHAR(64)"
			}
			f.exec(t, "ALTER TABLE {items} ADD "+col)
			f.exec(t, "CREATE UNIQUE INDEX {items}_key ON {items} (dx_key)")
			s := testSettings(b, "", f.items, f.comments)
			s.CorrelationColumn = "dx_key"
			raw, _ := json.Marshal(s)
			c, err := New(ctx, connectors.Config{Name: "batch", Settings: raw, Secrets: map[string]string{"dsn": f.dsn}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			bw, ok := c.(connectors.BatchWriter)
			if !ok {
				t.Fatal("the sql connector does not implement connectors.BatchWriter")
			}
			there, err := c.(connectors.Correlating).CreateCorrelated(ctx, "k-there", map[string]any{"title": "there"})
			if err != nil {
				t.Fatal(err)
			}
			old := f.create(t, "old")
			if _, err := c.AddComment(ctx, old.ID, connectors.Comment{Author: "ann", Body: "hi"}); err != nil {
				t.Fatal(err)
			}
			res := bw.WriteMany(ctx, []connectors.Write{
				{Key: "k1", Fields: map[string]any{"title": "one"}},
				{Key: "k-there", Fields: map[string]any{"title": "again"}},
				{ID: old.ID, Fields: map[string]any{"title": "renamed"}},
				{Key: "k1", Fields: map[string]any{"title": "one twice"}},
				{ID: "999999", Fields: map[string]any{"title": "nobody"}},
				{Key: "k2", Fields: map[string]any{"points": "many"}},
				{Fields: map[string]any{"title": "no key"}},
			})
			if len(res) != 7 {
				t.Fatalf("%d results for 7 writes", len(res))
			}
			for i, want := range []string{"one", "there", "renamed", "", "", "", "no key"} {
				r := res[i]
				if (want == "") != (r.Err != nil) {
					t.Fatalf("write %d: %+v", i, r)
				}
				if want == "" {
					continue
				}
				got, err := c.Get(ctx, r.Entity.ID)
				if err != nil || !reflect.DeepEqual(got, r.Entity) || got.Fields["title"] != want {
					t.Errorf("write %d returned\n%#v\nstored\n%#v (%v)", i, r.Entity, got, err)
				}
				if r.Found != (i == 1) {
					t.Errorf("write %d: found %v", i, r.Found)
				}
			}
			if res[1].Entity.ID != there.ID || len(res[2].Entity.Comments) != 1 {
				t.Errorf("found %s (want %s); the update's comments %v", res[1].Entity.ID, there.ID, res[2].Entity.Comments)
			}
			if !errors.Is(res[4].Err, connectors.ErrNotFound) || !errors.Is(res[5].Err, connectors.ErrInvalid) {
				t.Errorf("missing row: %v; bad value: %v", res[4].Err, res[5].Err)
			}
			var n int
			if err := f.raw.QueryRow("SELECT COUNT(*) FROM " + f.items).Scan(&n); err != nil || n != 4 {
				t.Fatalf("%d rows (%v), want 4: there, old, one, no key", n, err)
			}
			again := bw.WriteMany(ctx, []connectors.Write{{Key: "k1", Fields: map[string]any{"title": "one twice"}}})
			if again[0].Err != nil || !again[0].Found || again[0].Entity.ID != res[0].Entity.ID {
				t.Fatalf("the retried create: %+v", again[0])
			}
			// A batch of one goes the way of Create and Update.
			one := bw.WriteMany(ctx, []connectors.Write{{Key: "k9", Fields: map[string]any{"title": "alone"}}})
			if got, err := c.Get(ctx, one[0].Entity.ID); one[0].Err != nil || err != nil || !reflect.DeepEqual(got, one[0].Entity) || got.Fields["title"] != "alone" {
				t.Fatalf("a create alone: %+v (%v)", one[0], err)
			}
			if again := bw.WriteMany(ctx, []connectors.Write{{Key: "k9", Fields: map[string]any{"title": "alone"}}}); !again[0].Found || again[0].Entity.ID != one[0].Entity.ID {
				t.Fatalf("a create alone, retried: %+v", again[0])
			}
			if miss := bw.WriteMany(ctx, []connectors.Write{{ID: "999999", Fields: map[string]any{"title": "x"}}}); !errors.Is(miss[0].Err, connectors.ErrNotFound) {
				t.Fatalf("an update alone of a missing row: %v", miss[0].Err)
			}
		})
	}
}
