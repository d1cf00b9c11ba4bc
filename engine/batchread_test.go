package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/internal/testdb"
)

// Updates of many linked entities read their targets with one GetMany per
// target system, and apply exactly as with one Get each; when the batched
// read fails, each event reads its target alone and nothing is lost.
func TestBatchedTargetReads(t *testing.T) {
	for _, b := range testdb.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f := newFixture(t, b.Open(t), time.Second)
			const n = 8
			for i := 0; i < n; i++ {
				f.exec(f.support, `INSERT INTO tickets (subject, description, priority, labels) VALUES (?, 'x', 'high', 'todev')`, fmt.Sprint("batch ", i))
			}
			f.settle()
			check := func(prefix string) {
				t.Helper()
				if got := f.count(f.eng2, "SELECT COUNT(*) FROM issues WHERE title LIKE ?", prefix+"%"); got != n {
					t.Fatalf("%d issues titled %q…, want %d", got, prefix, n)
				}
			}
			before := f.many.Load()
			f.exec(f.support, `UPDATE tickets SET subject = 'renamed ' || id WHERE subject LIKE 'batch %'`)
			f.settle()
			check("renamed ")
			if f.many.Load() == before {
				t.Error("no batched read (GetMany) of the targets")
			}

			fail := func(system, op string) error {
				if op == "getmany" {
					return fmt.Errorf("%w: batched read down", connectors.ErrUnavailable)
				}
				return nil
			}
			f.fault.Store(&fail)
			f.exec(f.support, `UPDATE tickets SET subject = 'again ' || id WHERE subject LIKE 'renamed %'`)
			f.settle()
			check("again ")
			f.fault.Store(nil)
		})
	}
}
