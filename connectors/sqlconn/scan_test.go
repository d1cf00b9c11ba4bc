package sqlconn

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/duplexsync/duplex/connectors"
)

// Scan lists every row once, in id order, page by page, each as Get reads
// it (comments too); a row changed in the middle of the walk is neither
// repeated nor skipped, unlike a walk by time, where it would move to the end.
func TestScan(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b)
			sc, ok := f.conn.(interface {
				Scan(ctx context.Context, cursor string, limit int) (connectors.Page, error)
			})
			if !ok {
				t.Fatal("the sql connector has no Scan")
			}
			var want []string
			for i := 0; i < 7; i++ {
				e := f.create(t, fmt.Sprint("row ", i))
				want = append(want, e.ID)
				if i%3 == 1 {
					if _, err := f.conn.AddComment(ctx, e.ID, connectors.Comment{Author: "ann", Body: fmt.Sprint("c", i)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			var got []connectors.Entity
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 10 {
					t.Fatal("Scan never stopped reporting More")
				}
				p, err := sc.Scan(ctx, cursor, 3)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Entities) > 3 {
					t.Fatalf("page of %d, limit 3", len(p.Entities))
				}
				got = append(got, p.Entities...)
				if pages == 0 { // a row already read changes, one not read yet too
					f.exec(t, "UPDATE {items} SET title = 'changed', updated_at = {now} WHERE id = ?", want[0])
					f.exec(t, "UPDATE {items} SET title = 'changed too', updated_at = {now} WHERE id = ?", want[5])
				}
				cursor = p.Cursor
				if !p.More {
					break
				}
			}
			if !slices.Equal(ids(got), want) {
				t.Fatalf("Scan read %v, want %v", ids(got), want)
			}
			for _, e := range got[1:] {
				g, err := f.conn.Get(ctx, e.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(e, g) {
					t.Errorf("Scan's %s\n got %#v\nwant %#v", e.ID, e, g)
				}
			}
			if p, err := sc.Scan(ctx, cursor, 3); err != nil || len(p.Entities) != 0 || p.More || p.Cursor != cursor {
				t.Errorf("Scan past the end: %+v, %v", p, err)
			}
		})
	}
}
