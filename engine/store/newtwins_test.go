package store_test

import (
	"fmt"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// NewTwins makes the twins of many new entities in one statement, each
// with its replica as the last sent, as NewTwin does one by one; an entity
// whose twin exists is left out, and nothing is written for it. QueuedEvents
// counts up to its limit.
func TestNewTwins(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newClaimFixture(t, b.Open(t))
			old, ok, err := f.st.NewTwin(f.ctx, f.conn.ID, store.SideA, "1", store.AToB, nil)
			if err != nil || !ok {
				t.Fatal(ok, err)
			}
			r1, r3 := `{"n":1}`, `{"n":3}`
			rows := []store.NewTwinRow{
				{Conn: f.conn.ID, Side: store.SideA, ID: "1", Dir: store.AToB, Sent: &r1}, // exists
				{Conn: f.conn.ID, Side: store.SideA, ID: "2", Dir: store.AToB},
				{Conn: f.conn.ID, Side: store.SideB, ID: "1", Dir: store.BToA, Sent: &r3}, // the same id on side b: another entity
			}
			got, err := f.st.NewTwins(f.ctx, rows)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := got[0]; ok || len(got) != 2 {
				t.Fatalf("created %v, want rows 1 and 2", got)
			}
			for i, r := range rows[1:] {
				tw, err := f.st.TwinBy(f.ctx, f.conn.ID, r.Side, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				sent := tw.Sent(r.Dir)
				if tw.ID != got[i+1].ID || tw.Origin != r.Side || tw.EntityID(r.Side.Other()) != "" ||
					fmt.Sprint(sent != nil) != fmt.Sprint(r.Sent != nil) || (sent != nil && *sent != *r.Sent) {
					t.Errorf("row %d: twin %+v, returned %+v", i+1, tw, got[i+1])
				}
			}
			if tw, err := f.st.TwinBy(f.ctx, f.conn.ID, store.SideA, "1"); err != nil || tw.ID != old.ID || tw.Sent(store.AToB) != nil {
				t.Errorf("the existing twin changed: %+v, %v", tw, err)
			}
			for i := range 3 {
				f.queue(t, fmt.Sprint("q", i))
			}
			if n, err := f.st.QueuedEvents(f.ctx, f.conn.ID, 2); err != nil || n != 2 {
				t.Errorf("QueuedEvents up to 2: %d, %v", n, err)
			}
			if n, err := f.st.QueuedEvents(f.ctx, f.conn.ID, 10); err != nil || n != 3 {
				t.Errorf("QueuedEvents up to 10: %d, %v", n, err)
			}
		})
	}
}
