package engine

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/testdb"
)

// A failed poll is recorded at once; a success after it clears the record;
// further successes write nothing.
func TestPollHealthRecorded(t *testing.T) {
	ctx := context.Background()
	st := testdb.SQLite(t)
	sys := store.System{Name: "support", Kind: "sql"}
	if err := st.CreateSystem(ctx, &sys); err != nil {
		t.Fatal(err)
	}
	e := New(Options{Store: st, Logger: slog.New(slog.DiscardHandler)})
	h := &pollHealth{e: e, systemID: sys.ID}
	failing := func() []store.SystemHealth {
		t.Helper()
		f, err := st.Alerts().FailingSystems(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	h.note(ctx, errors.New("poll \"support\": dial tcp: connection refused"))
	h.note(ctx, errors.New("poll \"support\": dial tcp: connection refused"))
	f := failing()
	if len(f) != 1 || f[0].ID != sys.ID || f[0].Failures != 2 || f[0].LastError == "" || f[0].FailingSince.IsZero() {
		t.Fatalf("after two failed polls: %+v", f)
	}
	h.note(ctx, nil)
	if f := failing(); len(f) != 0 {
		t.Fatalf("after a good poll: %+v", f)
	}
	// Known healthy: the next good polls do not write (a row made failing
	// behind its back stays so).
	if err := st.RecordPollFailure(ctx, sys.ID, "elsewhere", e.opts.Now()); err != nil {
		t.Fatal(err)
	}
	h.note(ctx, nil)
	if f := failing(); len(f) != 1 {
		t.Fatalf("a good poll of a known healthy system wrote: %+v", f)
	}
	// A stopping process records nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	h2 := &pollHealth{e: e, systemID: sys.ID}
	h2.note(cctx, context.Canceled)
	if f := failing(); len(f) != 1 || f[0].Failures != 1 {
		t.Fatalf("a cancelled poll was recorded: %+v", f)
	}
}
