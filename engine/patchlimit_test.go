package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// An incoming script that writes a field over the size limit, or more new
// comments than one apply may add, fails its event with a clear error
// before anything is written.
func TestIncomingPatchLimits(t *testing.T) {
	for _, tc := range []struct{ name, script, msg string }{
		{"big field", "entity.title = 'x'.repeat(2 << 20);", `field "title" is 2097154 bytes, over the 1048576 byte limit of a field`},
		{"many comments", "entity.comments = mergeComments(entity.comments, Array.from({length: 1500}, (_, i) => ({id: 'n' + i, body: 'c' + i})));", "1500 new comments, over the limit of 1000 per apply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, testdb.SQLite(t), 5*time.Second)
			if _, err := f.st.SaveScript(f.ctx, f.conn.ID, store.SideB, store.KindIncoming, tc.script, "t"); err != nil {
				t.Fatal(err)
			}
			f.cycle()
			failed := f.event(store.StatusFailed)
			if len(failed) != 1 || !strings.Contains(failed[0].LastError, tc.msg) {
				t.Fatalf("failed events: %+v", failed)
			}
			if w := f.writes.Load(); w != 0 {
				t.Fatalf("%d writes", w)
			}
		})
	}
}
